import { Router } from 'express';
import type { Request, Response } from 'express';
import type { BreakerStatus } from '../actors/circuitBreaker.ts';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';

export interface StatusRouteOptions {
  registry: SessionRegistry;
  provider: { name: string; model: string; breaker: () => BreakerStatus };
  /** Many nodes: this node's id. */
  node?: string;
}

/** `GET /api/status`: the node's view of itself, including the model's circuit breaker. */
export function createStatusRoute(options: StatusRouteOptions): Router {
  const router = Router();
  router.get('/status', (_request: Request, response: Response) => {
    response.json({
      status: 'ok',
      ...(options.node !== undefined ? { node: options.node } : {}),
      sessions: { active: options.registry.activeCount },
      provider: { name: options.provider.name, model: options.provider.model, breaker: options.provider.breaker() },
    });
  });
  return router;
}
