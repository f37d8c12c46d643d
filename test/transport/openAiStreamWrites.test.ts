import { once } from 'node:events';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplyFollower, ReplyStep } from '../../src/transport/followReply.ts';
import { createBufferBudget } from '../../src/transport/bufferBudget.ts';
import { streamReply } from '../../src/transport/openAiReply.ts';

/** A follower whose steps come in turns: each inner list at once, a timer between lists. */
function followerOf(turns: ReplyStep[][]): ReplyFollower {
  return {
    track() {},
    stop() {},
    async *[Symbol.asyncIterator]() {
      for (const [index, steps] of turns.entries()) {
        if (index > 0) await new Promise((resolve) => setTimeout(resolve, 20));
        yield* steps;
      }
    },
  };
}

/** The raw HTTP response to one streamed request, cut into the chunks of its chunked body. */
async function chunksOf(port: number): Promise<{ head: string; chunks: string[] }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  // Not ended: a client that half-closes is taken for one that left.
  socket.write('GET /stream HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
  let raw = '';
  socket.setEncoding('utf8');
  for await (const part of socket) {
    raw += part;
    if (raw.endsWith('\r\n0\r\n\r\n')) break;
  }
  socket.destroy();
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  let rest = raw.slice(split + 4);
  const chunks: string[] = [];
  for (;;) {
    const line = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, line), 16);
    if (line === -1 || Number.isNaN(size)) throw new Error(`not a chunked body: ${JSON.stringify(raw.slice(0, 400))}`);
    if (size === 0) break;
    chunks.push(rest.slice(line + 2, line + 2 + size));
    rest = rest.slice(line + 2 + size + 2);
  }
  return { head, chunks };
}

const text = (piece: string): ReplyStep => ({ type: 'text', text: piece });
const done: ReplyStep = { type: 'completed', usage: { inputTokens: 3, outputTokens: 20 }, finishReason: 'stop' };

describe('streamReply writes', () => {
  let close: (() => void) | undefined;
  afterEach(() => close?.());

  const serve = async (turns: ReplyStep[][]) => {
    const app = express();
    app.get('/stream', (_request, response) => {
      const reply = { id: 'chatcmpl-1', created: 1, model: 'fake' };
      const options = { includeUsage: true, heartbeatMs: 60_000, maxBufferedBytes: 1024 * 1024, budget: createBufferBudget(), onSlowConsumer: () => {} };
      void streamReply(response, followerOf(turns), reply, options);
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    close = () => server.close();
    return (server.address() as AddressInfo).port;
  };

  it('sends the frames of one turn as one chunk of the body: a fast upstream\'s 20 deltas, the end and [DONE] together', async () => {
    const port = await serve([[...Array.from({ length: 20 }, (_, index) => text(`t${index} `)), done]]);
    const { head, chunks } = await chunksOf(port);
    expect(head).toMatch(/^HTTP\/1.1 200/);
    expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
    expect(chunks).toHaveLength(1);
    const frames = chunks[0]!.split('\n\n').filter(Boolean);
    // The role frame, 20 deltas, the finish_reason frame, the usage frame, [DONE].
    expect(frames).toHaveLength(24);
    expect(frames.at(-1)).toBe('data: [DONE]');
    expect(JSON.parse(frames[1]!.slice(6)).choices[0].delta).toEqual({ content: 't0 ' });
  });

  it('sends what a later turn makes as a chunk of its own, in order', async () => {
    const port = await serve([[text('a'), text('b')], [text('c'), done]]);
    const { chunks } = await chunksOf(port);
    expect(chunks).toHaveLength(2);
    const contents = chunks.map((chunk) =>
      chunk
        .split('\n\n')
        .filter((frame) => frame.startsWith('data: {'))
        .map((frame) => JSON.parse(frame.slice(6)).choices[0]?.delta?.content ?? '')
        .join(''),
    );
    expect(contents).toEqual(['ab', 'c']);
    expect(chunks[1]!.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});
