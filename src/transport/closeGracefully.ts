import type { WebSocket } from 'ws';

/**
 * Closes a WebSocket with `code` and gives the close handshake `graceMs` to
 * finish before the socket is dropped. `terminate()` right after `close()`
 * would throw away the close frame still queued (the peer then sees 1006), and
 * `close()` alone waits up to 30 s for a peer that may never answer.
 * Resolves once the socket is closed, either way.
 */
export function closeGracefully(socket: WebSocket, code: number, reason: string, graceMs: number): Promise<void> {
  if (socket.readyState === socket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.terminate(), graceMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (socket.readyState === socket.OPEN) socket.close(code, reason);
    else if (socket.readyState === socket.CONNECTING) socket.terminate();
  });
}
