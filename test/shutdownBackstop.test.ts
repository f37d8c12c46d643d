import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildServer } from './support/childServer.ts';
import type { ChildServer } from './support/childServer.ts';
import { WsClient } from './support/harness.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from './support/postgres.ts';

const available = await postgresReachable();

/** A TCP pass-through to PostgreSQL that can hang: from then on nothing crosses, either way, on old or new connections. */
async function hangingProxy(target: URL) {
  let hung = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const database = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, database]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (data) => hung || database.write(data));
    database.on('data', (data) => hung || client.write(data));
    client.on('close', () => database.destroy());
    database.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hang: () => (hung = true),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!available)('shutdown keeps its deadline whatever the store does', () => {
  const schema = uniqueSchema('llm_chat_backstop');
  let child: ChildServer | undefined;
  afterAll(async () => {
    if (child && child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    await dropSchemas([schema]);
  });

  it('with PostgreSQL hung mid-reply, the process still exits within --shutdown-deadline-ms + 1 s (code 1, and says why)', async () => {
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.end();
    const target = new URL(TEST_DATABASE_URL);
    const proxy = await hangingProxy(target);
    try {
      const url = `postgres://${target.username}@127.0.0.1:${proxy.port}${target.pathname}?options=-c%20search_path%3D${schema}`;
      child = await startChildServer(['--store', 'postgres', '--shutdown-deadline-ms', '500', '--sim-interval-ms', '300'], { DATABASE_URL: url });
      const { client } = await WsClient.session(`${child.url.replace('http', 'ws')}/ws`);
      client.send('a reply in flight');
      await client.waitFor((frame) => frame.type === 'chunk');
      proxy.hang();
      const started = Date.now();
      const { code } = await child.stop('SIGTERM');
      const ms = Date.now() - started;
      expect(ms).toBeLessThan(1500);
      expect(code).toBe(1);
      expect(child.log()).toContain('shutdown overran its deadline: exiting now');
      client.close();
    } finally {
      await proxy.close();
    }
  });
});
