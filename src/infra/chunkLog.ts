import type { ChunkEvent } from '../domain/events.ts';

/**
 * The last `capacity` chunks of one session, in a ring that grows up to its
 * capacity, so an idle session with few chunks costs few slots.
 */
export class ChunkLog {
  readonly capacity: number;
  #items: ChunkEvent[] = [];
  #start = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  append(chunk: ChunkEvent): void {
    if (this.capacity <= 0) return;
    if (this.#items.length < this.capacity) {
      this.#items.push(chunk);
      return;
    }
    this.#items[this.#start] = chunk;
    this.#start = (this.#start + 1) % this.capacity;
  }

  /** Chunks with seq > afterSeq, oldest first. */
  after(afterSeq: number): ChunkEvent[] {
    const ordered = this.#start === 0 ? this.#items : [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)];
    // seq rises by one per chunk, so the first wanted index is computable.
    const first = ordered[0];
    if (!first) return [];
    const skip = Math.max(0, afterSeq - first.seq + 1);
    return ordered.slice(skip);
  }
}
