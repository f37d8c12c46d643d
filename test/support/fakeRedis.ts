import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A stand-in for a Redis we cannot run here (an older version, one that
 * forbids INFO): it speaks enough RESP for a client to connect, answers INFO
 * with `info` (or, given `{ error }`, with that error), never answers the
 * commands named in `unanswered` (a server that stops answering), and `+OK`
 * to anything else. Commands are arrays of bulk strings, as clients send them.
 */
export interface FakeRedis {
  readonly url: string;
  /** The commands received, by name (upper case), in order. */
  readonly commands: string[];
  /** Client connections open now. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startFakeRedis(info: string | { error: string }, options: { unanswered?: readonly string[] } = {}): Promise<FakeRedis> {
  const unanswered = new Set(options.unanswered ?? []);
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    socket.on('data', (data: Buffer) => {
      buffered += data.toString('latin1');
      for (;;) {
        const parsed = parseCommand(buffered);
        if (!parsed) return;
        buffered = buffered.slice(parsed.length);
        const name = (parsed.args[0] ?? '').toUpperCase();
        commands.push(name);
        if (unanswered.has(name)) continue;
        if (name !== 'INFO') socket.write('+OK\r\n');
        else if (typeof info === 'string') socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
        else socket.write(`-${info.error}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    commands,
    get connections() {
      return sockets.size;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** One `*N\r\n$len\r\narg\r\n…` command from the front of `text`, or undefined while incomplete. */
function parseCommand(text: string): { args: string[]; length: number } | undefined {
  const header = /^\*(\d+)\r\n/.exec(text);
  if (!header) return undefined;
  let at = header[0].length;
  const args: string[] = [];
  for (let index = 0; index < Number(header[1]); index += 1) {
    const size = /^\$(\d+)\r\n/.exec(text.slice(at));
    if (!size) return undefined;
    at += size[0].length;
    const end = at + Number(size[1]);
    if (text.length < end + 2) return undefined;
    args.push(text.slice(at, end));
    at = end + 2;
  }
  return { args, length: at };
}
