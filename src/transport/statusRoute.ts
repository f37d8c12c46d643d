import { Router } from 'express';
import type { Request, Response } from 'express';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import type { Models } from '../model.ts';

export interface StatusRouteOptions {
  registry: SessionRegistry;
  models: Pick<Models, 'catalog' | 'status'>;
  /** Many nodes: this node's id. */
  node?: string;
}

/**
 * `GET /api/status`: the node's view of itself, including every model's
 * circuit breaker (`models`) and, as before, the default model's (`provider`).
 */
export function createStatusRoute(options: StatusRouteOptions): Router {
  const router = Router();
  router.get('/status', (_request: Request, response: Response) => {
    const models = options.models.status();
    const chosen = models.find((model) => model.name === options.models.catalog.defaultModel) ?? models[0]!;
    response.json({
      status: 'ok',
      ...(options.node !== undefined ? { node: options.node } : {}),
      sessions: { active: options.registry.activeCount },
      provider: { name: chosen.provider, model: chosen.model ?? chosen.name, breaker: chosen.breaker },
      defaultModel: options.models.catalog.defaultModel,
      models,
    });
  });
  return router;
}
