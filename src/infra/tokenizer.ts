import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';
import type { TokenCounter } from '../domain/historyBudget.ts';

// Text from users and models may contain `<|endoftext|>` and friends: they are
// counted as the plain text they are, never refused (the library's default).
const PLAIN = { disallowedSpecial: new Set<string>() };

/**
 * Tokens in a text with OpenAI's `o200k_base` encoding (GPT-4o, GPT-4.1,
 * GPT-5, o-series), via `gpt-tokenizer`: pure JavaScript, its ranks shipped
 * inside the package, synchronous (so it cannot reach the network).
 * Loading the ranks takes ~30 ms and ~60 MB of RSS once per process; a
 * count of a short message takes a few microseconds. Other models' tokenizers
 * differ by a few percent: counted usage is the fallback for a model that
 * reports none.
 */
export const countTokens: TokenCounter = (text) => (text === '' ? 0 : countO200k(text, PLAIN));

// The first count builds the encoder's tables (~20 ms, far more on a loaded
// machine): done at start-up, not inside the first request's deadline.
countTokens('warm up');
