import { ChatError } from './errors.ts';

/**
 * Chunk numbers are reserved in blocks: the store holds a high-water mark
 * (`seqReserved`), no chunk above it goes out, and the mark is raised a block
 * ahead, riding on the writes a streaming reply makes anyway (flushes every
 * `--flush-interval-ms`). A reply waits for a store round trip only when it
 * reaches the mark before such a write landed: after activation, once per
 * block. A re-activated session starts above the mark, skipping at most one
 * block of numbers.
 */
export const SEQ_BLOCK = 1000;

/** The mark is raised once fewer than this many numbers are left below it. */
export const SEQ_REFILL_BELOW = SEQ_BLOCK / 2;

/**
 * The chunk numbers of one session: they rise by one per chunk and are never
 * reused, across any crash, for a store that outlives the process. For one
 * that does not (memory), there is nothing to reserve against.
 */
export class ChunkNumbers {
  readonly #durable: boolean;
  #last: number;
  /** Highest number known stored as reserved; none above it may go out. */
  #reserved: number;
  /** The mark the next write raises the reservation to. */
  #target: number;

  private constructor(durable: boolean, last: number, reserved: number) {
    this.#durable = durable;
    this.#last = last;
    this.#reserved = durable ? reserved : Number.POSITIVE_INFINITY;
    this.#target = durable ? Math.max(reserved, last + SEQ_BLOCK) : Number.POSITIVE_INFINITY;
  }

  /** A new session: its record, stored before use, carries the first block. */
  static fresh(durable: boolean): ChunkNumbers {
    const numbers = new ChunkNumbers(durable, 0, SEQ_BLOCK);
    numbers.#target = durable ? SEQ_BLOCK : Number.POSITIVE_INFINITY;
    return numbers;
  }

  /** From a stored record: any number up to the stored mark may have reached a client, so go on above it. */
  static restored(durable: boolean, lastSeq: number, seqReserved: number): ChunkNumbers {
    const last = durable ? Math.max(lastSeq, seqReserved) : lastSeq;
    return new ChunkNumbers(durable, last, last);
  }

  get last(): number {
    return this.#last;
  }

  /** The mark to store with the next write. */
  get mark(): number {
    return this.#durable ? this.#target : this.#last;
  }

  /** True when the next number would pass the stored mark: a reservation must be stored first. */
  get mustReserve(): boolean {
    return this.#last + 1 > this.#reserved;
  }

  /** The next number (within the stored reservation); raises the wanted mark a block ahead when half is used. */
  next(): number {
    if (this.mustReserve) throw new ChatError('internal_error', 'Chunk number not reserved in the store yet.');
    this.#last += 1;
    this.planAhead();
    return this.#last;
  }

  /** Raises the wanted mark when less than half a block is left (a reply starting asks this too). */
  planAhead(): void {
    if (this.#durable && this.#target - this.#last < SEQ_REFILL_BELOW) this.#target = this.#last + SEQ_BLOCK;
  }

  /** The store has kept `mark`. */
  confirm(mark: number): void {
    if (this.#durable && mark > this.#reserved) this.#reserved = mark;
  }
}
