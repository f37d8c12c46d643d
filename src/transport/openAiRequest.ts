import { z } from 'zod';
import type { UserInput } from '../domain/conversation.ts';
import type { JsonValue } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import type { GenerationOptions, UpstreamParams } from '../domain/generationOptions.ts';
import type { ContentPart, ToolCall, Turn } from '../domain/message.ts';

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Request fields that go to the model's server exactly as the client sent
 * them, once their shape is checked (a malformed one is our 400, not the
 * upstream's). Anything not listed here, and not read by llm-chat itself,
 * is ignored.
 */
const PASSTHROUGH = {
  response_format: z.union([
    z.looseObject({ type: z.literal('text') }),
    z.looseObject({ type: z.literal('json_object') }),
    z.looseObject({
      type: z.literal('json_schema'),
      json_schema: z.looseObject({ name: z.string().regex(FUNCTION_NAME), schema: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullish() }),
    }),
  ]),
  stop: z.union([z.string(), z.array(z.string()).max(4)]),
  seed: z.number().int(),
  top_p: z.number().min(0).max(1),
  presence_penalty: z.number().min(-2).max(2),
  frequency_penalty: z.number().min(-2).max(2),
  logit_bias: z.record(z.string().regex(/^\d+$/), z.number().min(-100).max(100)),
  logprobs: z.boolean(),
  top_logprobs: z.number().int().min(0).max(20),
  user: z.string(),
  metadata: z.record(z.string().max(64), z.string().max(512)).refine((value) => Object.keys(value).length <= 16, 'at most 16 keys'),
  max_completion_tokens: z.number().int().positive(),
  tools: z
    .array(
      z.union([
        z.looseObject({
          type: z.literal('function'),
          function: z.looseObject({ name: z.string().regex(FUNCTION_NAME), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullish() }),
        }),
        z.looseObject({ type: z.literal('custom'), custom: z.looseObject({ name: z.string().regex(FUNCTION_NAME) }) }),
      ]),
    )
    .max(128),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })]),
  parallel_tool_calls: z.boolean(),
  reasoning_effort: z.string(),
  verbosity: z.string(),
  service_tier: z.string(),
  prompt_cache_key: z.string(),
  safety_identifier: z.string(),
  store: z.boolean(),
  prediction: z.looseObject({ type: z.string() }),
} as const;

export const PASSTHROUGH_FIELDS = Object.keys(PASSTHROUGH) as (keyof typeof PASSTHROUGH)[];

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const httpOrDataUrl = z.string().refine((url) => /^(https?:\/\/|data:)/i.test(url), 'an http(s):// or data: URL');
const PARTS = {
  text: textPart,
  image_url: z.looseObject({ type: z.literal('image_url'), image_url: z.looseObject({ url: httpOrDataUrl, detail: z.enum(['auto', 'low', 'high']).optional() }) }),
  input_audio: z.looseObject({ type: z.literal('input_audio'), input_audio: z.looseObject({ data: z.string().min(1), format: z.string().min(1) }) }),
  file: z.looseObject({
    type: z.literal('file'),
    file: z.looseObject({ file_data: z.string().optional(), file_id: z.string().optional(), filename: z.string().optional() }).refine((file) => file.file_data !== undefined || file.file_id !== undefined, 'file_data or file_id'),
  }),
  refusal: z.looseObject({ type: z.literal('refusal'), refusal: z.string() }),
} as const;
type PartType = keyof typeof PARTS;

/** Which part types each role may carry (OpenAI's own rules). */
const PARTS_BY_ROLE: Record<string, readonly PartType[]> = {
  system: ['text'],
  developer: ['text'],
  user: ['text', 'image_url', 'input_audio', 'file'],
  assistant: ['text', 'refusal'],
  tool: ['text'],
};

const content = z.union([z.string(), z.array(z.looseObject({ type: z.string() })), z.null()]);
const toolCall = z.object({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});
const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: content.optional(),
  tool_calls: z.array(toolCall).nullish(),
  tool_call_id: z.string().optional(),
  function_call: z.unknown().optional(),
});

const chatRequestSchema = z.looseObject({
  model: z.string().optional(),
  messages: z.array(message).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  n: z.number().int().nullish(),
  functions: z.unknown().optional(),
  function_call: z.unknown().optional(),
});

type RawMessage = z.infer<typeof message>;

export interface ChatRequest {
  /** The model the client named (a configured model's name); absent: the session's or the default. */
  model: string | undefined;
  /** Turns before the input (system messages taken out). */
  history: Turn[];
  /** What this request asks: the last user message, and the tool results before it. */
  input: UserInput;
  options: GenerationOptions;
  stream: boolean;
  includeUsage: boolean;
}

function invalid(where: string, why: string): ChatError {
  return new ChatError('bad_request', `Invalid chat completion request at ${where}: ${why}.`);
}

function issueOf(error: z.ZodError, prefix: string): ChatError {
  const issue = error.issues[0];
  const path = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
  return invalid(path || 'body', issue?.message ?? 'malformed');
}

