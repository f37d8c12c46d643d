import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import type { ChatEvent } from '../../src/domain/events.ts';
import type { EventBus, SessionStore } from '../../src/domain/ports.ts';
import { ChatError } from '../../src/domain/errors.ts';

/**
 * Peers that misbehave on purpose, over raw TCP (no client library to be
 * polite on their behalf): malformed upgrades, hang-ups mid-handshake,
 * half-open sockets that never answer a ping or never read.
 */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Resolves when the socket is closed (by either side), or after `timeoutMs`. */
function closed(socket: Socket, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** An upgrade that `ws` refuses itself (no key, wrong version, or a POST): resolves with the status line it got. */
export async function malformedUpgrade(port: number, variant: number): Promise<string> {
  const socket = await open(port);
  socket.on('error', () => {});
  const requests = [
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n',
    upgradeRequest('/ws').replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 99'),
    upgradeRequest('/ws').replace('GET', 'POST'),
  ];
  let answer = '';
  socket.on('data', (data) => (answer += data.toString('latin1')));
  socket.write(requests[variant % requests.length]!);
  await closed(socket);
  return answer.split('\r\n')[0] ?? '';
}

/** A full upgrade request, then the socket is destroyed at once (before the 101, most of the time). */
export async function hangUpDuringHandshake(port: number, path = '/ws'): Promise<void> {
  const socket = await open(port);
  socket.on('error', () => {});
  socket.write(upgradeRequest(path));
  socket.destroy();
}

/** Waits for the 101, then hangs up at once: before the session is created or found (the store is slow). */
export async function hangUpAfterUpgrade(port: number, path = '/ws'): Promise<void> {
  const socket = await open(port);
  socket.on('error', () => {});
  socket.write(upgradeRequest(path));
  await new Promise<void>((resolve) => {
    socket.once('data', () => resolve());
    socket.once('close', () => resolve());
  });
  socket.destroy();
}

/** An SSE request that hangs up after `afterMs` (while its session is still loading). */
export function hangUpSse(port: number, path: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' } });
    request.on('error', () => resolve());
    request.on('response', (response) => {
      response.resume();
      response.on('error', () => {});
    });
    request.end();
    setTimeout(() => {
      request.destroy();
      resolve();
    }, afterMs);
  });
}

/**
 * Completes the handshake and then reads and answers nothing: no pong, no
 * close frame. `paused` also stops reading, so the kernel buffers fill up.
 */
export async function halfOpenPeer(port: number, path = '/ws', options: { paused?: boolean } = {}): Promise<Socket> {
  const socket = await open(port);
  socket.on('error', () => {});
  socket.setNoDelay(true);
  socket.write(upgradeRequest(path));
  await new Promise<void>((resolve, reject) => {
    socket.once('data', (head) => {
      if (!head.toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error(head.toString('latin1')));
      if (options.paused) socket.pause();
      resolve();
    });
  });
  return socket;
}

/** The bus, counting its per-session listeners (subscribed and not yet unsubscribed). */
export function countingBus(inner: EventBus): EventBus & { readonly listeners: number } {
  let listeners = 0;
  return {
    get listeners() {
      return listeners;
    },
    publish: (event: ChatEvent) => inner.publish(event),
    subscribe(sessionId, listener) {
      const unsubscribe = inner.subscribe(sessionId, listener);
      listeners += 1;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        listeners -= 1;
        unsubscribe();
      };
    },
    subscribeAll: (listener) => inner.subscribeAll(listener),
    replay: (sessionId, afterSeq) => inner.replay(sessionId, afterSeq),
    forget: (sessionId) => inner.forget(sessionId),
    close: () => inner.close(),
  };
}

/** A real store whose `create` and `load` take `delayMs`; loads of ids starting with `F` then fail (store_unavailable). */
export function slowStore(inner: SessionStore, delayMs: number): SessionStore {
  const later = <T>(work: () => Promise<T>) => new Promise<void>((resolve) => setTimeout(resolve, delayMs)).then(work);
  return {
    durable: inner.durable,
    ...(inner.keys === undefined ? {} : { keys: inner.keys }),
    create: (record) => later(() => inner.create(record)),
    load: (sessionId, window) =>
      later(() =>
        sessionId.startsWith('F') ? Promise.reject(new ChatError('store_unavailable', undefined, { cause: new Error('load failed (test)') })) : inner.load(sessionId, window),
      ),
    save: (update) => inner.save(update),
    delete: (sessionId, owner) => inner.delete(sessionId, owner),
    ping: () => inner.ping(),
    close: () => inner.close(),
    listSessions: (query) => inner.listSessions(query),
    listMessages: (sessionId, query) => inner.listMessages(sessionId, query),
    idleSessions: (before, limit) => inner.idleSessions(before, limit),
    chunksAfter: (sessionId, afterSeq) => inner.chunksAfter(sessionId, afterSeq),
  };
}
