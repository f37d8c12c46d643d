import { afterAll, describe, expect, it } from 'vitest';
import { startChildServer } from '../support/childServer.ts';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { WsClient } from '../support/harness.ts';

const available = await clusterServicesAvailable();
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
});

/** `--workers 2` in a process group of its own (as a terminal runs it), replies of 5 chunks 200 ms apart. */
async function startTwoWorkers() {
  const cluster = await TestCluster.start(1);
  cleanup.push(() => cluster.stop());
  const primary = await startChildServer(
    ['--workers', '2', '--sim-chunks', '5', '--sim-interval-ms', '200', '--lease-ms', '1000', '--log-level', 'info', '--shutdown-deadline-ms', '8000'],
    { REDIS_URL: cluster.redis.url, DATABASE_URL: cluster.databaseUrl, STORE: 'postgres' },
    { ownProcessGroup: true },
  );
  cleanup.push(async () => {
    if (primary.child.exitCode === null && primary.child.signalCode === null) process.kill(-primary.child.pid!, 'SIGKILL');
  });
  return primary;
}

describe.skipIf(!available)('--workers N stopped from a terminal', () => {
  // Ctrl-C signals the whole process group: every worker gets SIGINT itself,
  // and the primary asks them again. That must not count as a second signal.
  it('SIGINT to the process group drains every worker: the reply in flight completes and all exit 0', async () => {
    const primary = await startTwoWorkers();

    const { client } = await WsClient.session(wsUrlOf(primary));
    client.send('drain me');
    await client.waitFor((frame) => frame.type === 'chunk');
    const exited = new Promise<number | null>((resolve) => primary.child.once('exit', (code) => resolve(code)));
    process.kill(-primary.child.pid!, 'SIGINT');

    const end = await client.waitFor((frame) => frame.type === 'completed' || frame.type === 'interrupted', 8000);
    expect(end.type).toBe('completed');
    expect(await exited).toBe(0);
    expect(primary.log()).not.toContain('second signal');
    expect(primary.log()).toContain('all workers stopped');
  }, 40_000);

  it('the primary\'s request first, the group\'s signal after it: still one signal, still drained', async () => {
    const primary = await startTwoWorkers();
    const workerPids = [...primary.log().matchAll(/"node":"[^"]*?-(\d+)-[0-9a-f]+"/g)].map((match) => Number(match[1]));
    expect(new Set(workerPids).size).toBe(2);

    const { client } = await WsClient.session(wsUrlOf(primary));
    client.send('drain me');
    await client.waitFor((frame) => frame.type === 'chunk');
    const exited = new Promise<number | null>((resolve) => primary.child.once('exit', (code) => resolve(code)));
    primary.child.kill('SIGINT'); // the primary alone: it asks its workers over IPC
    await new Promise((resolve) => setTimeout(resolve, 150));
    // The group's copy, arriving late (an idle worker may have drained and gone already).
    for (const pid of new Set(workerPids)) {
      try {
        process.kill(pid, 'SIGINT');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }

    const end = await client.waitFor((frame) => frame.type === 'completed' || frame.type === 'interrupted', 8000);
    expect(end.type).toBe('completed');
    expect(await exited).toBe(0);
    expect(primary.log()).not.toContain('second signal');
  }, 40_000);
});
