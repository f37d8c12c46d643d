import { describe, expect, it } from 'vitest';
import { ReplyAbort } from '../../src/actors/replyAbort.ts';

describe('ReplyAbort', () => {
  it('calls each listener once at the abort, functions and handleEvent objects alike, and is aborted from then on', () => {
    const abort = new ReplyAbort();
    const calls: string[] = [];
    const fn = () => calls.push('fn');
    const object = { handleEvent: () => calls.push('object') };
    abort.addEventListener('abort', fn, { once: true });
    abort.addEventListener('abort', object);
    expect(abort.aborted).toBe(false);
    abort.abort();
    expect(abort.aborted).toBe(true);
    expect(calls).toEqual(['fn', 'object']);
    abort.abort();
    expect(calls).toEqual(['fn', 'object']);
  });

  it('calls a listener added twice once, and neither a removed one nor one added after the abort', () => {
    const abort = new ReplyAbort();
    const calls: string[] = [];
    const twice = () => calls.push('twice');
    const removed = () => calls.push('removed');
    abort.addEventListener('abort', twice);
    abort.addEventListener('abort', twice);
    abort.addEventListener('abort', removed);
    abort.removeEventListener('abort', removed);
    abort.removeEventListener('abort', () => calls.push('never added'));
    abort.abort();
    abort.addEventListener('abort', () => calls.push('late'));
    abort.abort();
    expect(calls).toEqual(['twice']);
  });

  it('calls every listener when one throws, then throws its error', () => {
    const abort = new ReplyAbort();
    const calls: string[] = [];
    const failure = new Error('listener failed');
    abort.addEventListener('abort', () => {
      throw failure;
    });
    abort.addEventListener('abort', () => calls.push('after'));
    expect(() => abort.abort()).toThrow(failure);
    expect(calls).toEqual(['after']);
    expect(abort.aborted).toBe(true);
  });
});
