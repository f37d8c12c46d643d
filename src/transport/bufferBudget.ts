/**
 * A node-wide budget of unsent bytes. Every stream (WebSocket, SSE, the inspector's, a
 * streamed `/v1` reply) reports what it holds after it writes; past the budget the streams
 * holding the most are closed first, until the rest fits. Each stream keeps
 * its own per-connection cap as well: this bounds the sum (19,600 slow
 * consumers at 1 MiB each would be 19 GiB).
 */
export interface BufferedStream {
  /** Bytes written to this stream and not yet taken by the kernel. */
  bufferedBytes(): number;
  /** The budget closes this stream (it was among the heaviest when the node ran over). */
  shed(): void;
}

export interface BufferBudget {
  /** After a write: `bytes` is what the stream now holds. Past the budget, the heaviest are shed. */
  note(stream: BufferedStream, bytes: number): void;
  /** The stream closed: what it held no longer counts. */
  forget(stream: BufferedStream): void;
  /** Unsent bytes as last reported (drains are seen at the next write or recount). */
  readonly heldBytes: number;
  /** Streams holding unsent bytes, as last reported. */
  readonly streams: number;
}

export interface BufferBudgetOptions {
  /** The most unsent bytes on this node (default 256 MiB). */
  maxTotalBytes?: number;
  /** Told of every stream shed, with what it held (logs, metrics). */
  onShed?: (bytes: number) => void;
}

export function createBufferBudget(options: BufferBudgetOptions = {}): BufferBudget {
  const maxTotalBytes = options.maxTotalBytes ?? 256 * 1024 * 1024;
  // Only streams that hold something are here, so idle connections cost nothing.
  const held = new Map<BufferedStream, number>();
  let total = 0;

  const enforce = () => {
    // Drains are never reported, so the running total only over-estimates: recount before closing anyone.
    total = 0;
    for (const stream of held.keys()) {
      const bytes = stream.bufferedBytes();
      if (bytes === 0) held.delete(stream);
      else {
        held.set(stream, bytes);
        total += bytes;
      }
    }
    if (total <= maxTotalBytes) return;
    const heaviestFirst = [...held].sort((a, b) => b[1] - a[1]);
    for (const [stream, bytes] of heaviestFirst) {
      if (total <= maxTotalBytes) break;
      held.delete(stream);
      total -= bytes;
      options.onShed?.(bytes);
      stream.shed();
    }
  };

  return {
    note(stream, bytes) {
      const before = held.get(stream);
      if (bytes === 0) {
        if (before !== undefined) {
          held.delete(stream);
          total -= before;
        }
        return;
      }
      held.set(stream, bytes);
      total += bytes - (before ?? 0);
      if (total > maxTotalBytes) enforce();
    },
    forget(stream) {
      const before = held.get(stream);
      if (before === undefined) return;
      held.delete(stream);
      total -= before;
    },
    get heldBytes() {
      return total;
    },
    get streams() {
      return held.size;
    },
  };
}
