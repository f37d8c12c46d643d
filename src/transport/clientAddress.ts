import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/**
 * Whose address a request counts against (per-IP connection rate, the
 * unauthenticated-request limit). Behind a load balancer every socket comes
 * from the balancer, so every user would share its one budget: with
 * `--trust-proxy` the address comes from `X-Forwarded-For`, but only when the
 * socket's peer is a proxy named there, and only as far back as the chain of
 * trusted proxies goes (a client can put anything at the left of the header;
 * what the last untrusted hop says is the first thing nobody vouches for).
 */
export type ClientAddressOf = (request: IncomingMessage) => string;

/** Parses `--trust-proxy`: comma-separated addresses and CIDRs, `loopback`, or empty (trust none). */
export function trustedProxies(setting: string): BlockList | undefined {
  const entries = setting
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    if (entry === 'loopback') {
      list.addSubnet('127.0.0.0', 8, 'ipv4');
      list.addAddress('::1', 'ipv6');
      continue;
    }
    const [address = '', bits] = entry.split('/');
    const family = isIP(address);
    if (family === 0) throw new Error(`not an address or CIDR: "${entry}"`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(address, type);
      continue;
    }
    const prefix = /^\d+$/.test(bits) ? Number(bits) : NaN;
    if (!(prefix >= 0 && prefix <= (family === 4 ? 32 : 128))) throw new Error(`not a CIDR prefix: "${entry}"`);
    list.addSubnet(address, prefix, type);
  }
  return list;
}

/** `::ffff:10.0.0.1` (a dual-stack socket's IPv4 peer) is 10.0.0.1. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function trusts(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export function clientAddressResolver(trusted: BlockList | undefined): ClientAddressOf {
  return (request) => {
    const peer = plain(request.socket.remoteAddress ?? 'unknown');
    if (!trusted || !trusts(trusted, peer)) return peer;
    const header = request.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
    let client = peer;
    // Right to left: each trusted hop vouches for the one before it.
    for (let index = hops.length - 1; index >= 0; index -= 1) {
      const hop = plain(hops[index]!.trim());
      if (isIP(hop) === 0) break; // garbage: nobody vouches for what lies beyond it
      client = hop;
      if (!trusts(trusted, hop)) break;
    }
    return client;
  };
}

/** Where the edge put each request's address (set once, read by every limiter). */
const stamped = new WeakMap<IncomingMessage, string>();

/** At the edge, before any route or upgrade handler runs. */
export function stampClientAddress(request: IncomingMessage, resolve: ClientAddressOf): void {
  stamped.set(request, resolve(request));
}

/** The request's client address: as stamped at the edge, else its socket's peer. */
export function clientAddressOf(request: IncomingMessage): string {
  return stamped.get(request) ?? plain(request.socket.remoteAddress ?? 'unknown');
}
