import { describe, expect, it } from 'vitest';
import { countedUsage } from '../../src/actors/countedUsage.ts';
import type { GenerationRequest, ModelProvider, ProviderChunk } from '../../src/domain/ports.ts';

const count = (text: string) => text.length; // one token per character
const request: GenerationRequest = { sessionId: 's', messageId: 'r', prompt: 'abcd', history: [], options: { system: 'xy' } };

function scripted(pieces: ProviderChunk[]): ModelProvider {
  return {
    name: 'scripted',
    async *stream() {
      yield* pieces;
    },
  };
}

async function collect(provider: ModelProvider): Promise<ProviderChunk[]> {
  const pieces: ProviderChunk[] = [];
  for await (const piece of provider.stream(request, new AbortController().signal)) pieces.push(piece);
  return pieces;
}

describe('countedUsage: every reply has usage', () => {
  it('counts a model that reports none: the prompt and system prompt in, text and tool calls out', async () => {
    const pieces = await collect(
      countedUsage(
        scripted([
          { text: 'hel', last: false },
          { text: '', last: false, toolCalls: [{ index: 0, id: 'c', name: 'fn', arguments: '{"a"' }] },
          { text: 'lo', last: true },
        ]),
        count,
      ),
    );
    // in: 3 (reply) + 3 + 2 (system) + 3 + 4 (prompt); out: "hello" + "fn" + '{"a"'
    expect(pieces.at(-1)?.usage).toEqual({ inputTokens: 15, outputTokens: 5 + 2 + 4 });
    expect(pieces.slice(0, -1).every((piece) => piece.usage === undefined)).toBe(true);
  });

  it("keeps a model's own usage", async () => {
    const pieces = await collect(countedUsage(scripted([{ text: 'hi', last: true, usage: { inputTokens: 100, outputTokens: 200 } }]), count));
    expect(pieces).toEqual([{ text: 'hi', last: true, usage: { inputTokens: 100, outputTokens: 200 } }]);
  });

  it('a stream that just ends gets a final piece with the usage', async () => {
    const pieces = await collect(countedUsage(scripted([{ text: 'abc', last: false }]), count));
    expect(pieces.at(-1)).toEqual({ text: '', last: true, usage: { inputTokens: 15, outputTokens: 3 } });
  });
});
