import { countTokens as countO200k, setMergeCacheSize } from 'gpt-tokenizer/encoding/o200k_base';
import type { TokenCounter } from '../domain/historyBudget.ts';

// Text from users and models may contain `<|endoftext|>` and friends: they are
// counted as the plain text they are, never refused (the library's default).
const PLAIN = { disallowedSpecial: new Set<string>() };

/**
 * BPE merges within one pre-token cost time quadratic in its length: a run of
 * 60,000 characters without a space took 5 s (200,000: two minutes), a
 * denial of service in a chat message. Runs longer than this are counted in
 * pieces of this size (a piece boundary may shift the count by a token), and
 * long texts in segments cut before a space, so a count is linear in the text.
 */
const MAX_RUN = 256;
const SEGMENT = 4096;
const EXACT_UP_TO = 1_048_576;
const LONG_RUN = new RegExp(`\\S{${MAX_RUN + 1},}`, 'g');

function countSegment(text: string): number {
  let total = 0;
  let from = 0;
  for (const match of text.matchAll(LONG_RUN)) {
    if (match.index > from) total += countO200k(text.slice(from, match.index), PLAIN);
    for (let at = 0; at < match[0].length; at += MAX_RUN) total += countO200k(match[0].slice(at, at + MAX_RUN), PLAIN);
    from = match.index + match[0].length;
  }
  if (from < text.length) total += countO200k(from === 0 ? text : text.slice(from), PLAIN);
  return total;
}

/**
 * Tokens in a text with OpenAI's `o200k_base` encoding (GPT-4o, GPT-4.1,
 * GPT-5, o-series), via `gpt-tokenizer`: pure JavaScript, its ranks shipped
 * inside the package, synchronous (so it cannot reach the network).
 * Loading the ranks takes ~0.6 s and ~60 MB of RSS once per process; a
 * count of a short message takes a few microseconds, of 600 kB of prose
 * ~50 ms; a text past 1 MiB is counted exactly up to there, estimated beyond.
 * Other models' tokenizers differ by a few percent: counted usage is the
 * fallback for a model that reports none.
 */
export const countTokens: TokenCounter = (text) => {
  if (text === '') return 0;
  // A short text holds no long run and needs no segments (most chat messages and replies).
  if (text.length <= MAX_RUN) return countO200k(text, PLAIN);
  // Past a megabyte (a 16 MiB /v1 body is ~1.5 s of counting, all on the event
  // loop) the rest is estimated at the rate of the first megabyte.
  if (text.length > EXACT_UP_TO) {
    const cut = text.lastIndexOf(' ', EXACT_UP_TO) > EXACT_UP_TO / 2 ? text.lastIndexOf(' ', EXACT_UP_TO) : EXACT_UP_TO;
    const head = countTokens(text.slice(0, cut));
    return head + Math.ceil(((text.length - cut) * head) / cut);
  }
  let total = 0;
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + SEGMENT);
    if (end < text.length) {
      // Cut before a space: " word" stays one token in the next segment.
      const space = text.lastIndexOf(' ', end);
      if (space > start + MAX_RUN) end = space;
    }
    total += countSegment(text.slice(start, end));
    start = end;
  }
  return total;
};

/**
 * The library keeps the merges of the last 100,000 distinct pre-tokens (up
 * to 256 characters each, after the pieces above). Text no one has sent
 * before fills it for good: 20,000 random 256-character runs kept 29 MB of
 * heap, 100,000 kept 148 MB, and fuzzing kept 0.4 KB a case that looked like
 * a leak. With 4,096 entries they keep 5.1 and 6.0 MB;
 * messages drawn from a 30,000-word vocabulary count in 116 µs instead of 85
 * (228 with no cache at all).
 */
const MERGE_CACHE_ENTRIES = 4096;
setMergeCacheSize(MERGE_CACHE_ENTRIES);

// The first count builds the encoder's tables (~20 ms, far more on a loaded
// machine): done at start-up, not inside the first request's deadline.
countTokens('warm up');
