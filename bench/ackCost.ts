/**
 * What durable acknowledgement costs: a real server process (src/main.ts) on
 * SQLite or PostgreSQL, `clients` sessions each POSTing messages back to
 * back over keep-alive HTTP for `seconds`; messages accepted per second and
 * the time to each `202`. Used by `npm run bench -- --scenario faults`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { summarize } from './stats.ts';

export interface AckCostOptions {
  store: 'sqlite' | 'postgres';
  clients: number;
  seconds: number;
  /** PostgreSQL server (a throw-away schema is made and dropped). */
  databaseUrl: string;
  /** Checkout whose `src/main.ts` is run (default: this one); lets a run measure another version. */
  root?: string;
}

export interface AckCost {
  store: string;
  accepted: number;
  refused: number;
  acceptedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Answer {
  status: number;
  body: string;
}

function post(agent: Agent, port: number, path: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const outgoing = request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => (text += part));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

async function startServer(root: string, args: string[]): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', ...args], {
    cwd: root,
    // AUTH by environment, not flag: a --before-root checkout older than API keys ignores it instead of refusing to start.
    env: { ...process.env, DATABASE_URL: '', AUTH: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a server behind
      reject(new Error(`server did not start:\n${output}`));
    }, 30_000);
    const onData = (data: Buffer) => {
      output += data.toString();
      const line = output.split('\n').find((text) => text.includes('"llm-chat listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve(Number(new URL((JSON.parse(line) as { url: string }).url).port));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`server exited:\n${output}`)));
  });
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function measureAckCost(options: AckCostOptions): Promise<AckCost> {
  const directory = mkdtempSync(join(tmpdir(), 'llm-chat-ackcost-'));
  const schema = `llm_chat_ackcost_${process.pid}_${Date.now().toString(36)}`;
  const admin = options.store === 'postgres' ? new pg.Client({ connectionString: options.databaseUrl }) : undefined;
  try {
    let databaseUrl = join(directory, 'bench.sqlite');
    if (admin) {
      await admin.connect();
      await admin.query(`CREATE SCHEMA "${schema}"`);
      const url = new URL(options.databaseUrl);
      url.searchParams.set('options', `-c search_path=${schema}`);
      databaseUrl = url.toString();
    }
    const server = await startServer(options.root ?? ROOT, [
      '--store', options.store, '--database-url', databaseUrl,
      '--sim-interval-ms', '0', '--sim-chunks', '5', '--queue-limit', '1000',
      '--messages-per-minute', '0', '--shed-lag-ms', '0', '--conn-rate-per-ip', '0', '--log-level', 'info',
      '--no-inspector', '--no-metrics',
    ]);
    const agent = new Agent({ keepAlive: true, maxSockets: options.clients });
    try {
      const sessions: string[] = [];
      for (let index = 0; index < options.clients; index += 1) {
        const created = await post(agent, server.port, '/api/sessions', {});
        sessions.push((JSON.parse(created.body) as { sessionId: string }).sessionId);
      }
      const latencies: number[] = [];
      let refused = 0;
      const started = performance.now();
      const until = started + options.seconds * 1000;
      await Promise.all(
        sessions.map(async (sessionId, index) => {
          for (let n = 0; performance.now() < until; n += 1) {
            const sent = performance.now();
            const answer = await post(agent, server.port, `/api/sessions/${sessionId}/messages`, { text: `client ${index} message ${n}` });
            if (answer.status === 202) latencies.push(performance.now() - sent);
            else {
              refused += 1;
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const summary = summarize(latencies);
      return {
        store: options.store,
        accepted: latencies.length,
        refused,
        acceptedPerSecond: latencies.length / elapsed,
        p50Ms: summary.p50,
        p99Ms: summary.p99,
        maxMs: summary.max,
      };
    } finally {
      agent.destroy();
      await server.stop();
    }
  } finally {
    if (admin) {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
      await admin.end().catch(() => {});
    }
    rmSync(directory, { recursive: true, force: true });
  }
}

// Run alone: node --import tsx bench/ackCost.ts [sqlite|postgres] [clients] [seconds]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const store = (process.argv[2] ?? 'sqlite') as 'sqlite' | 'postgres';
  const result = await measureAckCost({
    store,
    clients: Number(process.argv[3] ?? 50),
    seconds: Number(process.argv[4] ?? 10),
    databaseUrl: process.env['LLM_CHAT_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test',
    ...(process.env['ACK_COST_ROOT'] ? { root: process.env['ACK_COST_ROOT'] } : {}),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
