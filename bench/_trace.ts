import { Child } from './processes.ts';
import { createChatServer } from '../src/server.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
const upstream = new Child('./fastUpstream.ts');
const port = Number((await upstream.next('ready'))['port']);
const server = createChatServer({ logger: silentLogger, llmProvider: 'openai', llmBaseUrl: `http://127.0.0.1:${port}/v1`, llmModel: 'fake-model', llmApiKey: 'x' });
const { port: p } = await server.listen(0, '127.0.0.1');
let t0 = 0;
server.bus.subscribeAll((e) => console.log((performance.now() - t0).toFixed(2), e.type, (e as any).chunk?.length ?? ''));
const body = JSON.stringify({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'hello' }] });
for (let i = 0; i < 3; i++) {
  t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${p}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  console.log((performance.now() - t0).toFixed(2), 'headers');
  const text = await r.text();
  console.log((performance.now() - t0).toFixed(2), 'done', text.length);
}
await server.close(); upstream.kill(); process.exit(0);
