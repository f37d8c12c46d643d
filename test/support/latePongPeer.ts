import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Plain CommonJS for `node -e`: a real ws client that answers each ping by
// hand `pongAfterMs` later, and reports pings and its close on stdout.
const SCRIPT = `
const WebSocket = require('ws');
const [url, delay] = process.argv.slice(1);
const socket = new WebSocket(url, { autoPong: false });
socket.on('open', () => process.stdout.write('open\\n'));
socket.on('ping', (data) => {
  process.stdout.write('ping\\n');
  setTimeout(() => { if (socket.readyState === WebSocket.OPEN) socket.pong(data); }, Number(delay));
});
socket.on('close', (code) => { process.stdout.write('close ' + code + '\\n'); process.exit(0); });
socket.on('error', () => {});
`;

/** A WebSocket peer in another process (its loop runs while the test's is blocked). */
export interface LatePongPeer {
  readonly child: ChildProcess;
  /** Pings it has received so far. */
  readonly pings: number;
  /** Its close code once closed (1006: dropped without a close frame). */
  readonly closeCode: number | undefined;
  /** Called in the test process when the peer reports a ping. */
  onPing(listener: () => void): void;
  kill(): void;
}

export function startLatePongPeer(wsUrl: string, pongAfterMs: number): Promise<LatePongPeer> {
  const child = spawn(process.execPath, ['-e', SCRIPT, wsUrl, String(pongAfterMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let pings = 0;
  let closeCode: number | undefined;
  const listeners: (() => void)[] = [];
  let pending = '';
  const peer: LatePongPeer = {
    child,
    get pings() {
      return pings;
    },
    get closeCode() {
      return closeCode;
    },
    onPing: (listener) => listeners.push(listener),
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  return new Promise((resolve, reject) => {
    child.once('exit', () => reject(new Error('the peer exited before it opened')));
    child.stdout!.on('data', (data: Buffer) => {
      pending += data.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'open') resolve(peer);
        else if (line === 'ping') {
          pings += 1;
          for (const listener of listeners) listener();
        } else if (line.startsWith('close ')) closeCode = Number(line.slice('close '.length));
      }
    });
  });
}
