import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Runs an HTTP server as a bench child process (bench/processes.ts `Child`):
 * listens on a loopback port and says `ready` with it, answers `stats` with
 * the process's CPU time so far, closes on `exit`, and exits when the bench
 * goes away.
 */
export function serveAsBenchChild(server: Server): void {
  server.keepAliveTimeout = 60_000;
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
  });
  process.on('message', (message: { type: string }) => {
    if (message.type === 'stats') {
      const cpu = process.cpuUsage();
      process.send?.({ type: 'stats', cpuMs: (cpu.user + cpu.system) / 1000 });
    } else if (message.type === 'exit') server.close(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
}
