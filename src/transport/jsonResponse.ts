import type { ServerResponse } from 'node:http';

/** A JSON body with its status, as Express's `response.status().set().json()` writes it, for handlers that run without Express. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}
