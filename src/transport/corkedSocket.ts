import type { WebSocket } from 'ws';

/** A writable that can be corked: a socket, or an HTTP response (which corks its socket). */
export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly writableCorked: number;
  readonly destroyed: boolean;
}

// Sockets corked in this turn of the event loop, uncorked together by one
// `process.nextTick` (it runs once the current callback and its microtasks
// are done), so all the frames one callback makes for a connection leave in
// one write.
let corked: Corkable[] = [];

const uncorkAll = () => {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
};

/**
 * Corks `socket` until the end of the current callback, once per turn. A
 * reply's last chunk and its `completed` frame then cost one `writev`, not
 * two (each frame was a system call of its own, a measured share of the CPU
 * per reply; a streamed `/v1` answer's frames too). Nothing waits for a
 * later turn: the frames still leave in the callback that made them.
 */
export function corkForThisTick(socket: Corkable): void {
  if (socket.writableCorked > 0 || socket.destroyed) return;
  if (corked.length === 0) process.nextTick(uncorkAll);
  corked.push(socket);
  socket.cork();
}

/** The same for a `ws` WebSocket: its TCP socket (ws corks each frame's header and payload itself, nested inside ours). */
export function corkWebSocketForThisTick(websocket: WebSocket): void {
  const socket = (websocket as unknown as { _socket?: Corkable | null })._socket;
  if (socket) corkForThisTick(socket);
}
