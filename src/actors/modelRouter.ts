import { isUpstreamFailure } from '../domain/errors.ts';
import type { ChatError } from '../domain/errors.ts';
import type { CancelSignal, GenerationRequest, Logger, ModelProvider, ProviderChunk } from '../domain/ports.ts';

/** A model as the router knows it: its name, its guarded provider and where to go when it fails. */
export interface RoutedModel {
  readonly name: string;
  readonly provider: ModelProvider;
  readonly fallbacks: readonly string[];
}

export interface ModelRouterOptions {
  models: ReadonlyMap<string, RoutedModel>;
  defaultModel: string;
  logger: Logger;
}

/** Failures another model may not have: the server is down, slow, overloaded or limiting us. */
function worthAFallback(error: ChatError): boolean {
  if (error.code === 'upstream_timeout' || error.code === 'upstream_unavailable' || error.code === 'rate_limited') return true;
  const status = error.upstreamStatus;
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/**
 * One provider in front of every configured model: a request goes to the
 * model it names (`request.model`: the message's, else the session's; else
 * the default), and when that model fails before its first token with a
 * failure another may not share (connection, 5xx, 429, timeout, open
 * breaker) its fallbacks are tried in order. Once text has been streamed a
 * failure ends the reply: a second model must not continue the first one's
 * sentence. The first piece names the model that answered.
 */
export function createModelRouter(options: ModelRouterOptions): ModelProvider {
  const { models, defaultModel, logger } = options;
  const pick = (request: GenerationRequest): RoutedModel => {
    const primary = models.get(request.model ?? defaultModel);
    if (primary) return primary;
    // A session may name a model a later models file no longer has: it goes on with the default.
    logger.warn({ sessionId: request.sessionId, model: request.model, defaultModel }, 'the session names an unknown model; using the default');
    return models.get(defaultModel)!;
  };

  async function* withFallbacks(chain: readonly RoutedModel[], request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk> {
    for (const [position, model] of chain.entries()) {
      let delivered = false;
      try {
        for await (const piece of model.provider.stream(request, signal)) {
          if (delivered) yield piece;
          else {
            delivered = true;
            yield { ...piece, model: model.name };
          }
        }
        return;
      } catch (error) {
        const next = chain[position + 1];
        if (delivered || signal.aborted || !next || !isUpstreamFailure(error) || !worthAFallback(error)) throw error;
        logger.warn(
          { sessionId: request.sessionId, messageId: request.messageId, from: model.name, to: next.name, code: error.code, upstreamStatus: error.upstreamStatus },
          'model failed before its first token; trying its fallback',
        );
      }
    }
  }

  return {
    name: 'router',
    stream(request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk> {
      const primary = pick(request);
      // Nothing to fall back to (the usual case): the model's own stream, its
      // first piece named, with no generator of the router's in between (one
      // per reply, stepped and awaited for every chunk: ~6% of the bytes a
      // reply allocates, bench/allocations.ts).
      if (primary.fallbacks.length === 0) return new NamedFirst(primary, request, signal);
      const chain = [primary, ...primary.fallbacks.flatMap((name) => models.get(name) ?? [])];
      if (chain.length === 1) return new NamedFirst(primary, request, signal);
      return withFallbacks(chain, request, signal);
    },
  };
}

/**
 * The model's stream (opened at the first read), its first piece carrying
 * the model's name; every later piece passes untouched. Its own iterator, as
 * a generator object is, with its methods on the prototype: a literal of
 * closures was a context and three functions per reply, alive while the
 * reply streams, each named by tsx with a defineProperty.
 */
class NamedFirst implements AsyncIterableIterator<ProviderChunk> {
  readonly #model: RoutedModel;
  #request: GenerationRequest | undefined;
  readonly #signal: CancelSignal;
  #inner: AsyncIterator<ProviderChunk> | undefined;

  constructor(model: RoutedModel, request: GenerationRequest, signal: CancelSignal) {
    this.#model = model;
    this.#request = request;
    this.#signal = signal;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ProviderChunk>> {
    let inner = this.#inner;
    if (!inner) {
      try {
        inner = this.#inner = this.#model.provider.stream(this.#request!, this.#signal)[Symbol.asyncIterator]();
      } catch (error) {
        return Promise.reject(error);
      }
      this.#request = undefined;
      return inner.next().then((result) => this.#named(result));
    }
    return inner.next();
  }

  // A reader that stops early (break, cancel) stops the model's stream too: its finally runs, its timers and requests end.
  return(value?: unknown): Promise<IteratorResult<ProviderChunk>> {
    const inner = this.#inner;
    return inner?.return ? inner.return(value) : Promise.resolve({ done: true as const, value: undefined });
  }

  #named(result: IteratorResult<ProviderChunk>): IteratorResult<ProviderChunk> {
    if (result.done) return result;
    return { done: false, value: { ...result.value, model: this.#model.name } };
  }
}
