import { spawn, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildServer } from '../support/childServer.ts';
import type { ChildServer } from '../support/childServer.ts';
import { clusterServicesAvailable, TestCluster } from '../support/cluster.ts';
import { api, WsClient } from '../support/harness.ts';
import { startFakeRedis } from '../support/fakeRedis.ts';
import { startRedis } from '../support/redisServer.ts';
import type { OwnRedis } from '../support/redisServer.ts';

const available = await clusterServicesAvailable();
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-startup-'));
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  rmSync(directory, { recursive: true, force: true });
});

/** Runs the server to its exit (it is expected to refuse to start). */
function runToExit(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', '0', '--host', '127.0.0.1', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: '', REDIS_URL: '', WORKERS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('start-up refuses what cannot keep the guarantees (exit code 2)', () => {
  it('--workers without --redis-url', async () => {
    const { code, output } = await runToExit(['--workers', '2'], {});
    expect(code).toBe(2);
    expect(output).toMatch(/--workers 2 needs --redis-url/);
  });

  it('a Redis older than 7 (a stand-in that says 6.2.14): refused with its version named, alone and with --workers', async () => {
    const old = await startFakeRedis('# Server\r\nredis_version:6.2.14\r\nloading:0\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n');
    cleanup.push(() => old.close());
    const alone = await runToExit(['--store', 'memory'], { REDIS_URL: old.url });
    expect(alone.code).toBe(2);
    expect(alone.output).toMatch(/Redis 6\.2\.14 is too old: llm-chat needs Redis 7\.0 or later/);
    // It asked, and went no further: no script, no subscription.
    expect(old.commands).toContain('INFO');
    expect(old.commands.filter((name) => !['INFO', 'CLIENT', 'SELECT'].includes(name))).toEqual([]);
    // Every worker would refuse the same: the primary stops (exit 2) instead of starting workers forever.
    const started = Date.now();
    const workers = await runToExit(['--store', 'sqlite', '--workers', '2'], { REDIS_URL: old.url, DATABASE_URL: join(directory, 'old-redis.sqlite') });
    expect(workers.code).toBe(2);
    expect(workers.output).toMatch(/Redis 6\.2\.14 is too old/);
    expect(workers.output).toMatch(/a worker refused to start/);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 40_000);

  it.skipIf(!available)('a Redis that may evict keys: the node starts and warns that maxmemory-policy is not noeviction', async () => {
    const redis: OwnRedis = await startRedis();
    cleanup.push(() => redis.stop());
    await redis.client().config('SET', 'maxmemory-policy', 'allkeys-lru');
    const node: ChildServer = await startChildServer(['--store', 'memory', '--lease-ms', '1000'], { REDIS_URL: redis.url });
    cleanup.push(async () => void (await node.stop('SIGKILL')));
    expect(node.log()).toMatch(/maxmemory-policy is not noeviction/);
    expect(node.log()).toMatch(/"maxmemoryPolicy":"allkeys-lru"/);
    expect((await api(node.url, 'POST', '/api/sessions')).status).toBe(201);
  }, 30_000);

  it.skipIf(!available)('a node whose SQLite file is not the one the cluster shares', async () => {
    const redis: OwnRedis = await startRedis();
    cleanup.push(() => redis.stop());
    const first: ChildServer = await startChildServer(['--store', 'sqlite', '--lease-ms', '1000'], {
      REDIS_URL: redis.url,
      DATABASE_URL: join(directory, 'one.sqlite'),
    });
    cleanup.push(async () => void (await first.stop('SIGKILL')));
    const { code, output } = await runToExit(['--store', 'sqlite'], { REDIS_URL: redis.url, DATABASE_URL: join(directory, 'two.sqlite') });
    expect(code).toBe(2);
    expect(output).toMatch(/another node of this cluster uses a different store/);
    // The same file is fine: worker processes on one machine may share it.
    const second = await startChildServer(['--store', 'sqlite', '--lease-ms', '1000'], { REDIS_URL: redis.url, DATABASE_URL: join(directory, 'one.sqlite') });
    cleanup.push(async () => void (await second.stop('SIGKILL')));
    const sessionId = String((await api(first.url, 'POST', '/api/sessions')).body['sessionId']);
    expect((await api(second.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'shared file' })).status).toBe(202);
  });

  it.skipIf(!available)('a second node on --store memory (one process only) joining the Redis of a running one', async () => {
    const redis: OwnRedis = await startRedis();
    cleanup.push(() => redis.stop());
    const first: ChildServer = await startChildServer(['--store', 'memory', '--lease-ms', '1000'], { REDIS_URL: redis.url });
    cleanup.push(async () => void (await first.stop('SIGKILL')));
    const { code, output } = await runToExit(['--store', 'memory', '--lease-ms', '1000'], { REDIS_URL: redis.url });
    expect(code).toBe(2);
    // The message names both stores: each memory store is its own process's.
    expect(output).toMatch(/another node of this cluster uses a different store \(memory:[^;]+; this node: memory:[^)]+\)/);
    // The first node is unharmed.
    expect((await api(first.url, 'POST', '/api/sessions')).status).toBe(201);
  }, 30_000);
});

