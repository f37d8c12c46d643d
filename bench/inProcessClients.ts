import WebSocket from 'ws';

/**
 * `count` real `ws` clients of a server in this process, each open once its
 * `session` frame came; every later frame goes to `onFrame` as text. For the
 * in-process benches (allocations.ts, commitCost.ts).
 */
export function openClients(port: number, count: number, onFrame: (text: string) => void): Promise<WebSocket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          let open = false;
          socket.on('message', (data) => {
            if (open) onFrame(data.toString());
            else {
              open = true;
              resolve(socket);
            }
          });
          socket.on('error', reject);
        }),
    ),
  );
}
