import { z } from 'zod';
import { ChatError } from '../domain/errors.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { Turn } from '../domain/message.ts';

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const content = z.union([z.string(), z.array(z.union([textPart, z.object({ type: z.string() })])), z.null()]);

const chatRequestSchema = z.object({
  model: z.string().optional(),
  messages: z
    .array(z.object({ role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']), content: content.optional() }))
    .min(1),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  n: z.number().int().nullish(),
  tools: z.array(z.unknown()).nullish(),
});

export interface ChatRequest {
  /** The model the client named; llm-chat answers with the model it serves. */
  model: string | undefined;
  /** Turns before the prompt (system messages taken out). */
  history: Turn[];
  /** The last user message: what this request asks. */
  prompt: string;
  options: GenerationOptions;
  stream: boolean;
  includeUsage: boolean;
}

function textOf(value: z.infer<typeof content> | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return value
    .map((part) => {
      if (part.type !== 'text' || !('text' in part)) throw new ChatError('bad_request', `Content parts of type "${part.type}" are not supported; send text.`);
      return part.text;
    })
    .join('');
}

/** Validates a Chat Completions request body; throws ChatError `bad_request` with a useful message. */
export function parseChatRequest(body: unknown): ChatRequest {
  const parsed = chatRequestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new ChatError('bad_request', `Invalid chat completion request${where}: ${issue?.message ?? 'malformed'}.`);
  }
  const data = parsed.data;
  if (data.n !== undefined && data.n !== null && data.n !== 1) throw new ChatError('bad_request', 'Only n = 1 is supported.');
  if (data.tools && data.tools.length > 0) throw new ChatError('bad_request', 'Tools are not supported.');

  const system: string[] = [];
  const turns: Turn[] = [];
  for (const message of data.messages) {
    const text = textOf(message.content);
    if (message.role === 'system' || message.role === 'developer') system.push(text);
    else if (message.role === 'user' || message.role === 'assistant') turns.push({ role: message.role, content: text });
    else throw new ChatError('bad_request', `Messages with role "${message.role}" are not supported.`);
  }
  const last = turns.pop();
  if (!last || last.role !== 'user') throw new ChatError('bad_request', 'The last message must be a user message.');
  if (last.content.trim() === '') throw new ChatError('bad_request', 'The last user message must not be empty.');

  const maxTokens = data.max_completion_tokens ?? data.max_tokens ?? undefined;
  const options: GenerationOptions = {
    ...(system.length > 0 ? { system: system.join('\n\n') } : {}),
    ...(data.temperature !== undefined && data.temperature !== null ? { temperature: data.temperature } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
  };
  return {
    model: data.model,
    history: turns,
    prompt: last.content,
    options,
    stream: data.stream === true,
    includeUsage: data.stream_options?.include_usage === true,
  };
}
