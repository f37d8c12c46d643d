import type { ErrorCode } from '../domain/errors.ts';
import type { ChatEvent } from '../domain/events.ts';
import type { MessageId, SessionId } from '../domain/ids.ts';
import type { JsonValue } from '../domain/conversationRecord.ts';
import type { FinishReason, ToolCall, Usage } from '../domain/message.ts';
import type { EventBus } from '../domain/ports.ts';
import type { ToolCallDelta } from '../domain/toolCalls.ts';

/**
 * What happens to one reply, in order: text and tool-call fragments, then
 * exactly one end. `model` (on the first output) names the model answering.
 */
export type ReplyStep =
  | { type: 'text'; text: string; model?: string; logprobs?: readonly JsonValue[] }
  | { type: 'tool_calls'; toolCalls: readonly ToolCallDelta[]; model?: string }
  | { type: 'completed'; usage: Usage | undefined; finishReason: FinishReason; toolCalls?: readonly ToolCall[]; model?: string }
  | { type: 'failed'; code: ErrorCode; message: string; retryAfterMs?: number };

export interface ReplyFollower extends AsyncIterable<ReplyStep> {
  /** Starts following the reply with this id (events seen since subscribing are kept). */
  track(replyId: MessageId): void;
  stop(): void;
}

/**
 * Follows one reply on the bus. It subscribes before the message is sent
 * (so nothing is missed) and keeps the session's events until it learns the
 * reply's id, then yields that reply's steps.
 */
export function followReply(bus: EventBus, sessionId: SessionId): ReplyFollower {
  let replyId: MessageId | undefined;
  const early: ChatEvent[] = [];
  const steps: ReplyStep[] = [];
  let ended = false;
  let wake: (() => void) | undefined;

  const push = (step: ReplyStep) => {
    if (ended) return;
    steps.push(step);
    if (step.type === 'completed' || step.type === 'failed') ended = true;
    wake?.();
  };
  const take = (event: ChatEvent) => {
    if (event.type === 'session.stopped') {
      // The reply's own end comes first; this only covers a session that vanished.
      const code = event.reason === 'shutdown' ? 'overloaded' : event.reason === 'unavailable' ? 'unavailable' : 'cancelled';
      push({ type: 'failed', code, message: 'The session ended before the reply finished.' });
      return;
    }
    if (!('messageId' in event) || event.messageId !== replyId) return;
    if (event.type === 'chunk') {
      if (event.chunk !== '' || event.model !== undefined) {
        push({
          type: 'text',
          text: event.chunk,
          ...(event.model !== undefined ? { model: event.model } : {}),
          ...(event.logprobs ? { logprobs: event.logprobs } : {}),
        });
      }
    } else if (event.type === 'message.tool_calls') {
      push({ type: 'tool_calls', toolCalls: event.toolCalls, ...(event.model !== undefined ? { model: event.model } : {}) });
    } else if (event.type === 'message.completed') {
      push({
        type: 'completed',
        usage: event.usage,
        finishReason: event.finishReason,
        ...(event.toolCalls ? { toolCalls: event.toolCalls } : {}),
        ...(event.model !== undefined ? { model: event.model } : {}),
      });
    } else if (event.type === 'message.failed') {
      push({ type: 'failed', code: event.code, message: event.message, ...(event.retryAfterMs !== undefined ? { retryAfterMs: event.retryAfterMs } : {}) });
    }
    else if (event.type === 'message.cancelled') push({ type: 'failed', code: 'cancelled', message: 'The reply was cancelled.' });
    // The node running the reply stopped (or died) before it finished.
    else if (event.type === 'message.interrupted') push({ type: 'failed', code: 'unavailable', message: 'The reply was interrupted.' });
  };
  const unsubscribe = bus.subscribe(sessionId, (event) => {
    if (replyId === undefined) early.push(event);
    else take(event);
  });

  return {
    track(id) {
      replyId = id;
      for (const event of early.splice(0)) take(event);
    },
    stop() {
      unsubscribe();
      ended = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const step = steps.shift();
        if (step) {
          yield step;
          if (step.type === 'completed' || step.type === 'failed') return;
          continue;
        }
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
  };
}
