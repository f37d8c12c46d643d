import { describe, expect, it } from 'vitest';
import { createBufferBudget } from '../../src/transport/bufferBudget.ts';
import type { BufferedStream } from '../../src/transport/bufferBudget.ts';

/** A stream whose unsent bytes the test sets by hand, recording whether it was shed. */
function stream(name: string, shedLog: string[]) {
  const state = { bytes: 0 };
  const target: BufferedStream & { bytes: number } = {
    get bytes() {
      return state.bytes;
    },
    set bytes(value: number) {
      state.bytes = value;
    },
    bufferedBytes: () => state.bytes,
    shed: () => shedLog.push(name),
  };
  return target;
}

describe('the node-wide buffer budget', () => {
  it('past the budget closes the heaviest first, only as many as needed, whoever wrote last', () => {
    const shed: string[] = [];
    const budget = createBufferBudget({ maxTotalBytes: 1000 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => stream(name, shed)) as [ReturnType<typeof stream>, ReturnType<typeof stream>, ReturnType<typeof stream>, ReturnType<typeof stream>];
    a.bytes = 500;
    budget.note(a, 500);
    b.bytes = 300;
    budget.note(b, 300);
    c.bytes = 150;
    budget.note(c, 150);
    expect(shed).toEqual([]);
    expect(budget.heldBytes).toBe(950);
    // d's small write crosses the budget: the heaviest (a) goes, not d.
    d.bytes = 100;
    budget.note(d, 100);
    expect(shed).toEqual(['a']);
    expect(budget.heldBytes).toBe(550);
    expect(budget.streams).toBe(3);
    // Far over: b then c, heaviest first, until the rest fits.
    d.bytes = 1200;
    budget.note(d, 1200);
    expect(shed).toEqual(['a', 'd']);
    c.bytes = 900;
    budget.note(c, 900);
    expect(shed).toEqual(['a', 'd', 'c']);
    expect(budget.heldBytes).toBe(300);
  });

  it('recounts before closing anyone: bytes drained since the last write do not count', () => {
    const shed: string[] = [];
    const budget = createBufferBudget({ maxTotalBytes: 1000 });
    const a = stream('a', shed);
    const b = stream('b', shed);
    a.bytes = 900;
    budget.note(a, 900);
    a.bytes = 0; // the kernel took it all; a has not written since
    b.bytes = 400;
    budget.note(b, 400);
    expect(shed).toEqual([]);
    expect(budget.heldBytes).toBe(400);
    expect(budget.streams).toBe(1);
  });

  it('forgets closed streams and streams that drained; idle streams are never held', () => {
    const shed: string[] = [];
    const budget = createBufferBudget({ maxTotalBytes: 1000 });
    const a = stream('a', shed);
    budget.note(a, 0);
    expect(budget.streams).toBe(0);
    budget.note(a, 700);
    budget.forget(a);
    expect(budget.heldBytes).toBe(0);
    budget.note(a, 700);
    budget.note(a, 0);
    expect(budget.streams).toBe(0);
    expect(budget.heldBytes).toBe(0);
  });
});
