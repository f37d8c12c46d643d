/**
 * The gateway's reference point: a bare `node:http` pass-through proxy, in
 * its own process (forked by bench/gateway.ts with the upstream's port; tells
 * its own over IPC). Each request goes to the upstream on a keep-alive agent,
 * its body piped there and the answer piped back, status and headers as they
 * came. It parses nothing, checks nothing, stores nothing: what it costs is
 * what relaying a streamed completion costs in Node at all, so the gateway
 * figures read against the floor any gateway written in Node stands on.
 */
import { Agent, createServer, request } from 'node:http';
import { serveAsBenchChild } from './httpChild.ts';

const upstreamPort = Number(process.env['BENCH_UPSTREAM_PORT']);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const server = createServer((incoming, outgoing) => {
  const forwarded = request(
    { host: '127.0.0.1', port: upstreamPort, method: incoming.method, path: incoming.url, headers: incoming.headers, agent },
    (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    },
  );
  forwarded.on('error', () => outgoing.destroy());
  incoming.pipe(forwarded);
});
serveAsBenchChild(server);
