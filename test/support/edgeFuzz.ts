/**
 * Property-based fuzzing of every surface of the edge (REST bodies and query
 * strings, WebSocket frames, `/v1` bodies) with fast-check, against a real
 * server. Each generated case knows what it is: clean (must be served),
 * hostile by construction (NUL, a lone surrogate, JSON nested too deep: must
 * be 400 bad_request) or anything at all (must get a documented answer).
 * Shared by test/fuzz.test.ts and the abuse bench.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { MAX_JSON_DEPTH } from '../../src/transport/inputRules.ts';

export type Expectation = 'served' | 'refused' | 'silent' | 'any';

/** HTTP statuses the docs list for these endpoints (never a 5xx). */
export const DOCUMENTED_STATUSES: ReadonlySet<number> = new Set([200, 201, 202, 204, 400, 404, 409, 413, 429, 499]);
/** Error codes a WebSocket frame may be answered with. */
export const DOCUMENTED_FRAME_CODES: ReadonlySet<string> = new Set(['bad_request', 'busy', 'session_stopped', 'rate_limited', 'overloaded']);

const LONE_SURROGATE = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');
const FORBIDDEN_CHAR = fc.oneof(fc.constant('\u0000'), LONE_SURROGATE);
const cleanText = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((text) => text.trim() !== '');
const cleanKey = fc.string({ unit: 'grapheme', maxLength: 12 });
const anyText = fc.string({ unit: 'binary', maxLength: 60 });
/** Text with NUL or a lone surrogate somewhere in it. */
const hostileText = fc.tuple(fc.string({ unit: 'grapheme', maxLength: 20 }), FORBIDDEN_CHAR, fc.string({ unit: 'grapheme', maxLength: 20 })).map(([before, bad, after]) => before + bad + after);

/**
 * A value nested past the limit (up to 6,000 levels: a recursive validator
 * overflows near 5,000). JSON.stringify would overflow too, so it stands in
 * the value as a placeholder string that `json` swaps for the nested text.
 */
