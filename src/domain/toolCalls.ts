import type { ToolCall } from './message.ts';

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
