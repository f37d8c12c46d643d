import type { ChunkEvent } from '../domain/events.ts';
import type { Message, MessageStatus } from '../domain/message.ts';
import type { SessionUpdate } from '../domain/ports.ts';

/** Statuses after which a reply's stored chunks are no longer needed for resume. */
const FINISHED: ReadonlySet<MessageStatus> = new Set(['complete', 'cancelled', 'failed']);

/** Chunks of one reply to add to the stored log: contiguous seqs and each chunk's length in the reply's text. */
export interface ChunkAppend {
  readonly messageId: string;
  readonly firstSeq: number;
  /** The seq after the last one appended (the next append must start there). */
  readonly nextSeq: number;
  /** Lengths (UTF-16 code units) of the chunks, in order; their texts are consecutive slices of the content. */
  readonly lengths: readonly number[];
}

/**
 * What one update means for the stored chunk log (the same rule in every
 * store). The log is not a row per chunk: a reply's text is stored anyway,
 * so the log is the seq of its first chunk and each chunk's length, and a
 * chunk is a slice of the text. Chunks of a reply are kept while it streams;
 * a reply that finishes drops them; a reply that starts streaming drops every
 * other reply's (an interrupted reply's stay until then, for resume after a
 * crash). An append applies only where the stored log ends (`nextSeq`), so a
 * retried write is harmless and a gap never yields wrong text.
 */
export interface ChunkPlan {
  /** Drop the logs of these messages. */
  readonly dropMessages: readonly string[];
  /** Drop the logs of every message but this one (the reply streaming now). */
  readonly keepOnly: string | undefined;
  readonly appends: readonly ChunkAppend[];
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
  const appends: { messageId: string; firstSeq: number; nextSeq: number; lengths: number[] }[] = [];
  for (const chunk of update.chunks ?? []) {
    if (dropped.has(chunk.messageId)) continue;
    const last = appends[appends.length - 1];
    if (last && last.messageId === chunk.messageId && last.nextSeq === chunk.seq) {
      last.lengths.push(chunk.chunk.length);
      last.nextSeq = chunk.seq + 1;
    } else {
      appends.push({ messageId: chunk.messageId, firstSeq: chunk.seq, nextSeq: chunk.seq + 1, lengths: [chunk.chunk.length] });
    }
  }
  return { dropMessages, keepOnly, appends };
}

/** Cuts a stored reply's text back into its chunks, those after `afterSeq`. */
export function chunksOfText(
  sessionId: string,
  messageId: string,
  content: string,
  firstSeq: number,
  lengths: readonly number[],
  afterSeq: number,
): ChunkEvent[] {
  const chunks: ChunkEvent[] = [];
  let offset = 0;
  for (let index = 0; index < lengths.length; index += 1) {
    const end = offset + lengths[index]!;
    if (end > content.length) break; // text older than the log: never invent chunks
    const seq = firstSeq + index;
    if (seq > afterSeq) chunks.push({ type: 'chunk', sessionId, messageId, seq, chunk: content.slice(offset, end), is_last: false });
    offset = end;
  }
  return chunks;
}

/**
 * Folds many updates into one per session, in order: counters take the
 * latest values, a message its latest version (keeping the place of its
 * first appearance), chunks are concatenated.
 * Lets a store commit a whole batch with one statement per table.
 */
export function mergeUpdates(updates: readonly SessionUpdate[]): readonly SessionUpdate[] {
  // The usual batch holds one update per session (a session has one write in
  // flight): it goes as it is, with no copy of every update (a measured share
  // of the main thread's cost per write).
  if (new Set(updates.map((update) => update.sessionId)).size === updates.length) return updates;
  const merged = new Map<string, { update: SessionUpdate; messages: Map<string, Message>; chunks: ChunkEvent[]; withdrawn: string[] }>();
  for (const update of updates) {
    const existing = merged.get(update.sessionId);
    if (!existing) {
      merged.set(update.sessionId, {
        update,
        messages: new Map(update.messages.map((message) => [message.id, message])),
        chunks: [...(update.chunks ?? [])],
        withdrawn: [...(update.withdrawn ?? [])],
      });
      continue;
    }
    existing.update = {
      ...update,
      lastSeq: Math.max(existing.update.lastSeq, update.lastSeq),
      seqReserved: Math.max(existing.update.seqReserved, update.seqReserved),
      lastActiveAt: Math.max(existing.update.lastActiveAt, update.lastActiveAt),
      ...(fenceOf(existing.update, update) !== undefined ? { fence: fenceOf(existing.update, update) } : {}),
    };
    for (const message of update.messages) existing.messages.set(message.id, message);
    if (update.chunks) existing.chunks.push(...update.chunks);
    if (update.withdrawn) existing.withdrawn.push(...update.withdrawn);
  }
  return [...merged.values()].map(({ update, messages, chunks, withdrawn }) => ({
    sessionId: update.sessionId,
    lastSeq: update.lastSeq,
    seqReserved: update.seqReserved,
    lastActiveAt: update.lastActiveAt,
    stopped: update.stopped,
    messages: [...messages.values()],
    chunks,
    ...(withdrawn.length > 0 ? { withdrawn } : {}),
    ...(update.fence !== undefined ? { fence: update.fence } : {}),
  }));
}

/** Merged updates carry the newest token either one had. */
function fenceOf(a: SessionUpdate, b: SessionUpdate): number | undefined {
  if (a.fence === undefined) return b.fence;
  if (b.fence === undefined) return a.fence;
  return Math.max(a.fence, b.fence);
}
