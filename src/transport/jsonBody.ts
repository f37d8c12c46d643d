import type { IncomingMessage } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { ChatError } from '../domain/errors.ts';
import { assertCleanJson, hasBody, NOT_JSON } from './inputRules.ts';

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** `application/json` with no charset or UTF-8 (parameters and case aside), as `express.json()` takes it. */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...parameters] = contentType.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  for (const parameter of parameters) {
    const [name, value] = parameter.split('=');
    if (name?.trim().toLowerCase() === 'charset' && !/^"?utf-8"?$/i.test(value?.trim() ?? '')) {
      throw new ChatError('bad_request', `The charset ${JSON.stringify(value?.trim() ?? '')} is not supported: send UTF-8.`);
    }
  }
  return true;
}

/**
 * Rejects with `error` once the rest of the request is read off and dropped,
 * as express.json() does: a client still sending when the answer came would
 * not reuse the connection.
 */
function readOff(request: IncomingMessage, error: unknown): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (request.complete || request.destroyed) {
      reject(error);
      return;
    }
    request.once('end', () => reject(error));
    request.once('close', () => reject(error));
    request.resume();
  });
}

/**
 * Reads the whole stream, refusing it past `limitBytes`; undefined when the
 * client went away meanwhile; refused past the limit once read off.
 */
function readAll(request: IncomingMessage, stream: Readable, limitBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => new BodyRead(request, stream, limitBytes, resolve, reject).start());
}

/**
 * One body being read. Its listeners are bound methods, not closures: tsx,
 * which runs the server, names each closure it makes (a defineProperty,
 * ~0.3 µs each here), and the five this read made were ~1% of the server's
 * CPU in the streamed /v1 bench (bench/gateway.ts, --cpu-prof).
 */
class BodyRead {
  readonly #request: IncomingMessage;
  readonly #stream: Readable;
  readonly #limitBytes: number;
  readonly #resolve: (body: Buffer | undefined) => void;
  readonly #reject: (error: unknown) => void;
  readonly #parts: Buffer[] = [];
  #length = 0;
  readonly #onData = this.#data.bind(this);
  readonly #onEnd = this.#end.bind(this);
  readonly #onError = this.#error.bind(this);
  readonly #onClose = this.#close.bind(this);

  constructor(request: IncomingMessage, stream: Readable, limitBytes: number, resolve: (body: Buffer | undefined) => void, reject: (error: unknown) => void) {
    this.#request = request;
    this.#stream = stream;
    this.#limitBytes = limitBytes;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  start(): void {
    const stream = this.#stream;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('error', this.#onError);
    stream.on('close', this.#onClose);
  }

  #data(part: Buffer): void {
    this.#length += part.length;
    if (this.#length > this.#limitBytes) {
      this.#done(new ChatError('payload_too_large'));
      return;
    }
    this.#parts.push(part);
  }

  #end(): void {
    const parts = this.#parts;
    this.#done(undefined, parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#length));
  }

  #error(error: unknown): void {
    this.#done(error instanceof ChatError ? error : new ChatError('bad_request', 'The body could not be read.', { cause: error }));
  }

  #close(): void {
    this.#done(undefined, undefined);
  }

  #done(error: unknown, body?: Buffer): void {
    const stream = this.#stream;
    stream.off('data', this.#onData);
    stream.off('end', this.#onEnd);
    stream.off('error', this.#onError);
    stream.off('close', this.#onClose);
    if (!error) {
      this.#resolve(body);
      return;
    }
    const request = this.#request;
    if (stream !== request) {
      request.unpipe();
      stream.destroy();
    }
    readOff(request, error).catch(this.#reject);
  }
}

/**
 * A JSON request body, with the rules `express.json()` and
 * `rejectHostileInput` apply on every other JSON endpoint, for a handler that
 * runs without Express (openAiCompletions.ts): JSON only with
 * `Content-Type: application/json` in UTF-8 (gzip, deflate and br decoded),
 * an object or an array at the top, at most `limitBytes` decoded
 * (`payload_too_large`), and the input rules (inputRules.ts: no NUL or lone
 * surrogate, bounded nesting) over the body and the query string. Resolves
 * to undefined when there is no body at all, or the client went away.
 */
export async function readJsonBody(request: IncomingMessage, limitBytes: number): Promise<unknown> {
  const query = request.url?.indexOf('?') ?? -1;
  if (query !== -1) assertCleanJson(Object.fromEntries(new URLSearchParams(request.url!.slice(query + 1))), 'the query string');
  if (!isJson(request.headers['content-type'])) {
    if (hasBody(request)) throw new ChatError('bad_request', NOT_JSON);
    return undefined;
  }
  if (!hasBody(request)) return undefined;
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) return readOff(request, new ChatError('payload_too_large'));
  const encoding = String(request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let source: Readable = request;
  if (encoding !== 'identity') {
    const decoder = DECODERS[encoding];
    if (!decoder) throw new ChatError('bad_request', `The Content-Encoding ${JSON.stringify(encoding)} is not supported.`);
    const decoded = decoder();
    // Its errors are the read's (below) while it is read; after that, nobody's.
    decoded.on('error', () => {});
    request.on('error', (error) => decoded.destroy(error));
    source = request.pipe(decoded);
  }
  const raw = await readAll(request, source, limitBytes);
  if (raw === undefined) return undefined;
  const text = raw.toString('utf8');
  // An empty body is an empty object, as express.json() has it.
  if (text.trim() === '') return {};
  // Strict, as express.json(): only an object or an array at the top.
  const first = text.trimStart()[0];
  let body: unknown;
  try {
    if (first !== '{' && first !== '[') throw new SyntaxError('not an object or an array');
    body = JSON.parse(text);
  } catch (error) {
    throw new ChatError('bad_request', 'The body is not valid JSON.', { cause: error });
  }
  assertCleanJson(body, 'the body');
  return body;
}
