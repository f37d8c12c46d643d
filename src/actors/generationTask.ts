import type { Conversation } from '../domain/conversation.ts';
import type { ChunkEvent } from '../domain/events.ts';
import type { Message, Turn } from '../domain/message.ts';
import type { Clock, EventBus, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import type { StoreWriter } from './storeWriter.ts';

export interface GenerationDeps {
  provider: ModelProvider;
  bus: EventBus;
  clock: Clock;
  writer: StoreWriter;
}

/**
 * One generation, as a task the session actor owns (not an actor of its
 * own: creating, starting and stepping a provider actor per reply was a
 * measured quarter of XState's cost per reply). It answers the next queued
 * message of `conversation`; chunks are appended to the conversation and
 * published on the bus here, not sent through the session machine: a
 * transition per token would cost more than the streaming itself. It
 * resolves when the reply is streamed and rejects when the provider fails;
 * once `signal` is aborted it publishes nothing more and every provider
 * stops its work (timers, the upstream HTTP request) at once.
 */
export async function runGeneration(conversation: Conversation, deps: GenerationDeps, signal: AbortSignal): Promise<void> {
  // A restarted actor picks up the reply its predecessor left, if any.
  const resumed = conversation.inProgress();
  const current = resumed ?? conversation.startNextReply(deps.clock.now());
  if (!current) return; // the queue was emptied meanwhile
  // One write as the reply starts (its prompt is answered, the reply exists), then flushes on the writer's interval.
  if (!resumed) deps.writer.save(conversation, [...current.inputs, current.reply]);
  const prompt = current.prompt;
  const requested = current.options?.model ?? conversation.model;
  const request: GenerationRequest = {
    sessionId: conversation.sessionId,
    messageId: current.reply.id,
    prompt: prompt.content,
    // The message itself, not a copy: the count its window made of it is found again (settledTurnTokens).
    promptTurn: conversation.promptTurn() ?? turnOf(prompt),
    // Copied only for a provider that reads it (a model that takes history):
    // copying a long conversation for each reply was a measured hot spot.
    get history() {
      return conversation.context();
    },
    ...(current.options ? { options: current.options } : {}),
    ...(requested !== undefined ? { model: requested } : {}),
  };
  // No chunk goes out numbered above the mark the store holds. The mark is
  // raised ahead by the writes the reply makes anyway; the stream waits for
  // the store only when it reaches the mark first (after activation, or
  // faster than the flush interval), never per chunk.
  const reserved = async (): Promise<boolean> => {
    await deps.writer.reserveSeqs(conversation);
    return !signal.aborted;
  };
  // The model's name rides on the reply's first output, so a /v1 client can name it in its first frame.
  let model: string | undefined;
  let announced = false;
  const modelOnce = () => {
    if (announced || model === undefined) return {};
    announced = true;
    return { model };
  };
  const publish = (text: string, last: boolean, logprobs?: ProviderChunk['logprobs']) => {
    const { messageId, seq, text: kept } = conversation.appendChunk(text, deps.clock.now());
    // Built without spreads of empty objects: a chunk is the hottest object a reply makes.
    const chunk: { -readonly [K in keyof ChunkEvent]: ChunkEvent[K] } = { type: 'chunk', sessionId: conversation.sessionId, messageId, seq, chunk: kept, is_last: last };
    if (!announced && model !== undefined) {
      announced = true;
      chunk.model = model;
    }
    if (logprobs) chunk.logprobs = logprobs;
    deps.bus.publish(chunk);
    deps.writer.chunk(conversation, chunk);
  };
  let ended = false;
  for await (const piece of deps.provider.stream(request, signal)) {
    if (signal.aborted) return;
    if (piece.model !== undefined && model === undefined) {
      model = piece.model;
      conversation.recordModel(model);
    }
    if (piece.usage) conversation.recordUsage(piece.usage, deps.clock.now());
    if (piece.finishReason) conversation.recordFinishReason(piece.finishReason);
    if (piece.toolCalls?.length) {
      // Text before the calls goes first; the `is_last` chunk stays the reply's last event.
      if (piece.text !== '') {
        if (conversation.mustReserveSeq && !(await reserved())) return;
        publish(piece.text, false, piece.logprobs);
      }
      conversation.appendToolCalls(piece.toolCalls, deps.clock.now());
      deps.bus.publish({ type: 'message.tool_calls', sessionId: conversation.sessionId, messageId: current.reply.id, toolCalls: piece.toolCalls, ...modelOnce() });
      if (piece.last) {
        if (conversation.mustReserveSeq && !(await reserved())) return;
        publish('', true);
      }
    } else if (piece.text !== '' || piece.last) {
      if (conversation.mustReserveSeq && !(await reserved())) return;
      publish(piece.text, piece.last, piece.logprobs);
    }
    if (piece.last) {
      ended = true;
      break;
    }
  }
  // A stream that just stops still owes its watchers an `is_last` chunk.
  if (ended || signal.aborted) return;
  if (conversation.mustReserveSeq && !(await reserved())) return;
  publish('', true);
}

function turnOf(message: Message): Turn {
  return {
    role: message.role,
    content: message.content,
    ...(message.parts ? { parts: message.parts } : {}),
    ...(message.toolCallId !== undefined ? { toolCallId: message.toolCallId } : {}),
  };
}
