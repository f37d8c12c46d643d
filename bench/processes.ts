import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * The V8 flags `npm start` runs the server with (package.json `start`: the
 * `--` words after `node`, up to `--import`), given to every peer alike so only the
 * machinery differs: no pretenuring of per-event garbage, a 32 MB young
 * generation, V8's GC on the main thread alone (README Quick start, Round
 * 14). Read from the script, so the bench cannot drift from what users run.
 */
export const SERVER_NODE_FLAGS: string[] = (() => {
  const { scripts } = JSON.parse(readFileSync(here('../package.json'), 'utf8')) as { scripts: { start: string } };
  const flags: string[] = [];
  for (const word of scripts.start.split(/\s+/).slice(1)) {
    if (!word.startsWith('--') || word === '--import') break;
    flags.push(word);
  }
  return flags;
})();

export type Message = { type: string } & Record<string, unknown>;

/** A forked bench process and a way to wait for its messages. */
export class Child {
  readonly process: ChildProcess;
  #inbox: Message[] = [];
  #waiters: (() => void)[] = [];
  onProgress: ((message: Message) => void) | undefined;

  constructor(file: string, options: { env?: Record<string, string>; args?: string[]; nodeFlags?: string[] } = {}) {
    this.process = fork(here(file), options.args ?? [], {
      execArgv: [...(options.nodeFlags ?? []), '--expose-gc', '--import', 'tsx'],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process.on('message', (message: Message) => {
      if (message.type === 'progress') {
        this.onProgress?.(message);
        return;
      }
      this.#inbox.push(message);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.process.on('exit', () => {
      this.#inbox.push({ type: 'exit' });
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  send(message: Message): void {
    if (this.process.connected) this.process.send(message);
  }

  /** The next message of `type` (an `error` or the process's exit rejects). */
  async next(type: string, timeoutMs = 600_000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#inbox.findIndex((message) => message.type === type || message.type === 'error' || message.type === 'exit');
      if (index !== -1) {
        const [message] = this.#inbox.splice(index, 1);
        if (message!.type !== type) throw new Error(`bench process ${message!.type}: ${String(message!['message'] ?? '')}`);
        return message!;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async ask(message: Message, replyType: string, timeoutMs?: number): Promise<Message> {
    this.send(message);
    return this.next(replyType, timeoutMs);
  }

  kill(): void {
    if (this.process.exitCode === null) this.process.kill('SIGKILL');
  }
}

export interface ServerStats {
  /** CPU time (user + system) the server process has used so far. */
  cpuMs: number;
  /** Of it, the main thread's (the rest: V8's GC and compiler helpers, a store's writer thread, libuv's pool). */
  mainThreadCpuMs: number;
  /** Of it, the threads the store started (SQLite's writer thread; none for the memory store and the peers). */
  storeThreadsCpuMs: number;
  /** The main thread's GC pauses so far, in ms. */
  gcPauseMs: number;
  rss: number;
  heapUsed: number;
  activeSessions: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

/** The servers a scenario can load: bare ws, Socket.IO, llm-chat on SQLite (its default) or on memory. */
/** `llm-chat-before`: llm-chat on SQLite from the checkout `--before-root` names (BENCH_BEFORE_ROOT). */
export type ServerKind = 'baseline' | 'socketio' | 'llm-chat' | 'llm-chat-memory' | 'llm-chat-before';

export const SERVER_LABELS: Record<ServerKind, string> = {
  baseline: 'bare ws',
  socketio: 'Socket.IO',
  'llm-chat': 'llm-chat, SQLite (default)',
  'llm-chat-memory': 'llm-chat, --store memory',
  'llm-chat-before': 'llm-chat, SQLite, --before-root',
};

export interface ServerUnderTest {
  kind: ServerKind;
  port: number;
  stats(gc?: boolean): Promise<ServerStats>;
  stop(): Promise<void>;
}

/**
 * Waits until the server has gone quiet: less than `idleMsPerSecond` of CPU
 * (all threads) in each of two 250 ms windows in a row, or `timeoutMs`
 * passed. After a warm-up fleet closes, the server is still tearing its
 * connections and sessions down and V8 still compiling what the warm-up made
 * hot; measured from there, a burst's CPU per reply carried that work too
 * (in one trace 190 TurboFan compiles, 1.5 s of compiler time, fell in the
 * measured burst). Resolves with how long it waited.
 */
export async function quietDown(server: ServerUnderTest, timeoutMs = 15_000, idleMsPerSecond = 50): Promise<number> {
  const started = Date.now();
  let last = await server.stats();
  let quiet = 0;
  while (quiet < 2 && Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await server.stats();
    if (Number.isNaN(now.cpuMs)) return Date.now() - started;
    quiet = now.cpuMs - last.cpuMs < idleMsPerSecond / 4 ? quiet + 1 : 0;
    last = now;
  }
  return Date.now() - started;
}

/**
 * With BENCH_CPU_PROF_DIR set (`--cpu-prof DIR`), each server writes V8 CPU
 * profiles into DIR/<kind>/ when it stops (one per thread; the main thread's
 * is the largest).
 */
function profileFlags(kind: ServerKind): string[] {
  const dir = process.env['BENCH_CPU_PROF_DIR'];
  return dir ? ['--cpu-prof', '--cpu-prof-dir', join(dir, kind)] : [];
}

/**
 * BENCH_LLM_CHAT_OPTIONS: server options (JSON, `createChatServer`'s names)
 * for this checkout's llm-chat only, not `--before-root`'s nor the peers':
 * `BENCH_LLM_CHAT_OPTIONS='{"flushIntervalMs":1000}' npm run bench --
 * --scenario burst --before-root .` prices a setting against the default.
 */
function extraLlmChatOptions(): Record<string, unknown> {
  const text = process.env['BENCH_LLM_CHAT_OPTIONS'];
  if (!text) return {};
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('BENCH_LLM_CHAT_OPTIONS must be a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * Starts a server in a process of its own. llm-chat's SQLite file goes in a
 * temporary directory made here and removed when the server stops (even if
 * it had to be killed), so a run leaves nothing behind.
 */
export async function startServer(kind: ServerKind, options: Record<string, unknown>): Promise<ServerUnderTest> {
  const sqlite = kind === 'llm-chat' || kind === 'llm-chat-before';
  const before = process.env['BENCH_BEFORE_ROOT'];
  if (kind === 'llm-chat-before' && !before) throw new Error('llm-chat-before needs --before-root DIR');
  const dataDir = sqlite ? mkdtempSync(join(tmpdir(), 'llm-chat-bench-')) : undefined;
  const removeData = () => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  // The other checkout's own server entry and src/ (its node_modules: a symlink to this one's will do).
  const child = new Child(kind === 'llm-chat-before' ? join(before!, 'bench', 'serverProcess.ts') : './serverProcess.ts', {
    env: {
      BENCH_KIND: kind === 'baseline' || kind === 'socketio' ? kind : 'llm-chat',
      BENCH_STORE: sqlite ? 'sqlite' : 'memory',
      ...(dataDir ? { BENCH_DATA_DIR: dataDir } : {}),
      BENCH_OPTIONS: JSON.stringify({ ...options, ...(kind === 'llm-chat' || kind === 'llm-chat-memory' ? extraLlmChatOptions() : {}) }),
    },
    nodeFlags: [...SERVER_NODE_FLAGS, ...profileFlags(kind), ...(process.env['BENCH_SERVER_FLAGS']?.split(' ').filter(Boolean) ?? [])],
  });
  let ready: Message;
  try {
    ready = await child.next('ready', 30_000);
  } catch (error) {
    child.kill();
    removeData();
    throw error;
  }
  let stopped = false;
  return {
    kind,
    port: Number(ready['port']),
    stats: async (gc = false) => (await child.ask({ type: 'stats', gc }, 'stats')) as unknown as ServerStats,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (child.process.connected) {
        child.send({ type: 'exit' });
        await child.next('exit', 10_000).catch(() => child.kill());
      }
      child.kill();
      removeData();
    },
  };
}

/**
 * Source addresses go round 127.0.0.2-127.0.0.254, each fleet taking the
 * next ones: a closed connection's port stays in TIME_WAIT for 60 s, and
 * when every fleet began again at 127.0.0.2 the sustained scenario, after
 * the burst's 60,000 connections, lost 318 of its 10,000 to EADDRINUSE.
 */
let nextAddress = 0;

/** Generator processes, each with its own loopback source address. */
export async function startGenerators(count: number): Promise<{ child: Child; address: string }[]> {
  const generators = Array.from({ length: count }, () => ({
    child: new Child('./generator.ts'),
    address: `127.0.0.${2 + (nextAddress++ % 253)}`,
  }));
  await Promise.all(generators.map(({ child }) => child.next('ready', 30_000)));
  return generators;
}
