import WebSocket from 'ws';
import { startChildServer } from './childServer.ts';
import type { ChildServer } from './childServer.ts';

/**
 * Crash harness: a real server process on one SQLite file, clients that send
 * messages over REST and watch every session over WebSocket, and a SIGKILL
 * at a seeded random moment, over and over, restarting on the same file.
 * It records every acknowledgement (`202`) and every chunk number seen, then
 * checks what survived. Used by test/transport/crashHarness.test.ts and by
 * `npm run bench -- --scenario faults` (longer).
 */
export interface CrashRunOptions {
  directory: string;
  kills: number;
  seed: number;
  sessions?: number;
  /** Each run lives this long before the kill, at random within [min, max] ms. */
  liveMs?: [number, number];
  log?: (line: string) => void;
}

export interface CrashReport {
  seed: number;
  kills: number;
  acknowledged: number;
  /** Acknowledged user messages missing from the history after the last restart. */
  lost: string[];
  /** Chunk numbers seen for two different replies of one session. */
  seqsReused: string[];
  /** Messages left neither complete, cancelled, failed nor interrupted (or a reply missing for an answered message). */
  unfinished: string[];
  chunksSeen: number;
}

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Acked {
  sessionId: string;
  userMessageId: string;
  replyId: string;
  text: string;
}

const FINAL = new Set(['complete', 'cancelled', 'failed', 'interrupted']);

function startServer(directory: string): Promise<ChildServer> {
  return startChildServer(
    [
      '--store', 'sqlite', '--data-dir', directory,
      '--sim-chunks', '6', '--sim-interval-ms', '15', '--flush-interval-ms', '50',
      '--messages-per-minute', '0', '--conn-rate-per-ip', '0', '--shed-lag-ms', '0', '--log-level', 'info',
    ],
    { DATABASE_URL: '' },
  );
}

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export async function runCrashHarness(options: CrashRunOptions): Promise<CrashReport> {
  const random = seededRandom(options.seed);
  const [minLive, maxLive] = options.liveMs ?? [120, 500];
  const log = options.log ?? (() => {});
  const acked: Acked[] = [];
  /** Per session: seq → the reply it was seen for. */
  const seen = new Map<string, Map<number, string>>();
  const lastSeq = new Map<string, number>();
  const seqsReused: string[] = [];
  let chunksSeen = 0;
  let sessionIds: string[] = [];

  const watch = (base: string, sessionId: string): WebSocket => {
    const after = lastSeq.get(sessionId);
    const socket = new WebSocket(`${base.replace('http', 'ws')}/ws?sessionId=${sessionId}${after ? `&lastSeq=${after}` : ''}`);
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; seq?: number; messageId?: string };
      if (frame.type !== 'chunk' || frame.seq === undefined || frame.messageId === undefined) return;
      chunksSeen += 1;
      const numbers = seen.get(sessionId) ?? new Map<number, string>();
      seen.set(sessionId, numbers);
      const before = numbers.get(frame.seq);
      if (before !== undefined && before !== frame.messageId) seqsReused.push(`${sessionId} seq ${frame.seq}: ${before} then ${frame.messageId}`);
      numbers.set(frame.seq, frame.messageId);
      lastSeq.set(sessionId, Math.max(lastSeq.get(sessionId) ?? 0, frame.seq));
    });
    socket.on('error', () => {});
    return socket;
  };

  for (let run = 0; run <= options.kills; run += 1) {
    const server = await startServer(options.directory);
    if (sessionIds.length === 0) {
      for (let n = 0; n < (options.sessions ?? 4); n += 1) sessionIds.push(String((await json(`${server.url}/api/sessions`, { method: 'POST' })).body['sessionId']));
    }
    const sockets = sessionIds.map((sessionId) => watch(server.url, sessionId));
    if (run === options.kills) {
      // The last run is not killed: let everything settle, then read what survived.
      for (const socket of sockets) socket.close();
      const report = await inspect(server, sessionIds, acked);
      await server.stop('SIGTERM');
      return { seed: options.seed, kills: options.kills, acknowledged: acked.length, seqsReused, chunksSeen, ...report };
    }
    let live = true;
    const senders = sessionIds.map(async (sessionId, index) => {
      for (let n = 0; live; n += 1) {
        const text = `run ${run} session ${index} message ${n}`;
        try {
          const sent = await json(`${server.url}/api/sessions/${sessionId}/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text }),
          });
          if (sent.status === 202) acked.push({ sessionId, userMessageId: String(sent.body['userMessageId']), replyId: String(sent.body['messageId']), text });
        } catch {
          return; // the server is gone: what was not acknowledged may or may not be kept
        }
        await new Promise((resolve) => setTimeout(resolve, 20 + random() * 60));
      }
    });
    const liveMs = minLive + random() * (maxLive - minLive);
    await new Promise((resolve) => setTimeout(resolve, liveMs));
    live = false;
    await server.stop('SIGKILL');
    await Promise.all(senders);
    for (const socket of sockets) socket.terminate();
    log(`crash harness: kill ${run + 1}/${options.kills} after ${Math.round(liveMs)} ms, ${acked.length} acknowledged so far`);
  }
  throw new Error('unreachable');
}

async function inspect(server: ChildServer, sessionIds: readonly string[], acked: readonly Acked[]): Promise<Pick<CrashReport, 'lost' | 'unfinished'>> {
  const lost: string[] = [];
  const unfinished: string[] = [];
  for (const sessionId of sessionIds) {
    // Replies queued before the last kill were cancelled by recovery; anything sent to this run has finished.
    const messages: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page = await json(`${server.url}/api/sessions/${sessionId}/messages?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      messages.push(...(page.body['messages'] as Record<string, unknown>[]));
      cursor = page.body['nextCursor'] as string | null;
    } while (cursor);
    const byId = new Map(messages.map((message) => [String(message['id']), message]));
    for (const message of messages) {
      if (!FINAL.has(String(message['status']))) unfinished.push(`${sessionId} ${String(message['role'])} ${String(message['id'])}: ${String(message['status'])}`);
    }
    for (const ack of acked.filter((entry) => entry.sessionId === sessionId)) {
      const user = byId.get(ack.userMessageId);
      if (!user || user['content'] !== ack.text) {
        lost.push(`${ack.text} (${ack.userMessageId})`);
        continue;
      }
      // A message that was answered (its reply started) has its reply, ended one way or another.
      if (user['status'] === 'complete' && !FINAL.has(String(byId.get(ack.replyId)?.['status']))) unfinished.push(`reply ${ack.replyId} of "${ack.text}" missing`);
    }
  }
  return { lost, unfinished };
}
