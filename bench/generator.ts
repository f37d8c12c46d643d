/**
 * A load generator process, forked by bench/run.ts. It holds a slice of the
 * client connections (from one loopback source address) and runs the
 * orchestrator's commands over IPC. The clients are bench/clients.ts's: `ws`
 * for llm-chat and the bare-ws peer, socket.io-client for the Socket.IO peer.
 */
import { openClient } from './clients.ts';
import type { ClientConnection, ClientKind } from './clients.ts';
import { Reservoir } from './stats.ts';

interface Connection {
  client: ClientConnection;
  sentAt: number;
  chunksOfMessage: number;
  messagesLeft: number;
}

type Command =
  /** `retries` (default 0): a connection refused for a passing reason is tried again that many times, with backoff. */
  | { type: 'connect'; url: string; client: ClientKind; count: number; ratePerSecond: number; localAddress: string; retries?: number }
  /** `fraction` (default 1): only that share of this generator's sessions stream. */
  | { type: 'stream'; messages: number; intervalMs: number; timeoutMs: number; spreadMs: number; fraction?: number }
  /** The ids of the last `limit` sessions held (idle ones, for the cluster bench's samples). */
  | { type: 'ids'; limit: number }
  | { type: 'saturate'; durationMs: number }
  | { type: 'close' };

const connections: Connection[] = [];
const send = (message: unknown) => process.send?.(message);
const now = () => performance.now();

/** Error frames received since the last report, by code (e.g. `overloaded`). */
let errorFrames: Record<string, number> = {};
/** Connections closed after they opened, since the last report, by close code. */
let closes: Record<string, number> = {};
let chunkListener: ((connection: Connection, isLast: boolean) => void) | undefined;
let acceptedListener: ((connection: Connection) => void) | undefined;

async function open(command: Extract<Command, { type: 'connect' }>): Promise<Connection | string> {
  let connection: Connection | undefined;
  const client = await openClient(command.client, command.url, command.localAddress, {
    accepted: () => {
      if (connection) acceptedListener?.(connection);
    },
    chunk: (isLast) => {
      if (connection) chunkListener?.(connection, isLast);
    },
    error: (code) => {
      errorFrames[code] = (errorFrames[code] ?? 0) + 1;
    },
    closed: (why) => {
      closes[why] = (closes[why] ?? 0) + 1;
    },
  });
  if (typeof client === 'string') return client;
  connection = { client, sentAt: 0, chunksOfMessage: 0, messagesLeft: 0 };
  return connection;
}

/** Refusals a client is told to retry (`overloaded`, `store_unavailable`, `unavailable`, close 1013) or a reset under load. */
const TRANSIENT = /"code":"(overloaded|store_unavailable|unavailable)"|^close 1013$|^ECONNRESET$/;

/** Opens one connection as the chat page does: a passing refusal is retried after 1, 2, 4… s, at most 16 s (±50%). */
async function openRetrying(command: Extract<Command, { type: 'connect' }>, onRetry: () => void): Promise<Connection | string> {
  for (let attempt = 0; ; attempt += 1) {
    const result = await open(command);
    if (typeof result !== 'string' || attempt >= (command.retries ?? 0) || !TRANSIENT.test(result)) return result;
    onRetry();
    await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** Math.min(attempt, 4) * (0.5 + Math.random())));
  }
}

async function connect(command: Extract<Command, { type: 'connect' }>): Promise<void> {
  const errors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let retried = 0;
  const started = now();
  const pending: Promise<void>[] = [];
  const progress = setInterval(() => send({ type: 'progress', ok, failed }), 1000);
  for (let index = 0; index < command.count; index += 1) {
    // Pace the opening: connection `index` is due at index / rate seconds.
    const due = started + (index * 1000) / command.ratePerSecond;
    const wait = due - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      openRetrying(command, () => (retried += 1)).then((result) => {
        if (typeof result === 'string') {
          failed += 1;
          errors[result] = (errors[result] ?? 0) + 1;
        } else {
          ok += 1;
          connections.push(result);
        }
      }),
    );
  }
  await Promise.all(pending);
  clearInterval(progress);
  send({ type: 'connected', ok, failed, errors, retried, elapsedMs: now() - started });
}

