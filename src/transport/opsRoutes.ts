import { Router } from 'express';
import type { Request, Response } from 'express';
import type { SessionStore } from '../domain/ports.ts';

export interface OpsRoutesOptions {
  store: SessionStore;
  /** True once the server has begun shutting down. */
  shuttingDown(): boolean;
  /** Prometheus exposition; absent when metrics are off. */
  metrics?: { contentType: string; render(): Promise<string> };
  /** How long `/readyz` waits for the store (default 2 s). */
  storeTimeoutMs?: number;
  /** Many nodes: Redis must answer too. */
  redis?: { ping(): Promise<void> };
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `GET /readyz` (accepting work?) and `GET /metrics`. `GET /healthz` (alive) stays in the app. */
export function createOpsRoutes(options: OpsRoutesOptions): Router {
  const router = Router();
  const storeTimeoutMs = options.storeTimeoutMs ?? 2000;

  router.get('/readyz', async (_request: Request, response: Response) => {
    response.setHeader('Cache-Control', 'no-store');
    if (options.shuttingDown()) {
      response.status(503).json({ status: 'unavailable', reason: 'shutting_down' });
      return;
    }
    try {
      await within(options.store.ping(), storeTimeoutMs);
    } catch {
      response.status(503).json({ status: 'unavailable', reason: 'store_unreachable' });
      return;
    }
    if (options.redis) {
      try {
        await within(options.redis.ping(), storeTimeoutMs);
      } catch {
        response.status(503).json({ status: 'unavailable', reason: 'redis_unreachable' });
        return;
      }
    }
    response.json({ status: 'ready' });
  });

  const metrics = options.metrics;
  if (metrics) {
    router.get('/metrics', async (_request: Request, response: Response) => {
      const text = await metrics.render();
      response.setHeader('Content-Type', metrics.contentType);
      response.setHeader('Cache-Control', 'no-store');
      response.send(text);
    });
  }
  return router;
}
