/**
 * Opens N WebSockets at the same moment and prints, as one JSON line, what
 * each got first (`session`, or `error:<code>`, or `failed:<message>`). Run
 * as a child process (see `crowd` in crowd.ts) so the clients' own work does
 * not run on the server's event loop. Usage: crowdClient.ts URL N [HEADERS_JSON]
 */
import WebSocket from 'ws';

const [url, countText, headersText] = process.argv.slice(2);
const count = Number(countText);
const headers = headersText ? (JSON.parse(headersText) as Record<string, string>) : {};
const sockets: WebSocket[] = [];
const results = await Promise.all(
  Array.from(
    { length: count },
    () =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(url!, { headers });
        sockets.push(socket);
        socket.once('message', (data) => {
          const frame = JSON.parse(data.toString()) as { type: string; code?: string };
          resolve(frame.type === 'session' ? 'session' : `${frame.type}:${frame.code}`);
        });
        socket.once('error', (error) => resolve(`failed:${error.message}`));
      }),
  ),
);
const tally: Record<string, number> = {};
for (const result of results) tally[result] = (tally[result] ?? 0) + 1;
process.stdout.write(`${JSON.stringify(tally)}\n`);
for (const socket of sockets) socket.terminate();
process.exit(0);