async function stream(command: Extract<Command, { type: 'stream' }>): Promise<void> {
  const ttfc = new Reservoir();
  // Sent → `accepted` (the message committed, durable acknowledgement): how much of the first chunk's wait comes before it.
  const accepted = new Reservoir();
  const full = new Reservoir();
  const lateness = new Reservoir();
  let chunks = 0;
  let completed = 0;
  const streaming = connections.slice(0, Math.ceil(connections.length * (command.fraction ?? 1)));
  const expected = streaming.length * command.messages;
  const started = now();
  const progress = setInterval(() => send({ type: 'progress', completed, expected, chunks }), 1000);
  await new Promise<void>((resolve) => {
    if (expected === 0) return resolve();
    // Replies that never complete are reported as such, not waited for forever.
    const deadline = setTimeout(resolve, command.timeoutMs);
    const sendNext = (connection: Connection) => {
      connection.messagesLeft -= 1;
      connection.chunksOfMessage = 0;
      connection.sentAt = now();
      connection.client.send('bench');
    };
    acceptedListener = (connection) => accepted.add(now() - connection.sentAt);
    chunkListener = (connection, isLast) => {
      const arrival = now();
      chunks += 1;
      connection.chunksOfMessage += 1;
      if (connection.chunksOfMessage === 1) ttfc.add(arrival - connection.sentAt);
      lateness.add(arrival - (connection.sentAt + connection.chunksOfMessage * command.intervalMs));
      if (!isLast) return;
      full.add(arrival - connection.sentAt);
      completed += 1;
      if (connection.messagesLeft > 0) sendNext(connection);
      if (completed === expected) {
        clearTimeout(deadline);
        resolve();
      }
    };
    for (const connection of streaming) {
      connection.messagesLeft = command.messages;
      // spreadMs 0: every session sends in the same instant (the worst case);
      // otherwise first messages start at random offsets within spreadMs.
      if (command.spreadMs <= 0) sendNext(connection);
      else setTimeout(() => sendNext(connection), Math.random() * command.spreadMs);
    }
  });
  clearInterval(progress);
  chunkListener = undefined;
  acceptedListener = undefined;
  const errors = errorFrames;
  errorFrames = {};
  const closed = closes;
  closes = {};
  send({
    type: 'streamed',
    errors,
    closed,
    completed,
    expected,
    chunks,
    elapsedMs: now() - started,
    ttfc: ttfc.values,
    accepted: accepted.values,
    full: full.values,
    lateness: lateness.values,
  });
}

async function saturate(command: Extract<Command, { type: 'saturate' }>): Promise<void> {
  let chunks = 0;
  let measuring = true;
  const started = now();
  chunkListener = (connection, isLast) => {
    if (!measuring) return;
    chunks += 1;
    if (isLast) connection.client.send('bench');
  };
  for (const connection of connections) connection.client.send('bench');
  await new Promise((resolve) => setTimeout(resolve, command.durationMs));
  measuring = false;
  const elapsedMs = now() - started;
  chunkListener = undefined;
  send({ type: 'saturated', chunks, elapsedMs });
}

process.on('message', (command: Command) => {
  const run = async () => {
    switch (command.type) {
      case 'connect':
        return connect(command);
      case 'stream':
        return stream(command);
      case 'ids':
        // The last ones: the first are those that stream.
        send({ type: 'ids', ids: connections.slice(-command.limit).map((connection) => connection.client.sessionId) });
        return undefined;
      case 'saturate':
        return saturate(command);
      case 'close': {
        const alive = connections.filter((connection) => connection.client.open).length;
        for (const connection of connections.splice(0)) connection.client.terminate();
        send({ type: 'closed', alive });
        return undefined;
      }
    }
  };
  run().catch((error: unknown) => send({ type: 'error', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
