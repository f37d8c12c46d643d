import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A TCP proxy that is a slow link towards the client: it reads from the
 * server only what one `tickMs` allows (a chunk of at most 16 kB asked for,
 * about 64 kB at most got) and forwards it, steadily; the other way bytes
 * pass at once. The server then meets a peer that reads slowly but never stops.
 */
export interface SlowLink {
  readonly port: number;
  /** Bytes forwarded to the client so far. */
  readonly forwarded: number;
  close(): Promise<void>;
}

export async function startSlowLink(target: { host: string; port: number }, tickMs: number): Promise<SlowLink> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let forwarded = 0;
  const server = createServer((client) => {
    const upstream = connect({ host: target.host, port: target.port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data) => upstream.write(data));
    // Non-flowing: the server's bytes wait in the kernel until a tick reads them.
    const timer = setInterval(() => {
      const chunk = upstream.read() as Buffer | null;
      if (chunk === null) return;
      forwarded += chunk.length;
      client.write(chunk);
    }, tickMs);
    timers.add(timer);
    upstream.on('close', () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get forwarded() {
      return forwarded;
    },
    close: () => {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
