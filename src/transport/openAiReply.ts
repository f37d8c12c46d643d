import type { ServerResponse } from 'node:http';
import type { JsonValue } from '../domain/conversationRecord.ts';
import type { ToolCall, Usage } from '../domain/message.ts';
import type { ToolCallDelta } from '../domain/toolCalls.ts';
import type { BufferBudget, BufferedStream } from './bufferBudget.ts';
import type { ReplyFollower } from './followReply.ts';
import { openAiErrorFor } from './openAiErrors.ts';
import { httpErrorHeaders } from './wireErrors.ts';
import { sendJson } from './jsonResponse.ts';

/** What every frame or body of one reply names. */
export interface ReplyIds {
  id: string;
  created: number;
  /** The model asked for; replaced by the one that answered as soon as it is known. */
  model: string;
}

const usageJson = (usage: Usage) => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens,
});

/** Tool-call fragments in OpenAI's `delta.tool_calls` shape. */
function toolCallDeltasJson(deltas: readonly ToolCallDelta[]) {
  return deltas.map((delta) => ({
    index: delta.index,
    ...(delta.id !== undefined ? { id: delta.id, type: 'function' } : {}),
    function: { ...(delta.name !== undefined ? { name: delta.name } : {}), ...(delta.arguments !== undefined ? { arguments: delta.arguments } : {}) },
  }));
}

function sendError(response: ServerResponse, code: Parameters<typeof openAiErrorFor>[0], message: string, retryAfterMs: number | undefined) {
  const { status, body } = openAiErrorFor(code, message);
  sendJson(response, status, body, httpErrorHeaders({ code, message, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }));
}

/** `stream: false`: one `chat.completion` body once the reply ends. */
export async function answerReply(response: ServerResponse, follower: ReplyFollower, reply: ReplyIds): Promise<void> {
  let text = '';
  const logprobs: JsonValue[] = [];
  let asked = false;
  for await (const step of follower) {
    if ('model' in step && step.model !== undefined) reply.model = step.model;
    if (step.type === 'text') {
      text += step.text;
      if (step.logprobs) {
        asked = true;
        logprobs.push(...step.logprobs);
      }
    } else if (step.type === 'tool_calls') continue;
    else if (step.type === 'failed') {
      if (!response.writableEnded) sendError(response, step.code, step.message, step.retryAfterMs);
      return;
    } else {
      if (response.writableEnded) return;
      const toolCalls: readonly ToolCall[] = step.toolCalls ?? [];
      sendJson(response, 200, {
        id: reply.id,
        object: 'chat.completion',
        created: reply.created,
        model: reply.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              // OpenAI's own: no text beside tool calls is `null`, not "".
              content: text === '' && toolCalls.length > 0 ? null : text,
              refusal: null,
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            logprobs: asked ? { content: logprobs, refusal: null } : null,
            finish_reason: step.finishReason,
          },
        ],
        ...(step.usage ? { usage: usageJson(step.usage) } : {}),
      });
      return;
    }
  }
}

/** What `streamReply` is told besides the reply. */
export interface StreamReplyOptions {
  includeUsage: boolean;
  heartbeatMs: number;
  maxBufferedBytes: number;
  budget: BufferBudget;
  onSlowConsumer: (why: string) => void;
}

/**
 * `stream: true`: data-only SSE frames (never an `event:` line: the official
 * SDK would then yield raw events instead of chunks), ending in `data: [DONE]`.
 * Headers wait for the reply's first step, so a failure before any text still
 * gets its proper HTTP status; a reply that keeps the client waiting gets the
 * headers and comment lines after `heartbeatMs`.
 */
export async function streamReply(response: ServerResponse, follower: ReplyFollower, reply: ReplyIds, options: StreamReplyOptions): Promise<void> {
  const out = new SseReply(response, reply, options);
  const heartbeat = setInterval(beat, options.heartbeatMs, out);
  heartbeat.unref();
  try {
    for await (const step of follower) {
      if (step.type === 'failed' && !response.headersSent) {
        sendError(response, step.code, step.message, step.retryAfterMs);
        return;
      }
      // The model is known from the first output on (a fallback may have answered); a
      // heartbeat may have opened the stream before, under the name asked for.
      if ('model' in step && step.model !== undefined) reply.model = step.model;
      out.open();
      if (step.type === 'text') {
        if (step.text !== '' || step.logprobs) out.write(out.delta({ content: step.text }, null, step.logprobs));
      } else if (step.type === 'tool_calls') out.write(out.delta({ tool_calls: toolCallDeltasJson(step.toolCalls) }));
      else if (step.type === 'completed') {
        out.write(out.delta({}, step.finishReason));
        if (options.includeUsage && step.usage) out.write(out.frame([], `,"usage":${JSON.stringify(usageJson(step.usage))}`));
        out.write('data: [DONE]\n\n');
      } else {
        // The official SDK raises an APIError for a payload carrying `error`.
        out.write(`data: ${JSON.stringify(openAiErrorFor(step.code, step.message).body)}\n\n`);
      }
    }
  } finally {
    clearInterval(heartbeat);
    out.end();
  }
}

