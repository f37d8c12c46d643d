import type { ChunkEvent } from '../domain/events.ts';

/** What a chunk counts against the byte cap: its text at two bytes per UTF-16 unit, as a V8 two-byte string holds it. */
export function chunkBytes(chunk: ChunkEvent): number {
  return 2 * chunk.chunk.length;
}

/**
 * The most recent chunks of one session for resume, bounded both in count
 * (`capacity`) and in bytes of text (`maxBytes`; the newest chunk is always
 * kept). It grows with use, so an idle session with few chunks costs little.
 */
export class ChunkLog {
  readonly capacity: number;
  readonly maxBytes: number;
  #items: ChunkEvent[] = [];
  #head = 0;
  #bytes = 0;

  constructor(capacity: number, maxBytes = Number.POSITIVE_INFINITY) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  append(chunk: ChunkEvent): void {
    if (this.capacity <= 0 || this.maxBytes <= 0) return;
    this.#items.push(chunk);
    this.#bytes += chunkBytes(chunk);
    while (this.size > this.capacity || (this.#bytes > this.maxBytes && this.size > 1)) {
      this.#bytes -= chunkBytes(this.#items[this.#head]!);
      this.#head += 1;
    }
    // Evicted slots are reclaimed in bulk, not one shift per chunk.
    if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Chunks with seq > afterSeq, oldest first. */
  after(afterSeq: number): ChunkEvent[] {
    // seq only rises; it may jump (a re-activated session starts above its mark), so search rather than compute.
    let low = this.#head;
    let high = this.#items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#items[middle]!.seq <= afterSeq) low = middle + 1;
      else high = middle;
    }
    return this.#items.slice(low);
  }
}
