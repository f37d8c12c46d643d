import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { clientAddressResolver, trustedProxies } from '../../src/transport/clientAddress.ts';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

const requestFrom = (peer: string, forwardedFor?: string | string[]) =>
  ({ socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

describe('the client address behind proxies', () => {
  it('trusts nobody by default: X-Forwarded-For from anyone is ignored', () => {
    const resolve = clientAddressResolver(trustedProxies(''));
    expect(resolve(requestFrom('203.0.113.9', '1.2.3.4'))).toBe('203.0.113.9');
    expect(resolve(requestFrom('::ffff:127.0.0.1', '1.2.3.4'))).toBe('127.0.0.1');
  });

  it('from a trusted proxy, the right-most hop nobody trusted vouches for', () => {
    const resolve = clientAddressResolver(trustedProxies('10.0.0.0/8, loopback'));
    // A client's own claim at the left is not believed past an untrusted hop.
    expect(resolve(requestFrom('10.1.2.3', '6.6.6.6, 198.51.100.7'))).toBe('198.51.100.7');
    // A chain of trusted proxies is walked back to the client.
    expect(resolve(requestFrom('127.0.0.1', '198.51.100.7, 10.9.9.9'))).toBe('198.51.100.7');
    expect(resolve(requestFrom('::ffff:10.0.0.1', ['198.51.100.7', '10.0.0.2']))).toBe('198.51.100.7');
    // Nothing forwarded, or garbage: the last address someone trusted vouches for.
    expect(resolve(requestFrom('10.0.0.1'))).toBe('10.0.0.1');
    expect(resolve(requestFrom('10.0.0.1', 'not-an-ip'))).toBe('10.0.0.1');
    expect(resolve(requestFrom('10.0.0.1', '198.51.100.7, junk, 10.0.0.5'))).toBe('10.0.0.5');
    // An untrusted peer's header counts for nothing.
    expect(resolve(requestFrom('192.0.2.1', '198.51.100.7'))).toBe('192.0.2.1');
  });

  it('a malformed --trust-proxy is refused at start-up', () => {
    expect(() => loadConfig(['--trust-proxy', '10.0.0.0/99'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--trust-proxy', 'proxy.example.com'], {})).toThrow(/--trust-proxy/);
    const parsed = loadConfig(['--trust-proxy', 'loopback,10.0.0.0/8,::1'], {});
    expect(parsed.help === false && parsed.config.trustProxy).toBe('loopback,10.0.0.0/8,::1');
  });
});

describe('per-IP connection limits behind a load balancer (real server, real WebSockets)', () => {
  let running: RunningServer | undefined;
  const clients: WsClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await running?.close();
    running = undefined;
  });

  const connect = async (forwardedFor: string) => {
    const client = await WsClient.open(running!.wsUrl, { headers: { 'x-forwarded-for': forwardedFor } });
    clients.push(client);
    return client;
  };

  it('with --trust-proxy loopback each forwarded client has its own budget', async () => {
    running = await startServer({ connRatePerIp: 2, connBurstPerIp: 0, trustProxy: 'loopback' });
    for (const client of [await connect('198.51.100.1'), await connect('198.51.100.1'), await connect('198.51.100.2'), await connect('198.51.100.2')]) {
      await client.waitFor((frame) => frame.type === 'session');
    }
    const third = await connect('198.51.100.1');
    expect((await third.closed()).code).toBe(1013);
    expect(third.frames[0]).toMatchObject({ type: 'error', code: 'rate_limited' });
  });

  it('without it a forged X-Forwarded-For buys nothing: the socket address is counted', async () => {
    running = await startServer({ connRatePerIp: 2, connBurstPerIp: 0 });
    for (const client of [await connect('198.51.100.1'), await connect('198.51.100.2')]) await client.waitFor((frame) => frame.type === 'session');
    const forged = await connect('198.51.100.3');
    expect((await forged.closed()).code).toBe(1013);
    expect(forged.frames[0]).toMatchObject({ type: 'error', code: 'rate_limited' });
  });
});