/** A waiting reply's heartbeat: the headers if not yet sent, and a comment line. */
function beat(out: SseReply): void {
  out.open();
  out.write(': waiting\n\n');
}

/** The frames of one turn go to the socket together, at the end of the turn. */
function flushTurn(out: SseReply): void {
  out.flush();
}

/**
 * One streamed reply's output. An object with methods rather than closures
 * made per request: tsx, which runs the server, names each closure it makes
 * (a defineProperty, ~0.3 µs each here), and the nine this function made
 * were ~1.2% of the server's CPU in the streamed /v1 bench (bench/gateway.ts,
 * --cpu-prof: `__name` and `set natives`, its defineProperty).
 * It is also the stream the node's budget of unsent bytes watches.
 */
class SseReply implements BufferedStream {
  readonly #response: ServerResponse;
  readonly #reply: ReplyIds;
  readonly #options: StreamReplyOptions;
  readonly #withUsage: string;
  // The fields every frame repeats are serialised once per reply (again only if the model's name changes), the same bytes as one JSON.stringify of the whole frame.
  #head = '';
  #headModel: string | undefined;
  // The frames of one turn (a fast upstream's whole read: 20 deltas and the end) are joined
  // and go to the response in one write at the end of the turn. Each `write` of a chunked
  // response is its own chunk (size line, data, CRLF: three buffers for the socket's writev),
  // and 22 corked writes cost a server 52 µs more per response than one write of the
  // same bytes (132 against 81 µs of CPU per request, node:http alone on this machine).
  #unsent = '';
  #done = false;

  constructor(response: ServerResponse, reply: ReplyIds, options: StreamReplyOptions) {
    this.#response = response;
    this.#reply = reply;
    this.#options = options;
    this.#withUsage = options.includeUsage ? ',"usage":null' : '';
  }

  frame(choices: unknown[], extra: string = this.#withUsage): string {
    const { model } = this.#reply;
    if (this.#headModel !== model) {
      this.#headModel = model;
      this.#head = `data: {"id":${JSON.stringify(this.#reply.id)},"object":"chat.completion.chunk","created":${JSON.stringify(this.#reply.created)},"model":${JSON.stringify(model)},"choices":`;
    }
    return `${this.#head}${JSON.stringify(choices)}${extra}}\n\n`;
  }

  delta(content: Record<string, unknown>, finishReason: string | null = null, logprobs: readonly JsonValue[] | undefined = undefined): string {
    return this.frame([{ index: 0, delta: content, logprobs: logprobs ? { content: logprobs, refusal: null } : null, finish_reason: finishReason }]);
  }

  open(): void {
    const response = this.#response;
    if (response.headersSent) return;
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    this.write(this.delta({ role: 'assistant', content: '' }));
  }

  write(text: string): void {
    const response = this.#response;
    if (response.writableEnded || response.destroyed) return;
    if (this.#unsent === '') process.nextTick(flushTurn, this);
    this.#unsent += text;
  }

  flush(): void {
    if (this.#unsent === '') return;
    const text = this.#unsent;
    this.#unsent = '';
    const response = this.#response;
    if (response.writableEnded || response.destroyed) return;
    response.write(text);
    // What is still unsent once this turn's frames went to the socket is real backlog: the budget hears that.
    if (response.writableLength > this.#options.maxBufferedBytes) this.#cutOff('closing slow /v1 stream consumer');
    else if (!this.#done) this.#options.budget.note(this, response.writableLength);
  }

  /** The reply is over: the last frames and the chunked end go out together (end() corks: one write more would be one system call more). */
  end(): void {
    this.#done = true;
    this.#options.budget.forget(this);
    const last = this.#unsent;
    this.#unsent = '';
    const response = this.#response;
    if (!response.writableEnded) response.end(response.destroyed ? undefined : last);
  }

  bufferedBytes(): number {
    return this.#response.writableLength;
  }

  shed(): void {
    this.#cutOff('closing slow /v1 stream consumer: node buffer budget exceeded');
  }

  // A reader that stopped reading is cut off, as on WebSocket and SSE (the follower then stops): past
  // its own cap, or when the node-wide budget of unsent bytes picks it among the heaviest.
  #cutOff(why: string): void {
    if (this.#response.destroyed) return;
    this.#options.onSlowConsumer(why);
    this.#response.destroy();
  }
}
