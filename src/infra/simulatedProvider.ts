import { requestTokens, settledTurnTokens } from '../domain/historyBudget.ts';
import type { TokenCounter } from '../domain/historyBudget.ts';
import type { CancelSignal, Clock, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { createSharedWakeups } from './sharedWakeups.ts';
import type { SharedWakeups, Wakeup } from './sharedWakeups.ts';
import { countTokens } from './tokenizer.ts';

export interface SimulatedProviderOptions {
  /** Chunks per reply (default 5, as the seed). */
  chunks?: number;
  /** Delay before each chunk in ms (default 400, as the seed); 0 streams at once. */
  intervalMs?: number;
  clock: Clock;
  /** Counts the usage it reports (default: the o200k tokenizer). */
  countTokens?: TokenCounter;
}

/**
 * The seed's model: for user text T it streams `chunk 1: T` … `chunk N: T`,
 * one every `intervalMs`. Every session streams on its own schedule (on
 * timers shared by the replies due in the same millisecond), so a thousand
 * sessions finish in one stream's time. It reports usage counted
 * with the tokenizer: in, the prompt it reads (it reads no history); out,
 * its whole reply. It always stops with `finish_reason` `stop`.
 */
export function createSimulatedProvider(options: SimulatedProviderOptions): ModelProvider {
  const chunks = options.chunks ?? 5;
  const intervalMs = options.intervalMs ?? 400;
  const { clock } = options;
  const count = options.countTokens ?? countTokens;
  // All replies of this model share timers: one per due millisecond, not one per chunk per reply.
  const wakeups = createSharedWakeups(clock);
  const replyCounts = new ReplyCounts(chunks, count);

  return {
    name: 'simulated',
    stream: (request, signal) => ({ [Symbol.asyncIterator]: () => new SimulatedStream(request, signal, chunks, intervalMs, wakeups, count, replyCounts) }),
  };
}

/** Prompts longer than this are counted each time (a bounded memo holds short ones only). */
const MEMO_PROMPT_CHARS = 1024;
const MEMO_ENTRIES = 1000;

/**
 * The reply's token count is a function of its prompt alone (the reply is
 * made from it), so a model's recent short prompts keep theirs: counting the
 * whole reply was ~5 KB allocated and ~10 µs per reply in the 5,000-session
 * burst (bench/allocations.ts), the simulated model's cost, not the
 * gateway's. At most 1,000 prompts of at most 1,024 characters (~2 MB); when
 * full it starts over.
 */
class ReplyCounts {
  readonly #memo = new Map<string, number>();
  readonly #chunks: number;
  readonly #count: TokenCounter;

  constructor(chunks: number, count: TokenCounter) {
    this.#chunks = chunks;
    this.#count = count;
  }

  of(prompt: string): number {
    if (prompt.length > MEMO_PROMPT_CHARS) return replyTokens(prompt, this.#chunks, this.#count);
    let tokens = this.#memo.get(prompt);
    if (tokens === undefined) {
      tokens = replyTokens(prompt, this.#chunks, this.#count);
      if (this.#memo.size >= MEMO_ENTRIES) this.#memo.clear();
      this.#memo.set(prompt, tokens);
    }
    return tokens;
  }
}

/**
 * One reply's stream, as a hand-written iterator rather than an async
 * generator: a generator stepped by `for await` made, per chunk, its request
 * record, a promise for each `await` and one for each `next()`, and was with
 * the closures its loop made ~12 KB of the ~82 KB a reply allocated in the
 * 2,000-session burst (bench/allocations.ts, `next` and `stream`). Here a
 * chunk costs one promise, its result and its text. The same contract: each
 * chunk `intervalMs` after the one before (the first too), and once `signal`
 * aborts the wait ends at once, its timer released, and the stream is done.
 */
class SimulatedStream implements AsyncIterator<ProviderChunk> {
  readonly #request: GenerationRequest;
  readonly #signal: CancelSignal;
  readonly #chunks: number;
  readonly #intervalMs: number;
  readonly #wakeups: SharedWakeups;
  readonly #count: TokenCounter;
  readonly #replyCounts: ReplyCounts;
  // Bound once per reply, not an arrow field: tsx (how the server runs)
  // names every arrow it makes (`__name`, a defineProperty per closure).
  readonly #wake: () => void = this.#wakeUp.bind(this);
  #index = 0;
  #listening = false;
  #pending: Wakeup | undefined;
  #resolve: ((result: IteratorResult<ProviderChunk>) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  constructor(
    request: GenerationRequest,
    signal: CancelSignal,
    chunks: number,
    intervalMs: number,
    wakeups: SharedWakeups,
    count: TokenCounter,
    replyCounts: ReplyCounts,
  ) {
    this.#request = request;
    this.#signal = signal;
    this.#chunks = chunks;
    this.#intervalMs = intervalMs;
    this.#wakeups = wakeups;
    this.#count = count;
    this.#replyCounts = replyCounts;
  }

  next(): Promise<IteratorResult<ProviderChunk>> {
    if (this.#index >= this.#chunks || this.#signal.aborted) return Promise.resolve(this.#finish());
    if (!this.#listening) {
      // One abort listener per reply, not one per chunk: EventTarget
      // listeners are costly when 10,000 replies stream at once.
      this.#listening = true;
      // The stream itself listens (`handleEvent`): no listener function to make.
      this.#signal.addEventListener('abort', this, { once: true });
    }
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      // At 0 ms it still yields to the event loop (after I/O), as a real
      // model's I/O would: a reply made in one macrotask lets no socket drain.
      this.#pending = this.#intervalMs <= 0 ? this.#wakeups.nextTurn(this.#wake) : this.#wakeups.after(this.#intervalMs, this.#wake);
    });
  }

  return(): Promise<IteratorResult<ProviderChunk>> {
    this.#pending?.cancel();
    this.#pending = undefined;
    this.#index = this.#chunks;
    return Promise.resolve(this.#finish());
  }

  #wakeUp(): void {
    const resolve = this.#resolve;
    const reject = this.#reject;
    this.#pending = undefined;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (!resolve || !reject) return;
    if (this.#signal.aborted) {
      resolve(this.#finish());
      return;
    }
    try {
      resolve(this.#piece());
    } catch (error) {
      this.#index = this.#chunks;
      this.#finish();
      reject(error);
    }
  }

  /** The signal aborted: the wait ends now, its timer released. */
  handleEvent(): void {
    this.#pending?.cancel();
    this.#wakeUp();
  }

  #piece(): IteratorResult<ProviderChunk> {
    this.#index += 1;
    const index = this.#index;
    const request = this.#request;
    const text = `chunk ${index}: ${request.prompt}`;
    if (index < this.#chunks) return { done: false, value: { text, last: false } };
    const count = this.#count;
    const prompt = request.promptTurn ?? { role: 'user' as const, content: request.prompt };
    // The prompt is the stored message (counted once: its window read the same count).
    const inputTokens = requestTokens([], count, request.options?.system) + settledTurnTokens(prompt, count);
    const usage = { inputTokens, outputTokens: this.#replyCounts.of(request.prompt) };
    return { done: false, value: { text, last: true, usage, finishReason: 'stop' } };
  }

  /** Done: the abort listener goes (as a generator's `finally`). */
  #finish(): IteratorResult<ProviderChunk> {
    if (this.#listening) {
      this.#listening = false;
      this.#signal.removeEventListener('abort', this);
    }
    return { done: true, value: undefined };
  }
}

/**
 * Tokens of the whole reply: counted as one text up to 64 kB, beyond as the
 * prompt's count times the chunks plus the prefixes (a long prompt repeated
 * hundreds of times would cost a count of megabytes per reply).
 */
function replyTokens(prompt: string, chunks: number, count: TokenCounter): number {
  if ((prompt.length + 12) * chunks <= 65_536) {
    let reply = '';
    for (let index = 1; index <= chunks; index += 1) reply += `chunk ${index}: ${prompt}`;
    return count(reply);
  }
  let prefixes = 0;
  for (let index = 1; index <= chunks; index += 1) prefixes += count(`chunk ${index}: `);
  return prefixes + chunks * count(prompt);
}
