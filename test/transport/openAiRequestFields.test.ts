import { describe, expect, it } from 'vitest';
import type { ChatServerOptions } from '../../src/server.ts';
import { fakeLogprob } from '../support/fakeUpstream.ts';
import { fakeUpstreamPerTest, openAiClient } from '../support/fakeUpstreamPerTest.ts';
import { api, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const fixture = fakeUpstreamPerTest();
const start = (options?: ChatServerOptions) => fixture.start(options);
const sdk = openAiClient;

describe('the rest of the request passes through; finish_reason is the upstream’s', () => {
  it('an image part (data: and https URLs), audio, a file and response_format reach the model’s server unchanged', async () => {
    const server = await start();
    const parts = [
      { type: 'text' as const, text: 'Describe these.' },
      { type: 'image_url' as const, image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', detail: 'low' as const } },
      { type: 'image_url' as const, image_url: { url: 'https://example.com/cat.jpg' } },
      { type: 'input_audio' as const, input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' as const } },
      { type: 'file' as const, file: { filename: 'notes.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
    ];
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: { name: 'description', strict: true, schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false } },
    };
    const passthrough = {
      stop: ['\n\n', 'END'],
      seed: 42,
      top_p: 0.9,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '50256': -100 },
      user: 'user-123',
      metadata: { team: 'qa' },
      max_completion_tokens: 200,
    };
    await sdk(server.url).chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'system', content: 'Be exact.' }, { role: 'user', content: parts }],
      response_format: responseFormat,
      ...passthrough,
    });
    const body = fixture.upstream.requests[0]!.body;
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be exact.' },
      { role: 'user', content: parts },
    ]);
    expect(body).toMatchObject({ response_format: responseFormat, ...passthrough, model: 'fake-model', stream: true });
    expect(body['max_tokens']).toBeUndefined();
  });

  it('json_object mode passes through; fields llm-chat does not know are ignored, not refused', async () => {
    const server = await start();
    const response = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [{ role: 'user', content: 'JSON please' }],
      response_format: { type: 'json_object' },
      some_future_field: { nested: true },
      modalities: ['text'],
    });
    expect(response.status).toBe(200);
    const body = fixture.upstream.requests[0]!.body;
    expect(body['response_format']).toEqual({ type: 'json_object' });
    expect(body).not.toHaveProperty('some_future_field');
    expect(body).not.toHaveProperty('modalities');
  });

  it('refuses malformed passthrough fields and content parts with a message that names the field', async () => {
    const server = await start();
    const ask = (extra: Json, content: unknown = 'hi') => api(server.url, 'POST', '/v1/chat/completions', { model: 'fake-model', messages: [{ role: 'user', content }], ...extra });
    const cases: [Promise<{ status: number; body: Json }>, RegExp][] = [
      [ask({ top_p: 3 }), /at top_p/],
      [ask({ response_format: { type: 'yaml' } }), /at response_format/],
      [ask({ stop: ['a', 'b', 'c', 'd', 'e'] }), /at stop/],
      [ask({}, [{ type: 'video', video: {} }]), /Content parts of type "video" are not supported in user messages \(messages\.0\.content\.0\)/],
      [ask({}, [{ type: 'image_url', image_url: { url: 'ftp://example.com/x.png' } }]), /at messages\.0\.content\.0\.image_url\.url/],
      [ask({ functions: [{ name: 'f' }] }), /deprecated/],
      [ask({ n: 2 }), /Only n = 1/],
    ];
    for (const [response, message] of cases) {
      const { status, body } = await response;
      expect(status).toBe(400);
      expect((body['error'] as Json)['code']).toBe('bad_request');
      expect(String((body['error'] as Json)['message'])).toMatch(message);
    }
    expect(fixture.upstream.requests).toHaveLength(0);
  });

  it("finish_reason length from the upstream reaches the client (streamed, not streamed) and the completed frame", async () => {
    const server = await start();
    const truncatedReply = { kind: 'stream' as const, pieces: ['Once upon'], finishReason: 'length' };
    fixture.upstream.enqueue(truncatedReply, truncatedReply, truncatedReply);
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'tell a story' }], max_tokens: 2, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'tell a story' }], max_tokens: 2 });
    expect(plain.choices[0]?.finish_reason).toBe('length');
    expect(fixture.upstream.requests[1]?.body['max_tokens']).toBe(2);
    const { client, sessionId } = await WsClient.session(server.wsUrl);
    fixture.closeAfter(() => client.close());
    client.send('tell a story');
    expect(await client.waitFor((frame) => frame.type === 'completed')).toMatchObject({ sessionId, finishReason: 'length' });
  });

  it('logprobs are asked of the model and come back on the chunks and the body', async () => {
    const server = await start();
    const reply = { kind: 'stream' as const, pieces: ['Hi', ' there'] };
    fixture.upstream.enqueue(reply, reply);
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], logprobs: true, top_logprobs: 2, stream: true });
    const entries = [];
    for await (const chunk of stream) entries.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(entries).toEqual([fakeLogprob('Hi'), fakeLogprob(' there')]);
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], logprobs: true });
    expect(plain.choices[0]?.logprobs?.content).toEqual([fakeLogprob('Hi'), fakeLogprob(' there')]);
    expect(fixture.upstream.requests[0]?.body).toMatchObject({ logprobs: true, top_logprobs: 2 });
  });
});

describe('/v1 has its own body limit', () => {
  it('takes a 1 MiB image on /v1 while other REST bodies keep theirs, and refuses a body past --max-v1-body-bytes', async () => {
    const server = await start({ maxBodyBytes: 64 * 1024, maxV1BodyBytes: 2 * 1024 * 1024 });
    const image = `data:image/png;base64,${'A'.repeat(1024 * 1024)}`;
    const big = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: image } }] }],
    });
    expect(big.status).toBe(200);
    expect(((fixture.upstream.requests[0]?.body.messages?.[0]?.content as Json[])[1]!['image_url'] as Json)['url']).toBe(image);
    const rest = await api(server.url, 'POST', '/api/sessions', { title: 'x'.repeat(100 * 1024) });
    expect(rest.status).toBe(413);
    const tooBig = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(3 * 1024 * 1024)}` } }] }],
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toMatchObject({ error: { code: 'payload_too_large', type: 'invalid_request_error' } });
    expect(fixture.upstream.requests).toHaveLength(1);
  });
});
