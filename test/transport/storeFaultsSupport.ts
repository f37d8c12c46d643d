import { expect } from 'vitest';
import { api } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

/** Every stored message of a session, over REST, all pages. */
export async function history(url: string, sessionId: string): Promise<Json[]> {
  const all: Json[] = [];
  let cursor: string | null = null;
  do {
    const page = await api(url, 'GET', `/api/sessions/${sessionId}/messages?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
    expect(page.status).toBe(200);
    all.push(...(page.body['messages'] as Json[]));
    cursor = page.body['nextCursor'] as string | null;
  } while (cursor);
  return all;
}

/** Retries `attempt` until it returns something, for at most `ms`; resolves with it and the time it took. */
export async function within<T>(ms: number, attempt: () => Promise<T | undefined>): Promise<{ value: T; tookMs: number }> {
  const started = Date.now();
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return { value, tookMs: Date.now() - started };
    if (Date.now() - started > ms) throw new Error(`nothing within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Sends and records: what was acknowledged (with its id) and what was refused (with its code). */
export class Ledger {
  readonly acked = new Map<string, string>();
  readonly refused = new Map<string, string>();

  async send(url: string, sessionId: string, text: string): Promise<number> {
    const sent = await api(url, 'POST', `/api/sessions/${sessionId}/messages`, { text });
    if (sent.status === 202) this.acked.set(text, String(sent.body['userMessageId']));
    else this.refused.set(text, String((sent.body['error'] as Json | undefined)?.['code']));
    return sent.status;
  }
}
