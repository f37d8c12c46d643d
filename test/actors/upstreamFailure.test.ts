import { afterEach, describe, expect, it } from 'vitest';
import { createSessionRegistry } from '../../src/actors/sessionRegistry.ts';
import type { SessionRegistry } from '../../src/actors/sessionRegistry.ts';
import { ChatError } from '../../src/domain/errors.ts';
import type { ChatEvent } from '../../src/domain/events.ts';
import type { ModelProvider, ProviderChunk } from '../../src/domain/ports.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { ManualClock } from '../support/manualClock.ts';
import { sequentialIds } from '../support/sequentialIds.ts';

const registries: SessionRegistry[] = [];
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
});

/** Streams "ok" with usage, except for prompts naming a failure, which throw it after one chunk. */
const provider: ModelProvider = {
  name: 'scripted',
  async *stream(request): AsyncIterable<ProviderChunk> {
    yield { text: 'part', last: false };
    if (request.prompt === 'outage') throw new ChatError('upstream_error', 'HTTP 503', { upstreamStatus: 503 });
    if (request.prompt === 'bug') throw new Error('a bug');
    yield { text: '', last: true, usage: { inputTokens: 4, outputTokens: 1 } };
  },
};

function setup() {
  const clock = new ManualClock();
  const bus = createInProcessBus();
  const registry = createSessionRegistry({
    bus,
    store: createMemoryStore(),
    provider,
    clock,
    logger: silentLogger,
    ids: sequentialIds(),
    restartPolicy: { intensity: 1, periodMs: 60_000, backoffBaseMs: 10 },
  });
  registries.push(registry);
  const events: ChatEvent[] = [];
  bus.subscribeAll((event) => events.push(event));
  return { clock, registry, events };
}

describe('upstream failures in a session', () => {
  it('end the reply as failed with the typed code and no restart, however many there are', async () => {
    const { clock, registry, events } = setup();
    const session = await registry.create();
    const failed = [await session.send('outage'), await session.send('outage'), await session.send('outage')];
    const next = await session.send('fine');
    await clock.advance(100);
    expect(events.filter((event) => event.type === 'message.failed')).toEqual(
      failed.map(({ replyId }) => ({
        type: 'message.failed',
        sessionId: session.sessionId,
        messageId: replyId,
        code: 'upstream_error',
        message: 'HTTP 503',
        upstreamStatus: 503,
      })),
    );
    expect(events.some((event) => event.type === 'session.restarted' || event.type === 'session.stopped')).toBe(false);
    expect(events.find((event) => event.type === 'message.completed')).toEqual({
      type: 'message.completed',
      sessionId: session.sessionId,
      messageId: next.replyId,
      usage: { inputTokens: 4, outputTokens: 1 },
    });
    const view = (await session.view());
    expect(view.status).toBe('idle');
    expect(view.messages.find((message) => message.id === failed[0]!.replyId)).toMatchObject({ status: 'failed', errorCode: 'upstream_error', content: 'part' });
    expect(view.messages.find((message) => message.id === next.replyId)?.usage).toEqual({ inputTokens: 4, outputTokens: 1 });
  });

  it('an untyped provider failure still crashes the actor and the supervisor restarts it', async () => {
    const { clock, registry, events } = setup();
    const session = await registry.create();
    await session.send('bug');
    await clock.advance(100);
    expect(events.find((event) => event.type === 'message.failed')).toMatchObject({ code: 'provider_error' });
    expect(events.some((event) => event.type === 'session.restarted')).toBe(true);
  });
});