/** The node ids that answer on `url` over 300 new connections (no keep-alive: whichever worker accepts one answers). */
async function workersBehind(url: string, enough: number): Promise<Set<string>> {
  const statusOnNewConnection = () =>
    new Promise<string>((resolve, reject) => {
      get(`${url}/api/status`, { agent: false }, (response) => {
        let body = '';
        response.on('data', (data: Buffer) => (body += data.toString()));
        response.on('end', () => resolve(String((JSON.parse(body) as { node: string }).node)));
      }).on('error', reject);
    });
  const nodes = new Set<string>();
  for (let index = 0; index < 300 && nodes.size <= enough; index += 1) nodes.add(await statusOnNewConnection());
  return nodes;
}

describe.skipIf(!available)('--workers N', () => {
  it('--workers 0 starts one worker per core', async () => {
    const cluster = await TestCluster.start(1, { leaseMs: 1000 });
    cleanup.push(() => cluster.stop());
    const primary = await cluster.startNode(['--workers', '0']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await workersBehind(primary.url, availableParallelism())).size).toBe(availableParallelism());
    expect((await primary.stop('SIGTERM')).code).toBe(0);
  }, 60_000);

  it('starts N processes on one port; a worker killed is replaced and its sessions serve from the others', async () => {
    const cluster = await TestCluster.start(1, { leaseMs: 1000, simChunks: 3, simIntervalMs: 20 });
    cleanup.push(() => cluster.stop());
    const primary = await cluster.startNode(['--workers', '3']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await workersBehind(primary.url, 3)).size).toBe(3);

    // A session created through the shared port: find the worker that owns it and kill it.
    const { client, sessionId } = await WsClient.session(`${primary.url.replace('http', 'ws')}/ws`);
    client.send('before');
    await client.waitFor((frame) => frame.type === 'completed');
    const redis = cluster.redis.client();
    const holder = String(await redis.get(`llm-chat:{s:${sessionId}}:lease`));
    const pid = Number(/-(\d+)-[0-9a-f]+ \d+$/.exec(holder)?.[1]);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    const sent = await api(primary.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'after' });
    expect(sent.status).toBe(202);
    expect(Date.now() - killedAt).toBeLessThan(1000 + 1500);
    const deadline = Date.now() + 5000;
    for (;;) {
      const messages = (await api(primary.url, 'GET', `/api/sessions/${sessionId}`)).body['messages'] as { status: string }[];
      if (messages.length === 4 && messages[3]!.status === 'complete') break;
      if (Date.now() > deadline) throw new Error(`not answered: ${JSON.stringify(messages)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(primary.log()).toContain('worker died; starting another');
    const stopped = await primary.stop('SIGTERM');
    expect(stopped.code).toBe(0);
  }, 60_000);

  it('a replacement worker refused at start-up (exit code 2) beside a serving one is not started again; the serving one goes on', async () => {
    const cluster = await TestCluster.start(1, { leaseMs: 1000 });
    cleanup.push(() => cluster.stop());
    const primary = await cluster.startNode(['--workers', '2']);
    const workers = spawnSync('ps', ['-o', 'pid=', '--ppid', String(primary.child.pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((line) => Number(line.trim()))
      .filter((pid) => pid > 0);
    expect(workers).toHaveLength(2);
    // Another store claims the cluster: a worker starting now is refused (exit code 2); the running ones keep theirs.
    await cluster.redis.client().set('llm-chat:store', 'postgres://elsewhere:5432/other#public', 'PX', 60_000);
    process.kill(workers[0]!, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (!primary.log().includes('a replacement worker refused to start')) {
      if (Date.now() > deadline) throw new Error(`no refusal logged:\n${primary.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // No loop of workers started and refused: one replacement, then none.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(primary.log().match(/worker died; starting another/g)).toHaveLength(1);
    expect(primary.child.exitCode).toBeNull();
    expect((await api(primary.url, 'POST', '/api/sessions')).status).toBe(201);
    expect((await primary.stop('SIGTERM')).code).toBe(0);
  }, 60_000);

  it('the workers accept connections themselves: with the primary stopped (SIGSTOP), a new client is still served', async () => {
    const cluster = await TestCluster.start(1, { leaseMs: 1000, simChunks: 2, simIntervalMs: 20 });
    cleanup.push(() => cluster.stop());
    const primary = await cluster.startNode(['--workers', '2']);
    const primaryPid = primary.child.pid!;
    process.kill(primaryPid, 'SIGSTOP');
    try {
      // Under node:cluster's round-robin the primary accepts and hands each socket over: stopped, it
      // hands none, and this handshake would wait for good.
      const { client } = await WsClient.session(`${primary.url.replace('http', 'ws')}/ws`, { handshakeTimeout: 15_000 });
      client.send('while the primary sleeps');
      const completed = await client.waitFor((frame) => frame.type === 'completed');
      expect(completed.type).toBe('completed');
      client.close();
    } finally {
      process.kill(primaryPid, 'SIGCONT');
    }
    expect((await primary.stop('SIGTERM')).code).toBe(0);
  }, 60_000);
});
