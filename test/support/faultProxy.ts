import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/**
 * A TCP proxy that puts faults between a client and a server (PostgreSQL):
 * - `pass()`: bytes go through (the initial mode);
 * - `delay(ms)`: every piece of data waits `ms` before it goes on, in order;
 * - `hang()`: nothing goes through either way and new connections are held
 *   unanswered: a database that stops answering mid-stream. The bytes are
 *   kept, as TCP keeps them over an outage that heals;
 * - `down()`: connections are refused (accepted and destroyed at once);
 * - `cut()`: destroys every connection now (mid-query, mid-batch);
 * - `cutNextQuery()`: destroys every connection as the next bytes a client
 *   sends on an established connection (one the server has answered) go
 *   through: a query is then in flight, sent and unanswered, whatever the
 *   timing of the machine;
 * - `restore()`: back to `pass`, delivering what `hang` held (and disarming `cutNextQuery`).
 */
export interface FaultProxy {
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  through(url: string): string;
  pass(): void;
  delay(ms: number): void;
  hang(): void;
  down(): void;
  cut(): void;
  cutNextQuery(): void;
  restore(): void;
  /** Connections open now. */
  readonly connections: number;
  close(): Promise<void>;
}

type Mode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'hang' } | { kind: 'down' };

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  /** Bytes held while hung, per direction. */
  held: { toUpstream: Buffer[]; toClient: Buffer[] };
  /** The server has sent something on it: past the start-up of the connection. */
  answered: boolean;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: Mode = { kind: 'pass' };
  const links = new Set<Link>();
  let cutArmed = false;

  const forward = (link: Link, direction: 'toUpstream' | 'toClient', data: Buffer) => {
    const to = direction === 'toUpstream' ? link.upstream : link.client;
    if (direction === 'toClient') link.answered = true;
    if (mode.kind === 'hang' || !to) link.held[direction].push(data);
    else if (mode.kind === 'delay') setTimeout(() => to.destroyed || to.write(data), mode.ms);
    else to.write(data);
    if (cutArmed && direction === 'toUpstream' && link.answered) {
      cutArmed = false;
      // After the write: the server may get the query, the client never gets its answer.
      setImmediate(destroyAll);
    }
  };

  const open = (link: Link) => {
    const upstream = connect(target.port, target.host);
    link.upstream = upstream;
    upstream.on('data', (data) => forward(link, 'toClient', data));
    upstream.on('error', () => link.client.destroy());
    upstream.on('close', () => link.client.destroy());
    flush(link);
  };

  const flush = (link: Link) => {
    if (!link.upstream) return;
    for (const data of link.held.toUpstream.splice(0)) link.upstream.write(data);
    for (const data of link.held.toClient.splice(0)) link.client.write(data);
  };

  const server: Server = createServer((client) => {
    if (mode.kind === 'down') {
      client.destroy();
      return;
    }
    const link: Link = { client, upstream: undefined, held: { toUpstream: [], toClient: [] }, answered: false };
    links.add(link);
    client.on('data', (data) => forward(link, 'toUpstream', data));
    client.on('error', () => link.upstream?.destroy());
    client.on('close', () => {
      link.upstream?.destroy();
      links.delete(link);
    });
    // A hung server does not even answer the start of a connection.
    if (mode.kind !== 'hang') open(link);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const destroyAll = () => {
    for (const link of links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    links.clear();
  };

  return {
    port,
    through(url) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    pass: () => (mode = { kind: 'pass' }),
    delay: (ms) => (mode = { kind: 'delay', ms }),
    hang: () => (mode = { kind: 'hang' }),
    down: () => (mode = { kind: 'down' }),
    cut: destroyAll,
    cutNextQuery: () => (cutArmed = true),
    restore() {
      mode = { kind: 'pass' };
      cutArmed = false;
      for (const link of links) {
        if (link.upstream) flush(link);
        else open(link);
      }
    },
    get connections() {
      return links.size;
    },
    close() {
      destroyAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
