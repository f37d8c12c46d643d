import { ChatError } from '../domain/errors.ts';
import type { ModelCatalog } from '../model.ts';

/** A model a client named must exist (`model_not_found` otherwise); absent means the session's or the default. */
export function checkModel(models: ModelCatalog | undefined, name: string | undefined): void {
  if (name === undefined || !models || models.has(name)) return;
  throw new ChatError('model_not_found', `No model named "${name}"; GET /v1/models lists them.`);
}
