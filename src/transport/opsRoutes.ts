import { Router } from 'express';
import type { Request, Response } from 'express';
import type { StoreHealth } from '../actors/storeHealth.ts';

export interface OpsRoutesOptions {
  /** The store's health, as the sessions see it; `/readyz` probes it afresh. */
  health: Pick<StoreHealth, 'check'>;
  /** True once the server has begun shutting down. */
  shuttingDown(): boolean;
  /** Many nodes: Redis must answer too (bounded by `redisTimeoutMs`, default 1 s). */
  redis?: { ping(): Promise<void> };
  redisTimeoutMs?: number;
  /** Prometheus exposition; absent when metrics are off. */
  metrics?: { contentType: string; render(): Promise<string> };
}

/** `GET /readyz` (accepting work?) and `GET /metrics`. `GET /healthz` (alive) stays in the app. */
export function createOpsRoutes(options: OpsRoutesOptions): Router {
  const router = Router();

  router.get('/readyz', async (_request: Request, response: Response) => {
    response.setHeader('Cache-Control', 'no-store');
    if (options.shuttingDown()) {
      response.status(503).json({ status: 'unavailable', reason: 'shutting_down' });
      return;
    }
    // A bounded probe (1 s); its answer is also what the sessions go by.
    if (!(await options.health.check())) {
      response.status(503).json({ status: 'unavailable', reason: 'store_unreachable' });
      return;
    }
    if (options.redis && !(await answersWithin(options.redis.ping(), options.redisTimeoutMs ?? 1000))) {
      response.status(503).json({ status: 'unavailable', reason: 'redis_unreachable' });
      return;
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

/** True when the promise resolves within `ms`. */
async function answersWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
