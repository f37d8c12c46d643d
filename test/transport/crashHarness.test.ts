import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCrashHarness } from '../support/crashHarness.ts';

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-crash-harness-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

// A seed from the environment replays a failing run exactly (the report names it).
const seed = Number(process.env['CRASH_SEED'] ?? 20_261_201);

describe('crash harness (real server process on SQLite, SIGKILL at seeded random moments)', () => {
  it('loses no acknowledged message, reuses no chunk number, and leaves every reply ended, across 10 kills', { timeout: 120_000 }, async () => {
    const report = await runCrashHarness({ directory, kills: 10, seed });
    const context = `seed ${seed}`;
    expect(report.kills, context).toBe(10);
    expect(report.acknowledged, context).toBeGreaterThan(50);
    expect(report.chunksSeen, context).toBeGreaterThan(100);
    expect(report.lost, context).toEqual([]);
    expect(report.seqsReused, context).toEqual([]);
    expect(report.unfinished, context).toEqual([]);
  });
});
