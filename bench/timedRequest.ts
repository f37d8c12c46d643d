import { request } from 'node:http';

/** One HTTP request on a connection of its own (so the primary hands it to any worker); status and time taken. */
export function timedRequest(port: number, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const call = request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (response) => {
        let text = '';
        response.on('data', (data: Buffer) => (text += data.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, ms: performance.now() - started, body: text }));
      },
    );
    call.on('error', (error) => resolve({ status: 0, ms: performance.now() - started, body: String(error) }));
    call.setTimeout(timeoutMs, () => call.destroy(new Error('timeout')));
    call.end(payload);
  });
}
