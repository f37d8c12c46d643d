import type { ToolCall, Turn } from './message.ts';

/**
 * A fragment of a streamed tool call, as OpenAI streams them in
 * `delta.tool_calls`: the first fragment of call `index` names its `id` and
 * function, the next ones carry more of its `arguments` text.
 */
export interface ToolCallDelta {
  readonly index: number;
  readonly id?: string;
  readonly name?: string;
  readonly arguments?: string;
}

/** The tool calls after `deltas` arrived: fragments of one call are joined by index. */
export function applyToolCallDeltas(calls: readonly ToolCall[], deltas: readonly ToolCallDelta[]): ToolCall[] {
  const merged = [...calls];
  for (const delta of deltas) {
    const current = merged[delta.index];
    merged[delta.index] = {
      id: delta.id ?? current?.id ?? '',
      type: 'function',
      function: {
        // The first fragment names the function; servers that repeat the name do not double it.
        name: current?.function.name || (delta.name ?? ''),
        arguments: (current?.function.arguments ?? '') + (delta.arguments ?? ''),
      },
    };
  }
  // A server that skipped an index leaves a hole; the calls that did arrive keep their order.
  return merged.filter((call): call is ToolCall => call !== undefined);
}

/**
 * Consecutive fragments joined into as few as possible, in order (what a
 * coalesced chunk carries): a fragment that continues the previous one's
 * call (same index, no new id or name) appends its arguments to it.
 */
export function joinToolCallDeltas(deltas: readonly ToolCallDelta[]): ToolCallDelta[] {
  const joined: ToolCallDelta[] = [];
  for (const delta of deltas) {
    const last = joined[joined.length - 1];
    if (last && last.index === delta.index && delta.id === undefined && delta.name === undefined) {
      joined[joined.length - 1] = { ...last, arguments: (last.arguments ?? '') + (delta.arguments ?? '') };
    } else joined.push({ ...delta });
  }
  return joined;
}

/** The whole calls as one fragment each (what a late watcher or a non-streaming client needs). */
export function toolCallsAsDeltas(calls: readonly ToolCall[]): ToolCallDelta[] {
  return calls.map((call, index) => ({ index, id: call.id, name: call.function.name, arguments: call.function.arguments }));
}

/**
 * The turns as a model's API accepts them: an assistant turn's tool calls
 * must be followed by a result for each. A loop the client abandoned (calls
 * left unanswered, then a new user message) loses those calls, the results
 * it did give, and the turn itself if nothing else is left of it; a tool
 * result whose call is not right before it is dropped. The last turn (what
 * is being answered) is always kept.
 */
export function answeredToolCalls<T extends Turn>(turns: readonly T[]): T[] {
  const kept: T[] = [];
  for (let index = 0; index < turns.length; index += 1) {
    const turn = turns[index]!;
    const isLast = index === turns.length - 1;
    if (turn.role === 'tool') {
      if (isLast) kept.push(turn);
      continue; // results are taken with their calls, below
    }
    if (turn.role !== 'assistant' || !turn.toolCalls?.length) {
      kept.push(turn);
      continue;
    }
    let end = index + 1;
    while (end < turns.length && turns[end]!.role === 'tool') end += 1;
    const results = turns.slice(index + 1, end);
    const answered = new Set(results.map((result) => result.toolCallId));
    if (turn.toolCalls.every((call) => answered.has(call.id))) {
      const ids = new Set(turn.toolCalls.map((call) => call.id));
      kept.push(turn, ...results.filter((result) => ids.has(result.toolCallId ?? '')));
    } else {
      const { toolCalls: _dropped, ...rest } = turn;
      if (rest.content !== '' || rest.parts) kept.push(rest as T);
      if (end === turns.length && end > index + 1) kept.push(turns[end - 1]!);
    }
    index = end - 1;
  }
  return kept;
}