const tooDeep = fc.tuple(fc.integer({ min: MAX_JSON_DEPTH + 1, max: 6000 }), fc.boolean()).map(([depth, arrays]) => `\u0001DEEP:${depth}:${arrays ? 1 : 0}\u0001`);
const DEEP_PLACEHOLDER = /"\\u0001DEEP:(\d+):([01])\\u0001"/g;
const nestedText = (depth: number, arrays: boolean) => (arrays ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
const hostileValue = fc.oneof(hostileText, tooDeep, fc.tuple(cleanKey, hostileText).map(([key, text]) => [{ [key]: text }]));
/** An object with a hostile key or value somewhere (the key itself may be the hostile part). */
const withHostile = (base: Record<string, unknown>) =>
  fc.oneof(
    fc.tuple(cleanKey, hostileValue).map(([key, value]) => ({ ...base, [`x${key}`]: value })),
    hostileText.map((key) => ({ ...base, extra: { [key]: 1 } })),
  );

export interface HttpCase {
  method: 'GET' | 'POST';
  /** `SESSION` is replaced by the fixed session's id. */
  path: string;
  body?: string;
  expect: Expectation;
}

const json = (value: unknown) => JSON.stringify(value).replace(DEEP_PLACEHOLDER, (_match, depth: string, arrays: string) => nestedText(Number(depth), arrays === '1'));
const percentBytes = (bytes: Uint8Array) => [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

export const restCase: fc.Arbitrary<HttpCase> = fc.oneof(
  // POST /api/sessions
  fc
    .record({ title: cleanText.filter((text) => text.length <= 200), metadata: fc.dictionary(cleanKey, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }) }, { requiredKeys: [] })
    .map((body): HttpCase => ({ method: 'POST', path: '/api/sessions', body: json(body), expect: 'served' })),
  fc
    .oneof(
      hostileText.map((title) => ({ title })),
      fc.tuple(hostileText, fc.jsonValue({ maxDepth: 2 })).map(([key, value]) => ({ metadata: { [key]: value } })),
      fc.tuple(cleanKey, hostileValue).map(([key, value]) => ({ metadata: { [key]: value } })),
      fc.tuple(cleanKey, hostileValue).map(([key, value]) => ({ metadata: { list: [1, { [key]: value }] } })),
    )
    .map((body): HttpCase => ({ method: 'POST', path: '/api/sessions', body: json(body), expect: 'refused' })),
  fc.oneof(fc.json(), anyText).map((body): HttpCase => ({ method: 'POST', path: '/api/sessions', body, expect: 'any' })),
  // POST /api/sessions/:id/messages
  cleanText.map((text): HttpCase => ({ method: 'POST', path: '/api/sessions/SESSION/messages', body: json({ text }), expect: 'served' })),
  fc
    .oneof(hostileText.map((text) => ({ text })), withHostile({ text: 'ok' }))
    .map((body): HttpCase => ({ method: 'POST', path: '/api/sessions/SESSION/messages', body: json(body), expect: 'refused' })),
  fc.oneof(fc.json(), anyText).map((body): HttpCase => ({ method: 'POST', path: '/api/sessions/SESSION/messages', body, expect: 'any' })),
  // POST /api/sessions/:id/cancel, any body
  fc.oneof(fc.json(), anyText).map((body): HttpCase => ({ method: 'POST', path: '/api/sessions/SESSION/cancel', body, expect: 'any' })),
  withHostile({}).map((body): HttpCase => ({ method: 'POST', path: '/api/sessions/SESSION/cancel', body: json(body), expect: 'refused' })),
  // Query strings: raw bytes, percent-encoded (%00 included; invalid UTF-8 too)
  fc
    .tuple(
      fc.constantFrom('/api/sessions', '/api/sessions/SESSION/messages'),
      fc.array(fc.tuple(fc.constantFrom('limit', 'cursor', 'order', 'x', ''), fc.oneof(fc.uint8Array({ maxLength: 12 }), fc.constantFrom('1', '50', '999', 'asc', 'desc', '-1'))), { maxLength: 4 }),
    )
    .map(([path, pairs]): HttpCase => {
      const nul = pairs.some(([, value]) => typeof value !== 'string' && value.includes(0));
      const query = pairs.map(([key, value]) => `${key}=${typeof value === 'string' ? value : percentBytes(value)}`).join('&');
      return { method: 'GET', path: `${path}?${query}`, expect: nul ? 'refused' : 'any' };
    }),
);

export const v1Case: fc.Arbitrary<HttpCase> = fc.oneof(
  fc
    .record({ model: fc.string({ maxLength: 10 }), system: fc.option(cleanText), prompt: cleanText, stream: fc.boolean() })
    .map(({ model, system, prompt, stream }): HttpCase => ({
      method: 'POST',
      path: '/v1/chat/completions',
      body: json({ model, stream, messages: [...(system === null ? [] : [{ role: 'system', content: system }]), { role: 'user', content: prompt }] }),
      expect: 'served',
    })),
  fc
    .oneof(
      hostileText.map((text) => ({ model: 'm', messages: [{ role: 'user', content: text }] })),
      hostileText.map((text) => ({ model: 'm', messages: [{ role: 'system', content: text }, { role: 'user', content: 'hi' }] })),
      hostileText.map((text) => ({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text }] }] })),
      hostileText.map((model) => ({ model, messages: [{ role: 'user', content: 'hi' }] })),
      withHostile({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    )
    .map((body): HttpCase => ({ method: 'POST', path: '/v1/chat/completions', body: json(body), expect: 'refused' })),
  fc
    .oneof(fc.json(), anyText, fc.jsonValue({ maxDepth: 4 }).map((messages) => json({ model: 'm', messages })))
    .map((body): HttpCase => ({ method: 'POST', path: '/v1/chat/completions', body, expect: 'any' })),
);

export interface WsCase {
  frame: string | Uint8Array;
  expect: Expectation;
}

export const wsCase: fc.Arbitrary<WsCase> = fc.oneof(
  cleanText.filter((text) => !text.trimStart().startsWith('{')).map((frame): WsCase => ({ frame, expect: 'served' })),
  cleanText.map((text): WsCase => ({ frame: json({ type: 'message', text }), expect: 'served' })),
  fc.constant<WsCase>({ frame: '{"type":"cancel"}', expect: 'silent' }),
  // Plain text goes out as UTF-8, where a lone surrogate becomes U+FFFD: only NUL survives unescaped.
  fc.tuple(cleanText, cleanText).map(([before, after]): WsCase => ({ frame: `x${before}\u0000${after}`, expect: 'refused' })),
  fc
    .oneof(hostileText.map((text) => ({ type: 'message', text })), withHostile({ type: 'message', text: 'ok' }), withHostile({ type: 'cancel' }))
    .map((frame): WsCase => ({ frame: json(frame), expect: 'refused' })),
  fc.oneof(anyText, fc.json(), fc.uint8Array({ maxLength: 40 })).map((frame): WsCase => ({ frame, expect: 'any' })),
);

export interface FuzzReport {
  cases: number;
  byExpectation: Record<Expectation, number>;
}

const emptyReport = (): FuzzReport => ({ cases: 0, byExpectation: { served: 0, refused: 0, silent: 0, any: 0 } });

