import type { Conversation } from '../domain/conversation.ts';
import type { Clock, EventBus, GenerationRequest, ModelProvider } from '../domain/ports.ts';
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
  if (!resumed) deps.writer.save(conversation, [current.prompt, current.reply]);
  const request: GenerationRequest = {
    sessionId: conversation.sessionId,
    messageId: current.reply.id,
    prompt: current.prompt.content,
    // Copied only for a provider that reads it (a model that takes history):
    // copying a long conversation for each reply was a measured hot spot.
    get history() {
      return conversation.context();
    },
    ...(current.options ? { options: current.options } : {}),
  };
  // No chunk goes out numbered above the mark the store holds. The mark is
  // raised ahead by the writes the reply makes anyway; the stream waits for
  // the store only when it reaches the mark first (after activation, or
  // faster than the flush interval), never per chunk.
  const reserved = async (): Promise<boolean> => {
    await deps.writer.reserveSeqs(conversation);
    return !signal.aborted;
  };
  const publish = (text: string, last: boolean) => {
    const { messageId, seq, text: kept } = conversation.appendChunk(text, deps.clock.now());
    const chunk = { type: 'chunk', sessionId: conversation.sessionId, messageId, seq, chunk: kept, is_last: last } as const;
    deps.bus.publish(chunk);
    deps.writer.chunk(conversation, chunk);
  };
  let ended = false;
  for await (const piece of deps.provider.stream(request, signal)) {
    if (signal.aborted) return;
    if (piece.usage) conversation.recordUsage(piece.usage, deps.clock.now());
    if (conversation.mustReserveSeq && !(await reserved())) return;
    publish(piece.text, piece.last);
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