/** The message's content as text and, when it came as parts, the parts as sent (checked against the role's allowed types). */
function contentOf(raw: RawMessage, index: number): { text: string; parts?: ContentPart[] } {
  const value = raw.content;
  if (value === null || value === undefined) return { text: '' };
  if (typeof value === 'string') return { text: value };
  const allowed = PARTS_BY_ROLE[raw.role] ?? [];
  const texts: string[] = [];
  value.forEach((part, partIndex) => {
    const where = `messages.${index}.content.${partIndex}`;
    if (!(part.type in PARTS) || !allowed.includes(part.type as PartType)) {
      throw new ChatError(
        'bad_request',
        `Content parts of type "${part.type}" are not supported in ${raw.role} messages (${where}); supported: ${allowed.join(', ')}.`,
      );
    }
    const checked = PARTS[part.type as PartType].safeParse(part);
    if (!checked.success) throw issueOf(checked.error, where);
    if (part.type === 'text') texts.push(String(part['text']));
  });
  return { text: texts.join(''), parts: value as ContentPart[] };
}

function upstreamParams(body: Record<string, unknown>): UpstreamParams {
  const params: Record<string, JsonValue> = {};
  for (const field of PASSTHROUGH_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    const checked = PASSTHROUGH[field].safeParse(value);
    if (!checked.success) throw issueOf(checked.error, field);
    // Forwarded as sent (the check may have normalised nothing, but the client's bytes are the contract).
    params[field] = value as JsonValue;
  }
  return params;
}

/** Validates a Chat Completions request body; throws ChatError `bad_request` with a message that names the field. */
export function parseChatRequest(body: unknown): ChatRequest {
  const parsed = chatRequestSchema.safeParse(body);
  if (!parsed.success) throw issueOf(parsed.error, '');
  const data = parsed.data;
  if (data.n !== undefined && data.n !== null && data.n !== 1) throw new ChatError('bad_request', 'Only n = 1 is supported: a session streams one reply at a time.');
  if (data.functions !== undefined || data.function_call !== undefined) {
    throw new ChatError('bad_request', '"functions" and "function_call" are deprecated and not supported; use "tools" and "tool_choice".');
  }

  const system: string[] = [];
  const turns: Turn[] = [];
  data.messages.forEach((raw, index) => {
    if (raw.role === 'function' || raw.function_call !== undefined) {
      throw new ChatError('bad_request', `Function messages are deprecated and not supported (messages.${index}); use tool calls and "tool" messages.`);
    }
    const { text, parts } = contentOf(raw, index);
    if (raw.role === 'system' || raw.role === 'developer') {
      system.push(text);
      return;
    }
    if (raw.role === 'tool') {
      if (!raw.tool_call_id) throw invalid(`messages.${index}.tool_call_id`, 'a tool message needs the id of the call it answers');
      turns.push({ role: 'tool', content: text, toolCallId: raw.tool_call_id, ...(parts ? { parts } : {}) });
      return;
    }
    const toolCalls: ToolCall[] | undefined = raw.role === 'assistant' && raw.tool_calls?.length ? raw.tool_calls : undefined;
    turns.push({ role: raw.role, content: text, ...(parts ? { parts } : {}), ...(toolCalls ? { toolCalls } : {}) });
  });
  const input = splitInput(turns);

  const options: GenerationOptions = {
    ...(system.length > 0 ? { system: system.join('\n\n') } : {}),
    ...(data.temperature !== undefined && data.temperature !== null ? { temperature: data.temperature } : {}),
    ...(data.max_tokens !== undefined && data.max_tokens !== null ? { maxTokens: data.max_tokens } : {}),
    ...(data.model !== undefined ? { model: data.model } : {}),
    upstream: upstreamParams(data),
  };
  return {
    model: data.model,
    history: turns,
    input,
    options,
    stream: data.stream === true,
    includeUsage: data.stream_options?.include_usage === true,
  };
}

/**
 * Takes the request's input off the end of `turns`: the last user message and
 * the tool results just before it, or only tool results (the next step of an
 * agent loop). What is left is the history.
 */
function splitInput(turns: Turn[]): UserInput {
  const last = turns.at(-1);
  if (!last || last.role === 'assistant') throw new ChatError('bad_request', 'The last message must be a user message or a tool result.');
  const user = last.role === 'user' ? turns.pop() : undefined;
  const results: Turn[] = [];
  while (turns.at(-1)?.role === 'tool') results.unshift(turns.pop()!);
  if (user && user.content.trim() === '' && !user.parts?.some((part) => part.type !== 'text')) {
    throw new ChatError('bad_request', 'The last user message must not be empty.');
  }
  return {
    text: user?.content ?? '',
    ...(user?.parts ? { parts: user.parts } : {}),
    ...(results.length > 0
      ? { toolResults: results.map((turn) => ({ toolCallId: turn.toolCallId ?? '', content: turn.content, ...(turn.parts ? { parts: turn.parts } : {}) })) }
      : {}),
  };
}
