import type { ConversationRecord, SessionMetadata } from '../../domain/conversationRecord.ts';
import type { ErrorCode } from '../../domain/errors.ts';
import type { ChunkEvent } from '../../domain/events.ts';
import type { ContentPart, FinishReason, Message, MessageStatus, Role, ToolCall } from '../../domain/message.ts';
import type { LoadWindow, SessionSummary } from '../../domain/ports.ts';
import { chunksOfText } from '../sessionUpdates.ts';

/**
 * Rows as both SQL stores read them (same column names in SQLite and
 * PostgreSQL). Integers may arrive as strings (PostgreSQL BIGINT), booleans
 * as 0/1 (SQLite), metadata as text or parsed JSON.
 */
export interface SessionRow {
  id: string;
  created_at: number | string;
  last_active_at: number | string;
  last_seq: number | string;
  seq_reserved: number | string;
  stopped: number | boolean;
  title: string | null;
  metadata: string | SessionMetadata | null;
  /** Since schema version 4. */
  owner_key_id?: string | null;
  /** Since migration 5. */
  model?: string | null;
  message_count?: number | string;
  /** The first characters of the first user message (lists only). */
  preview?: string | null;
}

/** How much of the first user message a session list shows. */
export const PREVIEW_CHARS = 80;

export interface MessageRow {
  ord: number | string;
  id: string;
  role: string;
  content: string;
  status: string;
  reply_to: string | null;
  error_code: string | null;
  input_tokens: number | string | null;
  output_tokens: number | string | null;
  created_at: number | string;
  updated_at: number | string;
  /** Since migration 5: JSON text. */
  parts?: string | null;
  tool_calls?: string | null;
  tool_call_id?: string | null;
  finish_reason?: string | null;
  model?: string | null;
}

/** A reply with a stored chunk log. */
export interface ChunkLogRow {
  id: string;
  content: string;
  chunk_first_seq: number | string;
  chunk_lengths: string;
}

function details(row: SessionRow): { title?: string; metadata?: SessionMetadata; model?: string } {
  const metadata = typeof row.metadata === 'string' ? (JSON.parse(row.metadata) as SessionMetadata) : row.metadata;
  return {
    ...(row.title !== null ? { title: row.title } : {}),
    ...(metadata !== null ? { metadata } : {}),
    ...(row.model != null ? { model: row.model } : {}),
  };
}

export function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    order: Number(row.ord),
    role: row.role as Role,
    content: row.content,
    status: row.status as MessageStatus,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    ...(row.reply_to !== null ? { replyTo: row.reply_to } : {}),
    ...(row.error_code !== null ? { errorCode: row.error_code as ErrorCode } : {}),
    ...(row.input_tokens !== null && row.output_tokens !== null
      ? { usage: { inputTokens: Number(row.input_tokens), outputTokens: Number(row.output_tokens) } }
      : {}),
    ...(row.parts != null ? { parts: JSON.parse(row.parts) as ContentPart[] } : {}),
    ...(row.tool_calls != null ? { toolCalls: JSON.parse(row.tool_calls) as ToolCall[] } : {}),
    ...(row.tool_call_id != null ? { toolCallId: row.tool_call_id } : {}),
    ...(row.finish_reason != null ? { finishReason: row.finish_reason as FinishReason } : {}),
    ...(row.model != null ? { model: row.model } : {}),
  };
}

export function toRecord(row: SessionRow, messages: readonly MessageRow[]): ConversationRecord {
  return {
    sessionId: row.id,
    createdAt: Number(row.created_at),
    lastActiveAt: Number(row.last_active_at),
    lastSeq: Number(row.last_seq),
    seqReserved: Number(row.seq_reserved),
    stopped: Boolean(row.stopped),
    messages: messages.map(toMessage).sort((a, b) => a.order - b.order),
    ...details(row),
    ...(row.owner_key_id ? { owner: row.owner_key_id } : {}),
  };
}

