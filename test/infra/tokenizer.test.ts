import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { countTokens } from '../../src/infra/tokenizer.ts';

describe('the tokenizer (o200k_base, shipped in gpt-tokenizer)', () => {
  it('counts known strings as OpenAI’s tiktoken does', () => {
    // Published o200k_base (gpt-4o) encodings: OpenAI's token-counting guide and a tiktoken tutorial.
    expect(encode('tiktoken is great!')).toEqual([83, 8251, 2488, 382, 2212, 0]);
    expect(countTokens('tiktoken is great!')).toBe(6);
    expect(encode('this is a test example, tutorialexample.com')).toEqual([851, 382, 261, 1746, 4994, 11, 24000, 18582, 1136]);
    expect(countTokens('this is a test example, tutorialexample.com')).toBe(9);
    expect(countTokens('hello world')).toBe(2);
    expect(countTokens('')).toBe(0);
  });

  it('counts special-token text as plain text instead of throwing', () => {
    expect(countTokens('<|endoftext|>')).toBe(7);
  });

  it('counts non-Latin text and emoji', () => {
    expect(countTokens('日本語のテキスト')).toBe(6);
    expect(countTokens('👋🌍')).toBeGreaterThan(1);
  });
});

describe('the tokenizer on long and hostile text', () => {
  it('counts long prose exactly as the library does, cutting only before spaces', () => {
    const prose = Array.from({ length: 3000 }, (_, index) => `word${index % 97} and, more.`).join(' ');
    expect(prose.length).toBeGreaterThan(40_000);
    expect(countTokens(prose)).toBe(encode(prose).length);
  });

  it('stays linear on a long run without spaces (the library alone takes seconds), within a token per piece', () => {
    const run = 'y'.repeat(200_000);
    const started = performance.now();
    const counted = countTokens(run);
    expect(performance.now() - started).toBeLessThan(2_000);
    // 'yyyy' is one token in o200k: the exact count is 50,000.
    expect(Math.abs(counted - 50_000)).toBeLessThanOrEqual(200_000 / 256);
    const noise = Buffer.from(Array.from({ length: 120_000 }, (_, index) => (index * 7919) % 256)).toString('base64');
    const before = performance.now();
    expect(countTokens(noise)).toBeGreaterThan(noise.length / 4);
    expect(performance.now() - before).toBeLessThan(2_000);
  });
});

describe('the tokenizer past a megabyte', () => {
  it('counts the first megabyte exactly and estimates the rest at its rate, in bounded time', () => {
    const sentence = 'The quick brown fox jumps over the lazy dog. ';
    const text = sentence.repeat(Math.ceil(4_000_000 / sentence.length));
    const started = performance.now();
    const counted = countTokens(text);
    expect(performance.now() - started).toBeLessThan(3_000);
    const perSentence = countTokens(sentence.repeat(1000)) / 1000; // in a run, the trailing space joins the next word
    const exact = (text.length / sentence.length) * perSentence;
    expect(Math.abs(counted - exact) / exact).toBeLessThan(0.01);
  });
});

describe('the tokenizer’s memory', () => {
  it('keeps a bounded cache: 20,000 never-seen runs leave under 10 MB of heap (the library’s default kept 29 MB)', () => {
    const kept = Number(
      execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(new URL('../support/tokenizerHeap.ts', import.meta.url)), '20000'], { encoding: 'utf8', timeout: 60_000 }),
    );
    expect(kept).toBeLessThan(10e6);
  }, 90_000);
});
