import type { Conversation } from '../domain/conversation.ts';
import type { ErrorCode } from '../domain/errors.ts';
import type { Clock, EventBus, Logger, ModelProvider, SessionStore } from '../domain/ports.ts';
import type { Message } from '../domain/message.ts';
import type { StoreHealth } from './storeHealth.ts';
import type { StoreWriter } from './storeWriter.ts';

/**
 * What the session actor and its supervisor do to a conversation when a
 * reply ends (complete, failed, cancelled): change it, have it written, tell
 * its watchers. Shared by both, so a reply ends the same way whoever ends it.
 */

/** What a session actor needs from the outside world; given by its supervisor. */
export interface SessionDeps {
  bus: EventBus;
  store: SessionStore;
  provider: ModelProvider;
  clock: Clock;
  logger: Logger;
  /** Writes the conversation (group-committed; background writes retried). */
  writer: StoreWriter;
  /** Whether the store takes work now (refusals come fast while it does not). */
  health: StoreHealth;
}

/** Writes the conversation's changed messages in the background; a failing store is retried by the writer, never fatal here. */
export function persist(conversation: Conversation, deps: SessionDeps, messages: readonly Message[]): void {
  deps.writer.save(conversation, messages);
}

/** Ends the reply in progress as complete, keeps it, and tells its watchers. */
export function completeCurrentReply(conversation: Conversation, deps: SessionDeps): void {
  const reply = conversation.finishReply('complete', deps.clock.now());
  if (!reply) return;
  deps.writer.finish(conversation, [reply]);
  deps.bus.publish({
    type: 'message.completed',
    sessionId: conversation.sessionId,
    messageId: reply.id,
    ...(reply.usage ? { usage: reply.usage } : {}),
    finishReason: reply.finishReason ?? 'stop',
    ...(reply.toolCalls?.length ? { toolCalls: reply.toolCalls } : {}),
    ...(reply.model !== undefined ? { model: reply.model } : {}),
  });
}

/** Ends the reply in progress as failed, keeps it, and tells its watchers (with a client-safe message). */
export function failCurrentReply(
  conversation: Conversation,
  deps: SessionDeps,
  failure: { code: ErrorCode; message: string; upstreamStatus?: number; retryAfterMs?: number | undefined },
): void {
  const reply = conversation.finishReply('failed', deps.clock.now(), failure.code);
  if (!reply) return;
  deps.writer.finish(conversation, [reply]);
  deps.bus.publish({
    type: 'message.failed',
    sessionId: conversation.sessionId,
    messageId: reply.id,
    code: failure.code,
    message: failure.message,
    ...(failure.upstreamStatus !== undefined ? { upstreamStatus: failure.upstreamStatus } : {}),
    ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
  });
}

/** Cancels the reply in progress and every queued message, keeps them as cancelled, and tells the watchers. */
export function cancelEverything(conversation: Conversation, deps: SessionDeps): void {
  const now = deps.clock.now();
  const reply = conversation.finishReply('cancelled', now);
  const dropped = conversation.cancelQueued(now);
  const changed = [...(reply ? [reply] : []), ...dropped.flatMap(({ inputs }) => inputs)];
  if (changed.length > 0) persist(conversation, deps, changed);
  announceCancelled(conversation, deps, [...(reply ? [reply.id] : []), ...dropped.map(({ replyId }) => replyId)]);
}

/** Tells every watcher that the given replies were cancelled. */
export function announceCancelled(conversation: Conversation, deps: SessionDeps, replyIds: readonly string[]): void {
  for (const messageId of replyIds) {
    deps.bus.publish({ type: 'message.cancelled', sessionId: conversation.sessionId, messageId });
  }
}
