import { describe, expect, it } from 'vitest';
import { dayOf, daysBefore, isDay } from '../../src/domain/tokenUsage.ts';

const midnight = Date.parse('2026-12-06T00:00:00Z');

describe('dayOf', () => {
  it('names the UTC day of each time, however the times come (the day it keeps for the last one never leaks into another)', () => {
    const times: [number, string][] = [
      [midnight + 12 * 3_600_000, '2026-12-06'],
      [midnight - 1, '2026-12-05'],
      [midnight, '2026-12-06'],
      [midnight + 86_400_000 - 1, '2026-12-06'],
      [midnight + 86_400_000, '2026-12-07'],
      [midnight + 0.5, '2026-12-06'],
      [midnight - 0.5, '2026-12-05'],
      [-1, '1969-12-31'],
      [-0.5, '1970-01-01'],
      [-1.5, '1969-12-31'],
      [0, '1970-01-01'],
      [midnight + 3_600_000, '2026-12-06'],
    ];
    for (const [ms, day] of times) expect(dayOf(ms), String(ms)).toBe(day);
    // The same times again in reverse: each answer is the day's, not the previous call's.
    for (const [ms, day] of [...times].reverse()) expect(dayOf(ms), String(ms)).toBe(day);
  });

  it('still refuses a time that is not a date', () => {
    expect(() => dayOf(Number.NaN)).toThrow(RangeError);
    expect(dayOf(midnight)).toBe('2026-12-06');
  });

  it('agrees with daysBefore and isDay', () => {
    expect(daysBefore('2026-12-06', 6)).toBe('2026-11-30');
    expect(isDay('2026-02-29')).toBe(false);
    expect(isDay('2028-02-29')).toBe(true);
  });
});
