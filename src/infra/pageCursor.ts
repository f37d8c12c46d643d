import { ChatError } from '../domain/errors.ts';

/**
 * Opaque page cursors: the sort key of the last item of a page, written as
 * base64url so clients treat it as a token, not as something to build.
 */
export interface SessionCursor {
  createdAt: number;
  sessionId: string;
}

const badCursor = () => new ChatError('bad_request', 'The cursor is not one this server handed out.');

export function encodeSessionCursor(cursor: SessionCursor): string {
  return Buffer.from(`s:${cursor.createdAt}:${cursor.sessionId}`).toString('base64url');
}

export function decodeSessionCursor(text: string): SessionCursor {
  const match = /^s:(\d{1,16}):([A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(text, 'base64url').toString());
  if (!match) throw badCursor();
  return { createdAt: Number(match[1]), sessionId: match[2]! };
}

/**
 * Message cursors carry the message's place in its conversation (`order`).
 * (Cursors of versions that paged by insertion position, `m:…`, are refused.)
 */
export function encodeMessageCursor(order: number): string {
  return Buffer.from(`o:${order}`).toString('base64url');
}

export function decodeMessageCursor(text: string): number {
  const match = /^o:(\d{1,16})$/.exec(Buffer.from(text, 'base64url').toString());
  if (!match) throw badCursor();
  return Number(match[1]);
}

/**
 * One page of messages from rows fetched with `limit + 1` (the extra row only
 * says whether there is a next page), as both SQL stores read them.
 */
export function messagePage<Row extends { ord: number | string }, Item>(
  rows: readonly Row[],
  limit: number,
  toItem: (row: Row) => Item,
): { messages: Item[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    messages: page.map(toItem),
    nextCursor: rows.length > limit && last ? encodeMessageCursor(Number(last.ord)) : null,
  };
}
