import type { Conversation, InProgress } from '../domain/conversation.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { MessageId, SessionId } from '../domain/ids.ts';
import type { Message, Turn } from '../domain/message.ts';
import type { CancelSignal, Clock, EventBus, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import type { StoreWriter } from './storeWriter.ts';

export interface GenerationDeps {
  provider: ModelProvider;
  bus: EventBus;
  clock: Clock;
  writer: StoreWriter;
}

/** The reply a generation answers, and whether it picks up one a crashed predecessor left. */
export interface ReplyStart {
  readonly current: InProgress;
  readonly resumed: boolean;
}

/**
 * Starts the next reply of `conversation` (the next queued message moves
 * into generation, one write records it), or picks up the one a crashed
 * session actor left. At once, so its actor knows which reply runs before it
 * chooses the reply's abort (a head start's, headStart.ts).
 * Undefined when there is nothing to answer (the queue was emptied meanwhile).
 */
export function startReply(conversation: Conversation, deps: GenerationDeps): ReplyStart | undefined {
  const resumed = conversation.inProgress();
  if (resumed) return { current: resumed, resumed: true };
  const current = conversation.startNextReply(deps.clock.now());
  if (!current) return undefined;
  // One write as the reply starts (its prompt is answered, the reply exists), then flushes on the writer's interval.
  deps.writer.save(conversation, [...current.inputs, current.reply]);
  return { current, resumed: false };
}

/**
 * One generation, as a task the session actor owns (not an actor of its
 * own: creating, starting and stepping a provider actor per reply was a
 * measured quarter of XState's cost per reply). It streams the reply
 * `started`: from `headStart` when the model was asked while the message was
 * stored, else from a request it makes now. Chunks are appended to the
 * conversation and published on the bus here, not sent through the session
 * machine: a transition per token would cost more than the streaming
 * itself. It resolves when the reply is streamed and rejects when the
 * provider fails; once `signal` is aborted it publishes nothing more and
 * every provider stops its work (timers, the upstream HTTP request) at once.
 */
export async function runGeneration(
  conversation: Conversation,
  deps: GenerationDeps,
  signal: CancelSignal,
  started: ReplyStart | undefined,
  headStart?: AsyncIterable<ProviderChunk>,
): Promise<void> {
  if (!started) return;
  const { current } = started;
  // The model's name rides on the reply's first output, so a /v1 client can name it in its first frame.
  const reply: ReplyOut = { conversation, deps, signal, model: undefined, announced: false };
  let ended = false;
  const pieces = headStart ?? deps.provider.stream(new ReplyRequest(conversation, current.reply.id, conversation.promptTurn() ?? turnOf(current.prompt), current.options), signal);
  for await (const piece of pieces) {
    if (signal.aborted) return;
    if (piece.model !== undefined && reply.model === undefined) {
      reply.model = piece.model;
      conversation.recordModel(piece.model);
    }
    if (piece.usage) conversation.recordUsage(piece.usage, deps.clock.now());
    if (piece.finishReason) conversation.recordFinishReason(piece.finishReason);
    if (piece.toolCalls?.length) {
      // Text before the calls goes first; the `is_last` chunk stays the reply's last event.
      if (piece.text !== '') {
        if (conversation.mustReserveSeq && !(await reserved(reply))) return;
        publish(reply, piece.text, false, piece.logprobs);
      }
      conversation.appendToolCalls(piece.toolCalls, deps.clock.now());
      deps.bus.publish({ type: 'message.tool_calls', sessionId: conversation.sessionId, messageId: current.reply.id, toolCalls: piece.toolCalls, ...modelOnce(reply) });
      if (piece.last) {
        if (conversation.mustReserveSeq && !(await reserved(reply))) return;
        publish(reply, '', true);
      }
    } else if (piece.text !== '' || piece.last) {
      if (conversation.mustReserveSeq && !(await reserved(reply))) return;
      publish(reply, piece.text, piece.last, piece.logprobs);
    }
    if (piece.last) {
      ended = true;
      break;
    }
  }
  // A stream that just stops still owes its watchers an `is_last` chunk.
  if (ended || signal.aborted) return;
  if (conversation.mustReserveSeq && !(await reserved(reply))) return;
  publish(reply, '', true);
}

/**
 * What the model is asked for the reply `messageId` to `prompt`: the message
 * itself as the window holds it, not a copy, so the count its window made of
 * it is found again (settledTurnTokens). The history is copied only for a
 * provider that reads it (a model that takes history): copying a long
 * conversation for each reply was a measured hot spot. A class: as an
 * object literal with a getter it cost 3.5 µs per request in the burst.
 */
export class ReplyRequest implements GenerationRequest {
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  readonly prompt: string;
  readonly promptTurn: Turn;
  readonly options?: GenerationOptions;
  readonly model?: string;
  readonly #conversation: Conversation;

  constructor(conversation: Conversation, messageId: MessageId, prompt: Turn, options: GenerationOptions | undefined) {
    this.#conversation = conversation;
    this.sessionId = conversation.sessionId;
    this.messageId = messageId;
    this.prompt = prompt.content;
    this.promptTurn = prompt;
    if (options) this.options = options;
    const model = options?.model ?? conversation.model;
    if (model !== undefined) this.model = model;
  }

  get history(): readonly Message[] {
    return this.#conversation.context();
  }
}

/**
 * What a reply's output needs, in one object: its helpers are module
 * functions, not closures made per reply (tsx, how the server runs, also
 * names each closure it makes with a defineProperty: three here were ~0.9 KB
 * of a reply's allocations, bench/allocations.ts).
 */
interface ReplyOut {
  readonly conversation: Conversation;
  readonly deps: GenerationDeps;
  readonly signal: CancelSignal;
  model: string | undefined;
  announced: boolean;
}

/**
 * No chunk goes out numbered above the mark the store holds. The mark is
 * raised ahead by the writes the reply makes anyway; the stream waits for
 * the store only when it reaches the mark first (after activation, or
 * faster than the flush interval), never per chunk.
 */
async function reserved(reply: ReplyOut): Promise<boolean> {
  await reply.deps.writer.reserveSeqs(reply.conversation);
  return !reply.signal.aborted;
}

/** `{ model }` the first time the reply's model is known and not yet told, else nothing. */
function modelOnce(reply: ReplyOut): { model?: string } {
  if (reply.announced || reply.model === undefined) return {};
  reply.announced = true;
  return { model: reply.model };
}

function publish(reply: ReplyOut, text: string, last: boolean, logprobs?: ProviderChunk['logprobs']): void {
  const { conversation, deps } = reply;
  const { messageId, seq, text: kept } = conversation.appendChunk(text, deps.clock.now());
  // Built without spreads of empty objects: a chunk is the hottest object a reply makes.
  const chunk: { -readonly [K in keyof ChunkEvent]: ChunkEvent[K] } = { type: 'chunk', sessionId: conversation.sessionId, messageId, seq, chunk: kept, is_last: last };
  if (!reply.announced && reply.model !== undefined) {
    reply.announced = true;
    chunk.model = reply.model;
  }
  if (logprobs) chunk.logprobs = logprobs;
  deps.bus.publish(chunk);
  deps.writer.chunk(conversation, chunk);
}

function turnOf(message: Message): Turn {
  return {
    role: message.role,
    content: message.content,
    ...(message.parts ? { parts: message.parts } : {}),
    ...(message.toolCallId !== undefined ? { toolCallId: message.toolCallId } : {}),
  };
}
