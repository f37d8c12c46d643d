import type { WebSocket } from 'ws';

/**
 * What a WebSocket's TCP socket shows of its peer, read at a ping and again
 * at the next: bytes read from the peer, and, while some of ours wait unsent
 * (the kernel's send buffer is full), whether the kernel took more of them,
 * which it does only as the peer acknowledges what it received.
 */
export interface TcpCounters {
  /** Bytes read from the peer (net.Socket `bytesRead`). */
  read: number;
  /** Bytes of ours whose write has completed (`bytesWritten` − `writableLength`). */
  completed: number;
  /** Bytes of the write in flight the kernel has not taken yet; -1 when nothing waits (the kernel had room). */
  pending: number;
}

/**
 * Since the ping: `progress` (the peer sent bytes, or took some of ours while
 * they were backed up), `unsure` (the peer is judged at the next visit), or
 * `none`. Unsure: our bytes began to back up since the ping (the kernel's
 * buffer filled meanwhile), or they were backed up until the last ping and
 * the peer took them, so the kernel may still hold megabytes ahead of this
 * ping (measured: a ping written as a slow reader's backlog drained came back
 * more than an interval later).
 */
export type PeerProgress = 'progress' | 'unsure' | 'none';

/** `pending` kept at a ping whose backlog of the last ping had drained into the kernel. */
export const DRAINED = -2;

/** What to keep of `now.pending` at a ping, the last ping having kept `before`. */
export function pendingToKeep(before: number, now: TcpCounters): number {
  return before >= 0 && now.pending < 0 ? DRAINED : now.pending;
}

interface TcpSocketView {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly writableLength: number;
  readonly _handle?: { readonly writeQueueSize?: unknown } | null;
}

/**
 * The counters now, or undefined without a TCP socket. ws has no public
 * accessor for its net.Socket: `_socket` is read here as corkedSocket.ts does.
 * A backlog is one writev in flight (Node hands every queued frame to libuv at
 * once): measured, a 9 MB write to a peer reading 1.3 MB/s kept `bytesWritten`
 * and `writableLength` still for 3.5 s while libuv's `writeQueueSize` (private,
 * on `_handle`) fell every 0.5 s, so that is the one that shows the kernel taking bytes.
 */
export function tcpCounters(websocket: WebSocket): TcpCounters | undefined {
  const socket = (websocket as unknown as { _socket?: TcpSocketView | null })._socket;
  if (!socket || typeof socket.bytesRead !== 'number') return undefined;
  const completed = socket.bytesWritten - socket.writableLength;
  if (socket.writableLength === 0) return { read: socket.bytesRead, completed, pending: -1 };
  const queued = socket._handle?.writeQueueSize;
  return { read: socket.bytesRead, completed, pending: typeof queued === 'number' ? queued : 0 };
}

/** Compares the counters kept at the ping (`read`, `completed`, `pending`) with `now`. */
export function progressSince(read: number, completed: number, pending: number, now: TcpCounters): PeerProgress {
  if (now.read > read) return 'progress';
  // Only bytes taken while ours were backed up prove the peer: a kernel with room takes bytes from anyone.
  if (pending >= 0) return now.completed > completed || (now.pending >= 0 && now.pending < pending) ? 'progress' : 'none';
  return now.pending >= 0 || pending === DRAINED ? 'unsure' : 'none';
}
