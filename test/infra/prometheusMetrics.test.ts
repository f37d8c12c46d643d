import { describe, expect, it } from 'vitest';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { createPrometheusMetrics } from '../../src/infra/prometheusMetrics.ts';
import { systemClock } from '../../src/infra/systemClock.ts';

const sample = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

describe('prometheus metrics from the bus', () => {
  it('counts every chunk exactly once across scrapes (counted as they pass, handed over at each scrape)', async () => {
    const bus = createInProcessBus();
    const metrics = createPrometheusMetrics({ bus, clock: systemClock, connections: () => ({ ws: 0, sse: 0 }), liveSessions: () => 0 });
    const chunk = (seq: number) =>
      bus.publish({ type: 'chunk', sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', messageId: 'm', seq, chunk: 'x', is_last: false });
    expect(sample(await metrics.render(), 'llm_chat_chunks_sent_total')).toBe(0);
    for (let seq = 1; seq <= 3; seq += 1) chunk(seq);
    expect(sample(await metrics.render(), 'llm_chat_chunks_sent_total')).toBe(3);
    expect(sample(await metrics.render(), 'llm_chat_chunks_sent_total')).toBe(3);
    chunk(4);
    chunk(5);
    expect(sample(await metrics.render(), 'llm_chat_chunks_sent_total')).toBe(5);
    metrics.close();
  });

  it('counts the tokens of completed replies by kind', async () => {
    const bus = createInProcessBus();
    const metrics = createPrometheusMetrics({ bus, clock: systemClock, connections: () => ({ ws: 0, sse: 0 }), liveSessions: () => 0 });
    bus.publish({ type: 'message.completed', sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', messageId: 'm1', usage: { inputTokens: 10, outputTokens: 4 } });
    bus.publish({ type: 'message.completed', sessionId: 'AAAAAAAAAAAAAAAAAAAAAA', messageId: 'm2' });
    bus.publish({ type: 'message.completed', sessionId: 'BBBBBBBBBBBBBBBBBBBBBB', messageId: 'm3', usage: { inputTokens: 1, outputTokens: 2 } });
    const text = await metrics.render();
    expect(sample(text, 'llm_chat_tokens_total{kind="input"}')).toBe(11);
    expect(sample(text, 'llm_chat_tokens_total{kind="output"}')).toBe(6);
    metrics.close();
  });
});