/** Checks one HTTP answer against what the case is; throws with the case on a mismatch (fast-check then shrinks it). */
function judgeHttp(testCase: HttpCase, status: number, text: string): void {
  const where = `${testCase.method} ${testCase.path.slice(0, 200)} ${testCase.body?.slice(0, 200) ?? ''}`;
  if (!DOCUMENTED_STATUSES.has(status)) throw new Error(`undocumented status ${status} (${text.slice(0, 200)}) for ${where}`);
  if (testCase.expect === 'refused') {
    if (status !== 400 || !text.includes('"bad_request"')) throw new Error(`expected 400 bad_request, got ${status} for ${where}`);
  } else if (testCase.expect === 'served' && !(status >= 200 && status < 300) && status !== 409) {
    throw new Error(`expected to be served, got ${status} (${text.slice(0, 200)}) for ${where}`);
  }
}

/** Runs `runs` REST or `/v1` cases against `base`; `sessionId` fills the `SESSION` placeholder. */
export async function fuzzHttp(base: string, arbitrary: fc.Arbitrary<HttpCase>, runs: number, sessionId: string, seed?: number): Promise<FuzzReport> {
  const report = emptyReport();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (testCase) => {
      report.cases += 1;
      report.byExpectation[testCase.expect] += 1;
      const response = await fetch(`${base}${testCase.path.replace('SESSION', sessionId)}`, {
        method: testCase.method,
        headers: testCase.body === undefined ? {} : { 'content-type': 'application/json' },
        body: testCase.body,
      });
      judgeHttp(testCase, response.status, await response.text());
    }),
    { numRuns: runs, ...(seed !== undefined ? { seed } : {}) },
  );
  return report;
}

type Frame = { type?: string; code?: string; messageId?: string; message?: string };

const BINARY_REFUSED = 'Binary frames are not supported; send text.';
const isBinaryRefusal = (frame: Frame) => frame.type === 'error' && frame.message === BINARY_REFUSED;

/**
 * Runs `runs` frames over one WebSocket attached to `sessionId`. After each
 * frame a binary sentinel follows (always answered `bad_request`, and frames
 * are handled in order), so what came between is the case's whole answer.
 */
export async function fuzzWs(wsUrl: string, runs: number, sessionId: string, seed?: number): Promise<FuzzReport> {
  const report = emptyReport();
  const socket = new WebSocket(`${wsUrl}?sessionId=${sessionId}`);
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  let closed: number | undefined;
  let refusals = 0;
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    if (isBinaryRefusal(frame)) refusals += 1;
    frames.push(frame);
    wake?.();
  });
  socket.on('close', (code) => {
    closed = code;
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const until = async (probe: () => boolean) => {
    const deadline = Date.now() + 5000;
    while (!probe()) {
      if (closed !== undefined) throw new Error(`the socket closed (${closed})`);
      if (Date.now() > deadline) throw new Error(`no answer; last frames ${JSON.stringify(frames.slice(-3))}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  await until(() => frames.some((frame) => frame.type === 'session'));
  let sentinels = 0;
  try {
    await fc.assert(
      fc.asyncProperty(wsCase, async (testCase) => {
        report.cases += 1;
        report.byExpectation[testCase.expect] += 1;
        frames.length = 0;
        const binary = typeof testCase.frame !== 'string';
        socket.send(testCase.frame, { binary });
        socket.send(Buffer.from([0xff]), { binary: true });
        sentinels += binary ? 2 : 1;
        await until(() => refusals >= sentinels);
        // The case's answer: requests answered to their sender (no messageId), before the sentinel's refusal.
        let end = frames.length - 1;
        while (end >= 0 && !isBinaryRefusal(frames[end]!)) end -= 1;
        const answers = frames.slice(0, end).filter((frame) => frame.type === 'accepted' || (frame.type === 'error' && !frame.messageId));
        const shown = typeof testCase.frame === 'string' ? testCase.frame.slice(0, 200) : `binary ${testCase.frame.length} bytes`;
        if (answers.length > 1) throw new Error(`more than one answer ${JSON.stringify(answers)} to ${shown}`);
        const answer = answers[0];
        if (answer?.type === 'error' && !DOCUMENTED_FRAME_CODES.has(answer.code ?? '')) throw new Error(`undocumented code ${answer.code} for ${shown}`);
        if (testCase.expect === 'refused' && !(answer?.type === 'error' && answer.code === 'bad_request')) throw new Error(`expected bad_request, got ${JSON.stringify(answer)} for ${shown}`);
        if (testCase.expect === 'served' && !(answer?.type === 'accepted' || answer?.code === 'busy')) throw new Error(`expected accepted, got ${JSON.stringify(answer)} for ${shown}`);
        if (testCase.expect === 'silent' && answer !== undefined) throw new Error(`expected no answer, got ${JSON.stringify(answer)} for ${shown}`);
      }),
      { numRuns: runs, ...(seed !== undefined ? { seed } : {}) },
    );
  } finally {
    socket.close();
  }
  return report;
}
