import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildServer {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything the server logged so far. */
  readonly log: () => string;
  /** Sends a signal and resolves with the exit code (null when killed by the signal). */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The real server as a child process (`node --import tsx src/main.ts`), on a
 * free port; resolves once it logs that it listens. Without API keys
 * (`--auth none`) unless `args` or `env` choose (`--auth keys`, `AUTH`).
 */
export function startChildServer(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { ownProcessGroup?: boolean } = {},
): Promise<ChildServer> {
  const auth = args.includes('--auth') || env['AUTH'] !== undefined ? [] : ['--auth', 'none'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', ...auth, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a test can signal it as a terminal's Ctrl-C does: the whole group.
    detached: options.ownProcessGroup === true,
  });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in time; output:\n${output}`));
    }, 15_000);
    const onData = (data: Buffer) => {
      output += data.toString();
      // One JSON object per log line; the listening line carries the URL.
      const line = output.split('\n').find((text) => text.includes('"llm-chat listening"'));
      const url = line ? (JSON.parse(line) as { url?: string }).url : undefined;
      if (!url) return;
      clearTimeout(timer);
      resolve({
        child,
        url,
        log: () => output,
        stop(signal) {
          child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening; output:\n${output}`));
    });
  });
}
