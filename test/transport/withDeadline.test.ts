import { describe, expect, it } from 'vitest';
import { withDeadline } from '../../src/transport/withDeadline.ts';

const timeout = () => new Error('too late');

describe('withDeadline (the bound on a WebSocket admission)', () => {
  it('passes an answer in time through, and a failure in time', async () => {
    await expect(withDeadline(Promise.resolve(7), 1000, timeout)).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('no')), 1000, timeout)).rejects.toThrow('no');
  });

  it('answers the timeout when the work hangs, and hands what comes late to onLate (a slot released)', async () => {
    let deliver: (value: string) => void = () => {};
    const hanging = new Promise<string>((resolve) => (deliver = resolve));
    const released: string[] = [];
    const started = Date.now();
    await expect(withDeadline(hanging, 50, timeout, (late) => released.push(late))).rejects.toThrow('too late');
    expect(Date.now() - started).toBeLessThan(1000);
    deliver('slot');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(released).toEqual(['slot']);
  });

  it('a late failure goes nowhere (no unhandled rejection)', async () => {
    let fail: (error: Error) => void = () => {};
    const hanging = new Promise<string>((_, reject) => (fail = reject));
    await expect(withDeadline(hanging, 20, timeout)).rejects.toThrow('too late');
    fail(new Error('late'));
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
});
