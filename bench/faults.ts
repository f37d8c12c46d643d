/**
 * `npm run bench -- --scenario faults`: what survives faults, and what
 * durable acknowledgement costs.
 * - crashes: the crash harness (test/support/crashHarness.ts) with more
 *   kills than CI runs: kills survived, acknowledged messages lost, chunk
 *   numbers reused, replies left unfinished (all but the first must be 0);
 * - acknowledgement cost (bench/ackCost.ts): messages accepted per second
 *   and p99 time to `202`, on SQLite and PostgreSQL, for this checkout and,
 *   with `--before-root DIR`, for another one (e.g. the write-behind version
 *   before durable acknowledgement: `git archive aeec17f | tar -x -C DIR`,
 *   with `node_modules` linked in).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCrashHarness } from '../test/support/crashHarness.ts';
import { measureAckCost } from './ackCost.ts';
import type { AckCost } from './ackCost.ts';
import { formatNumber } from './stats.ts';
import type { Row } from './stats.ts';

export interface FaultsConfig {
  kills: number;
  seed: number;
  ackClients: number;
  ackSeconds: number;
  databaseUrl: string;
  beforeRoot: string | undefined;
}

async function postgresUp(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function runFaults(config: FaultsConfig, log: (line: string) => void): Promise<{ rows: Row[]; results: Record<string, unknown> }> {
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  const verdict = (ok: boolean): 'pass' | 'FAIL' => (ok ? 'pass' : 'FAIL');

  const directory = mkdtempSync(join(tmpdir(), 'llm-chat-bench-crash-'));
  try {
    log(`faults: crash harness, ${config.kills} SIGKILLs, seed ${config.seed}`);
    const crash = await runCrashHarness({ directory, kills: config.kills, seed: config.seed, log });
    results['crash'] = { ...crash, lost: crash.lost.length, seqsReused: crash.seqsReused.length, unfinished: crash.unfinished.length };
    rows.push(
      { figure: `faults: kills survived (seed ${crash.seed})`, ours: `${crash.kills}`, target: `${config.kills}`, verdict: verdict(crash.kills === config.kills) },
      { figure: 'faults: acknowledged messages / lost', ours: `${crash.acknowledged} / ${crash.lost.length}`, target: '0 lost', verdict: verdict(crash.lost.length === 0) },
      { figure: 'faults: chunks seen / seqs reused', ours: `${crash.chunksSeen} / ${crash.seqsReused.length}`, target: '0 reused', verdict: verdict(crash.seqsReused.length === 0) },
      { figure: 'faults: replies left unfinished', ours: `${crash.unfinished.length}`, target: '0', verdict: verdict(crash.unfinished.length === 0) },
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }

  const stores: ('sqlite' | 'postgres')[] = (await postgresUp(config.databaseUrl)) ? ['sqlite', 'postgres'] : ['sqlite'];
  if (stores.length === 1) log(`faults: PostgreSQL unreachable at ${config.databaseUrl}; acknowledgement cost on SQLite only`);
  const versions: [string, string | undefined][] = [['after', undefined], ...(config.beforeRoot ? ([['before', config.beforeRoot]] as [string, string][]) : [])];
  const costs: Record<string, AckCost> = {};
  for (const store of stores) {
    for (const [version, root] of versions) {
      log(`faults: acknowledgement cost, ${store}, ${version}: ${config.ackClients} clients for ${config.ackSeconds} s`);
      costs[`${store} ${version}`] = await measureAckCost({
        store,
        clients: config.ackClients,
        seconds: config.ackSeconds,
        databaseUrl: config.databaseUrl,
        ...(root ? { root } : {}),
      });
    }
  }
  results['ackCost'] = costs;
  for (const store of stores) {
    const after = costs[`${store} after`]!;
    const before = costs[`${store} before`];
    const pair = (value: (cost: AckCost) => number, digits = 0) =>
      `${formatNumber(value(after), digits)}${before ? ` (before ${formatNumber(value(before), digits)})` : ''}`;
    rows.push(
      { figure: `faults: ${store}: messages accepted/s, ${config.ackClients} clients`, ours: pair((cost) => cost.acceptedPerSecond), ratio: before ? `${(after.acceptedPerSecond / before.acceptedPerSecond).toFixed(2)}×` : '' },
      { figure: `faults: ${store}: time to 202, p50 / p99 (ms)`, ours: `${pair((cost) => cost.p50Ms, 1)} / ${pair((cost) => cost.p99Ms, 1)}` },
    );
  }
  return { rows, results };
}
