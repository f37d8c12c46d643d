import { ChatError } from './errors.ts';
import type { MessageId } from './ids.ts';
import type { ContentPart, Message } from './message.ts';

/** A result of one of the last reply's tool calls, sent back by the client. */
export interface ToolResult {
  readonly toolCallId: string;
  readonly content: string;
  readonly parts?: readonly ContentPart[];
}

/**
 * What a client sends for the model to answer: a user message (text, or
 * content parts such as images), the results of the last reply's tool calls,
 * or both (results first, as OpenAI's message order has them).
 */
export interface UserInput {
  readonly text: string;
  readonly parts?: readonly ContentPart[];
  readonly toolResults?: readonly ToolResult[];
}

export interface InputIds {
  /** The user message's id (unused when the input is only tool results). */
  readonly user: MessageId;
  /** One per tool result, in order. */
  readonly toolResults?: readonly MessageId[];
}

const hasMedia = (parts: readonly ContentPart[] | undefined) => parts?.some((part) => part.type !== 'text') ?? false;

/**
 * The input's messages in history order, `queued`. Refuses an empty input
 * and tool results that do not answer the last reply's calls (`history` is
 * the conversation so far): the model's server would refuse them anyway,
 * with less to go on.
 */
export function inputMessages(input: UserInput, ids: InputIds, now: number, firstOrder: number, history: readonly Message[]): Message[] {
  const results = input.toolResults ?? [];
  const hasUser = input.text.trim() !== '' || hasMedia(input.parts);
  if (!hasUser && results.length === 0) throw new ChatError('bad_request', 'The message text must not be empty.');
  if (results.length > 0) checkToolResults(results, history);
  // Each takes an even place (as user messages do): the reply's is the odd one after the last.
  const messages: Message[] = results.map((result, index) => ({
    id: ids.toolResults?.[index] ?? `${ids.user}-tool-${index}`,
    order: firstOrder + 2 * index,
    role: 'tool',
    content: result.content,
    toolCallId: result.toolCallId,
    ...(result.parts ? { parts: result.parts } : {}),
    status: 'queued',
    createdAt: now,
    updatedAt: now,
  }));
  if (hasUser) {
    messages.push({
      id: ids.user,
      order: firstOrder + 2 * results.length,
      role: 'user',
      content: input.text,
      ...(input.parts ? { parts: input.parts } : {}),
      status: 'queued',
      createdAt: now,
      updatedAt: now,
    });
  }
  return messages;
}

/**
 * Tool results must answer the tool calls of the last reply, once it has
 * finished: each names one of its calls, none twice, and together with the
 * results already given they answer every call.
 */
function checkToolResults(results: readonly ToolResult[], history: readonly Message[]): void {
  let last = history.length - 1;
  while (last >= 0 && history[last]!.role !== 'assistant') last -= 1;
  const reply = history[last];
  if (!reply?.toolCalls?.length || reply.status !== 'complete') {
    throw new ChatError('bad_request', 'Tool results answer the tool calls of the last reply, and it made none (or has not finished).');
  }
  const answered = new Set(history.slice(last + 1).flatMap((message) => (message.role === 'tool' && message.status !== 'cancelled' && message.toolCallId ? [message.toolCallId] : [])));
  const calls = new Set(reply.toolCalls.map((call) => call.id));
  for (const result of results) {
    if (!calls.has(result.toolCallId)) throw new ChatError('bad_request', `The tool result for "${result.toolCallId}" answers no tool call of the last reply.`);
    if (answered.has(result.toolCallId)) throw new ChatError('bad_request', `The tool call "${result.toolCallId}" already has a result.`);
    answered.add(result.toolCallId);
  }
  const missing = [...calls].filter((id) => !answered.has(id));
  if (missing.length > 0) throw new ChatError('bad_request', `Every tool call of the last reply needs a result; missing: ${missing.join(', ')}.`);
}