export function toSummary(row: SessionRow): SessionSummary {
  return {
    sessionId: row.id,
    createdAt: Number(row.created_at),
    lastActiveAt: Number(row.last_active_at),
    stopped: Boolean(row.stopped),
    messageCount: Number(row.message_count ?? 0),
    ...details(row),
    ...(row.preview ? { preview: row.preview } : {}),
  };
}

/** The chunks after `afterSeq` of every reply with a stored log, oldest first. */
export function chunksOfRows(sessionId: string, rows: readonly ChunkLogRow[], afterSeq: number): ChunkEvent[] {
  return rows
    .flatMap((row) =>
      chunksOfText(sessionId, row.id, row.content, Number(row.chunk_first_seq), row.chunk_lengths.split(',').map(Number), afterSeq),
    )
    .sort((a, b) => a.seq - b.seq);
}

/** A value a row's column is bound to. */
export type ColumnValue = string | number | null;

/**
 * A message as its row's values, in MESSAGE_COLUMNS order (session_id first):
 * every store binds them by position. An array, not an object keyed by
 * column: SQLite's group commit clones the rows to its writer thread and
 * binds them there, and better-sqlite3 looks a named parameter up on the
 * object from C++ for every column (bench/instructionCount.ts, README Round 13).
 */
export function messageValues(sessionId: string, message: Message): ColumnValue[] {
  return [
    sessionId,
    message.id,
    message.order,
    message.role,
    message.content,
    message.status,
    message.replyTo ?? null,
    message.errorCode ?? null,
    message.usage?.inputTokens ?? null,
    message.usage?.outputTokens ?? null,
    message.createdAt,
    message.updatedAt,
    message.parts ? JSON.stringify(message.parts) : null,
    message.toolCalls?.length ? JSON.stringify(message.toolCalls) : null,
    message.toolCallId ?? null,
    message.finishReason ?? null,
    message.model ?? null,
  ];
}

/** The message columns in INSERT order, and which of them a later write may change. */
export const MESSAGE_COLUMNS = [
  'session_id', 'id', 'ord', 'role', 'content', 'status', 'reply_to', 'error_code', 'input_tokens', 'output_tokens',
  'created_at', 'updated_at', 'parts', 'tool_calls', 'tool_call_id', 'finish_reason', 'model',
] as const;
export const UPDATABLE_MESSAGE_COLUMNS = ['content', 'status', 'error_code', 'input_tokens', 'output_tokens', 'updated_at', 'tool_calls', 'finish_reason', 'model'] as const;

/** Forward-only schema steps; each runs once, in order, inside the migration lock. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export function newerSchemaError(found: number, known: number): Error {
  return new Error(
    `The database schema is at version ${found}, newer than this build knows (${known}); run a newer llm-chat (migrations only go forward).`,
  );
}

const NO_ORDER_ABOVE = Number.MAX_SAFE_INTEGER;

/**
 * The rows `SessionStore.load` returns under a window, newest first: pages of
 * the newest messages until the window is full, then any unfinished message
 * (queued, streaming) older than those, which recovery must see. Both SQL
 * stores run it with their own queries (`newest`: ord < before, newest
 * first; `unfinishedBefore`: status queued or streaming, ord < the bound).
 */
export async function windowRows(
  window: LoadWindow,
  newest: (before: number, limit: number) => MessageRow[] | Promise<MessageRow[]>,
  unfinishedBefore: (before: number) => MessageRow[] | Promise<MessageRow[]>,
): Promise<MessageRow[]> {
  const pageSize = Math.max(1, Math.min(window.maxMessages, 64));
  const rows: MessageRow[] = [];
  let chars = 0;
  let before = NO_ORDER_ABOVE;
  for (;;) {
    const page = await newest(before, pageSize);
    for (const row of page) {
      if (rows.length > 0 && (rows.length >= window.maxMessages || chars >= window.maxChars)) {
        return [...rows, ...(await unfinishedBefore(Number(rows.at(-1)!.ord)))];
      }
      rows.push(row);
      chars += row.content.length;
    }
    if (page.length < pageSize) return rows; // the whole history fitted
    before = Number(page.at(-1)!.ord);
  }
}
