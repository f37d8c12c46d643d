import type { ChunkEvent } from '../domain/events.ts';
import type { Message, MessageStatus } from '../domain/message.ts';
import type { SessionUpdate } from '../domain/ports.ts';

/** Statuses after which a reply's stored chunks are no longer needed for resume. */
const FINISHED: ReadonlySet<MessageStatus> = new Set(['complete', 'cancelled', 'failed']);

/**
 * What one update means for the stored chunk log (the same rule in every
 * store): chunks of a reply are kept while it streams; a reply that finishes
 * drops its chunks; a reply that starts streaming drops every other reply's
 * (an interrupted reply's chunks stay until then, for resume after a crash).
 */
export interface ChunkPlan {
  /** Drop chunks of these messages. */
  readonly dropMessages: readonly string[];
  /** Drop chunks of every message but this one (the reply streaming now). */
  readonly keepOnly: string | undefined;
  /** Chunks to insert. */
  readonly insert: readonly ChunkEvent[];
}

export function chunkPlan(update: SessionUpdate): ChunkPlan {
  const dropMessages: string[] = [];
  let keepOnly: string | undefined;
  for (const message of update.messages) {
    if (message.role !== 'assistant') continue;
    if (FINISHED.has(message.status)) dropMessages.push(message.id);
    else if (message.status === 'streaming') keepOnly = message.id;
  }
  const dropped = new Set(dropMessages);
  const insert = (update.chunks ?? []).filter((chunk) => !dropped.has(chunk.messageId));
  return { dropMessages, keepOnly, insert };
}

/**
 * Folds many updates into one per session, in order: counters take the
 * latest values, a message its latest version (keeping the place of its
 * first appearance, which is its place in history), chunks are concatenated.
 * Lets a store commit a whole batch with one statement per table.
 */
export function mergeUpdates(updates: readonly SessionUpdate[]): SessionUpdate[] {
  const merged = new Map<string, { update: SessionUpdate; messages: Map<string, Message>; chunks: ChunkEvent[] }>();
  for (const update of updates) {
    const existing = merged.get(update.sessionId);
    if (!existing) {
      merged.set(update.sessionId, {
        update,
        messages: new Map(update.messages.map((message) => [message.id, message])),
        chunks: [...(update.chunks ?? [])],
      });
      continue;
    }
    existing.update = {
      ...update,
      lastSeq: Math.max(existing.update.lastSeq, update.lastSeq),
      lastActiveAt: Math.max(existing.update.lastActiveAt, update.lastActiveAt),
    };
    for (const message of update.messages) existing.messages.set(message.id, message);
    if (update.chunks) existing.chunks.push(...update.chunks);
  }
  return [...merged.values()].map(({ update, messages, chunks }) => ({
    sessionId: update.sessionId,
    lastSeq: update.lastSeq,
    lastActiveAt: update.lastActiveAt,
    stopped: update.stopped,
    messages: [...messages.values()],
    chunks,
  }));
}
