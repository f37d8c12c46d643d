import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from '../domain/ports.ts';
import { clientAddressResolver, stampClientAddress, trustedProxies } from './clientAddress.ts';
import { isCompletionsRequest } from './openAiCompletions.ts';
import type { OpenAiRoutes } from './openAiRoutes.ts';
import { beginRequest } from './requestContext.ts';
import type { WsGateway } from './wsGateway.ts';

export interface ChatHttpServerOptions {
  /** The Express app: every request but chat completions. */
  app: (request: IncomingMessage, response: ServerResponse) => void;
  openAi: OpenAiRoutes;
  ws: WsGateway;
  logger: Logger;
  /** `--trust-proxy` ('' = none). */
  trustProxy: string;
  /** True once shutdown began: upgrades are refused from then on. */
  shuttingDown: () => boolean;
}

/** The node:http server in front: the client address stamped at the edge, completions before Express, WebSocket upgrades. */
export function createChatHttpServer(options: ChatHttpServerOptions): Server {
  const { app, openAi, ws, logger, shuttingDown } = options;
  // With --trust-proxy, stamped once at the edge and read by every per-IP limit
  // (WS, SSE, REST, /v1); without it they read the socket's peer, and no
  // request pays for a lookup it cannot use.
  const trusted = trustedProxies(options.trustProxy);
  const resolveAddress = trusted ? clientAddressResolver(trusted) : undefined;
  // Chat completions skip Express (openAiCompletions.ts: Express was 31% of their CPU).
  const serveHttp = (request: IncomingMessage, response: ServerResponse) => {
    if (isCompletionsRequest(request)) void openAi.completions(request, response, beginRequest(request, response, logger));
    else app(request, response);
  };
  const http = resolveAddress
    ? createHttpServer((request, response) => {
        stampClientAddress(request, resolveAddress);
        serveHttp(request, response);
      })
    : createHttpServer(serveHttp);
  http.on('upgrade', (request, socket, head) => {
    if (resolveAddress) stampClientAddress(request, resolveAddress);
    // New connections are refused while draining; watchers already attached stay.
    if (shuttingDown()) socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else ws.handleUpgrade(request, socket, head);
  });
  return http;
}
