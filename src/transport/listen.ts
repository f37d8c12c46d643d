import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `http` listening; resolves with the address actually bound (port 0 picks a free one). */
export function listen(http: Server, port: number, host: string): Promise<{ port: number; host: string; url: string }> {
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    // A deep accept queue (capped by net.core.somaxconn) rides out bursts of new connections.
    http.listen({ port, host, backlog: 4096 }, () => {
      http.off('error', reject);
      const address = http.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({ port: address.port, host: address.address, url: `http://${shownHost}:${address.port}` });
    });
  });
}
