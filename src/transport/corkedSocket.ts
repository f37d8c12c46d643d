import type { WebSocket } from 'ws';

/** A writable that can be corked: a socket, or an HTTP response (which corks its socket). */
export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly writableCorked: number;
  readonly destroyed: boolean;
}

/** Told once the frames of this turn have been handed to the socket (what is still unsent is then real backlog). */
export interface FlushListener {
  flushed(): void;
}

// Sockets corked in this turn of the event loop (and who wants to hear when
// they are uncorked), uncorked together by one `process.nextTick`, which runs
// once the current callback and its microtasks are done: all the frames one
// callback makes for a connection leave in one write.
let corked: Corkable[] = [];
let listeners: (FlushListener | undefined)[] = [];
const corkedNow = new Set<Corkable>();

const uncorkAll = () => {
  const sockets = corked;
  const told = listeners;
  corked = [];
  listeners = [];
  corkedNow.clear();
  for (let index = 0; index < sockets.length; index += 1) {
    sockets[index]!.uncork();
    told[index]?.flushed();
  }
};

/**
 * Corks `socket` until the end of the current callback, once per turn. A
 * reply's last chunk and its `completed` frame then cost one `writev`, not
 * two (each frame was a system call of its own, a measured share of the CPU
 * per reply). Nothing waits for a later turn: the frames still leave in the
 * callback that made them. Returns true when a flush follows in this turn
 * (`listener`, given with the first cork of the turn, is then told); false
 * when the socket cannot be corked here (closed, or corked by someone else).
 */
export function corkForThisTick(socket: Corkable, listener?: FlushListener): boolean {
  if (corkedNow.has(socket)) return true;
  if (socket.writableCorked > 0 || socket.destroyed) return false;
  if (corked.length === 0) process.nextTick(uncorkAll);
  corked.push(socket);
  listeners.push(listener);
  corkedNow.add(socket);
  socket.cork();
  return true;
}

/** The same for a `ws` WebSocket: its TCP socket (ws corks each frame's header and payload itself, nested inside ours). */
export function corkWebSocketForThisTick(websocket: WebSocket, listener?: FlushListener): boolean {
  const socket = (websocket as unknown as { _socket?: Corkable | null })._socket;
  return socket ? corkForThisTick(socket, listener) : false;
}
