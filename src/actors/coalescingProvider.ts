import type { CancelSignal, Clock, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { joinToolCallDeltas } from '../domain/toolCalls.ts';
import type { ToolCallDelta } from '../domain/toolCalls.ts';
import { TIMED_OUT } from './clockTimers.ts';

export interface CoalescingOptions {
  /** Longest time text waits in the buffer before it goes out (default 16 ms). */
  flushMs?: number;
  /** A buffer this long goes out at once (default 256 characters). */
  maxChars?: number;
  clock: Clock;
}

/**
 * Joins a model's token deltas into fewer, larger chunks: a buffer goes out
 * when it is `flushMs` old or `maxChars` long, so a fast model does not cost
 * one frame (and one bus event) per token, and a slow one is not held back
 * by more than `flushMs`. Tool-call fragments are joined the same way (a
 * call's arguments arrive a few characters at a time). The final piece
 * carries `last`, the usage and the finish reason.
 */
export function coalescingProvider(inner: ModelProvider, options: CoalescingOptions): ModelProvider {
  const flushMs = options.flushMs ?? 16;
  const maxChars = options.maxChars ?? 256;
  const { clock } = options;

  return {
    name: inner.name,
    async *stream(request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk> {
      const iterator = inner.stream(request, signal)[Symbol.asyncIterator]();
      let buffer = '';
      let calls: ToolCallDelta[] = [];
      let callChars = 0;
      let logprobs: NonNullable<ProviderChunk['logprobs']>[number][] | undefined;
      let pending: Promise<IteratorResult<ProviderChunk>> | undefined;
      let finished = false;
      // One flush timer per outgoing chunk (armed when the buffer starts
      // filling), not one per incoming token.
      let flushTimer: unknown;
      let flushDue: Promise<typeof TIMED_OUT> | undefined;
      let due = false;
      const startBuffer = () => {
        due = flushMs <= 0;
        if (due) return;
        flushDue = new Promise((resolve) => {
          flushTimer = clock.setTimeout(() => {
            flushTimer = undefined;
            due = true;
            resolve(TIMED_OUT);
          }, flushMs);
        });
      };
      const empty = () => buffer === '' && calls.length === 0;
      // The buffered text and tool-call fragments as one piece (without `last`).
      const takeBuffer = (): ProviderChunk => {
        if (flushTimer !== undefined) clock.clearTimeout(flushTimer);
        flushTimer = undefined;
        flushDue = undefined;
        const piece: ProviderChunk = {
          text: buffer,
          last: false,
          ...(calls.length > 0 ? { toolCalls: joinToolCallDeltas(calls) } : {}),
          ...(logprobs ? { logprobs } : {}),
        };
        buffer = '';
        calls = [];
        callChars = 0;
        logprobs = undefined;
        return piece;
      };
      try {
        for (;;) {
          pending ??= iterator.next();
          let result: IteratorResult<ProviderChunk> | typeof TIMED_OUT;
          if (empty()) result = await pending;
          else if (due || !flushDue) result = TIMED_OUT;
          else {
            const current = pending;
            const timer = flushDue;
            result = await new Promise((resolve, reject) => {
              current.then(resolve, reject);
              void timer.then(resolve);
            });
          }
          if (result === TIMED_OUT) {
            yield takeBuffer();
            continue;
          }
          pending = undefined;
          if (result.done) {
            finished = true;
            const rest = takeBuffer();
            if (!signal.aborted) yield { ...rest, last: true };
            return;
          }
          const piece = result.value;
          const fresh = piece.text !== '' || (piece.toolCalls?.length ?? 0) > 0;
          if (empty() && fresh && !piece.last) startBuffer();
          buffer += piece.text;
          if (piece.logprobs) (logprobs ??= []).push(...piece.logprobs);
          if (piece.toolCalls) {
            calls.push(...piece.toolCalls);
            for (const delta of piece.toolCalls) callChars += delta.arguments?.length ?? 0;
          }
          if (piece.last) {
            finished = true;
            const { text, toolCalls, logprobs: joined } = takeBuffer();
            yield {
              ...piece,
              text,
              ...(toolCalls ? { toolCalls } : {}),
              ...(joined ? { logprobs: joined } : {}),
            };
            return;
          }
          if (buffer.length + callChars >= maxChars) yield takeBuffer();
        }
      } catch (error) {
        // Text that arrived before the failure is the user's: it goes out first.
        const rest = takeBuffer();
        if (!(rest.text === '' && !rest.toolCalls) && !signal.aborted) yield rest;
        throw error;
      } finally {
        if (flushTimer !== undefined) clock.clearTimeout(flushTimer);
        if (!finished) iterator.return?.()?.catch(() => {});
      }
    },
  };
}
