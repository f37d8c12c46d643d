/**
 * A load generator process, forked by bench/run.ts. It holds a slice of the
 * client connections (from one loopback source address) and runs the
 * orchestrator's commands over IPC. Frames are inspected with string checks,
 * not JSON.parse, so the generator stays cheap next to the server it loads.
 */
import WebSocket from 'ws';
import { Reservoir } from './stats.ts';

interface Connection {
  socket: WebSocket;
  ready: boolean;
  sessionId: string;
  sentAt: number;
  chunksOfMessage: number;
  messagesLeft: number;
  onLast?: () => void;
}

type Command =
  | { type: 'connect'; url: string; count: number; ratePerSecond: number; localAddress: string }
  /** `fraction` (default 1): only that share of this generator's sessions stream. */
  | { type: 'stream'; messages: number; intervalMs: number; timeoutMs: number; spreadMs: number; fraction?: number }
  /** The ids of the last `limit` sessions held (idle ones, for the cluster bench's samples). */
  | { type: 'ids'; limit: number }
  | { type: 'saturate'; durationMs: number }
  | { type: 'close' };

const connections: Connection[] = [];
const send = (message: unknown) => process.send?.(message);
const now = () => performance.now();

let chunkListener: ((connection: Connection, isLast: boolean) => void) | undefined;

function open(url: string, localAddress: string): Promise<Connection | string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false, handshakeTimeout: 30_000 });
    const connection: Connection = { socket, ready: false, sessionId: '', sentAt: 0, chunksOfMessage: 0, messagesLeft: 0 };
    let settled = false;
    socket.on('message', (data) => {
      const text = data.toString();
      if (!connection.ready) {
        if (text.startsWith('{"type":"session"')) {
          connection.ready = true;
          connection.sessionId = text.slice(text.indexOf('"sessionId":"') + 13, text.lastIndexOf('"'));
          settled = true;
          resolve(connection);
        } else if (!settled) {
          settled = true;
          resolve(text.slice(0, 80));
        }
        return;
      }
      if (text.startsWith('{"type":"chunk"')) chunkListener?.(connection, text.includes('"is_last":true'));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!settled) {
        settled = true;
        resolve(error.code ?? error.message);
      }
    });
    socket.on('close', (code) => {
      if (!settled) {
        settled = true;
        resolve(`close ${code}`);
      }
    });
  });
}

async function connect(command: Extract<Command, { type: 'connect' }>): Promise<void> {
  const errors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  const started = now();
  const pending: Promise<void>[] = [];
  const progress = setInterval(() => send({ type: 'progress', ok, failed }), 1000);
  for (let index = 0; index < command.count; index += 1) {
    // Pace the opening: connection `index` is due at index / rate seconds.
    const due = started + (index * 1000) / command.ratePerSecond;
    const wait = due - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      open(command.url, command.localAddress).then((result) => {
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
  send({ type: 'connected', ok, failed, errors, elapsedMs: now() - started });
}

async function stream(command: Extract<Command, { type: 'stream' }>): Promise<void> {
  const ttfc = new Reservoir();
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
      connection.socket.send('bench');
    };
    chunkListener = (connection, isLast) => {
      const arrival = now();
      chunks += 1;
      connection.chunksOfMessage += 1;
      if (connection.chunksOfMessage === 1) ttfc.add(arrival - connection.sentAt);
      lateness.add(arrival - (connection.sentAt + connection.chunksOfMessage * command.intervalMs));
      if (!isLast) return;
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
  send({
    type: 'streamed',
    completed,
    expected,
    chunks,
    elapsedMs: now() - started,
    ttfc: ttfc.values,
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
    if (isLast) connection.socket.send('bench');
  };
  for (const connection of connections) connection.socket.send('bench');
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
      case 'saturate':
        return saturate(command);
      case 'ids':
        // The last ones: the first are those that stream.
        send({ type: 'ids', ids: connections.slice(-command.limit).map((connection) => connection.sessionId) });
        return undefined;
      case 'close': {
        const alive = connections.filter((connection) => connection.socket.readyState === WebSocket.OPEN).length;
        for (const connection of connections.splice(0)) connection.socket.terminate();
        send({ type: 'closed', alive });
        return undefined;
      }
    }
  };
  run().catch((error: unknown) => send({ type: 'error', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
