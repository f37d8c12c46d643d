import type { JsonValue } from './conversationRecord.ts';

/**
 * Request fields llm-chat hands to an OpenAI-compatible model unchanged
 * (`response_format`, `tools`, `seed`, …; the list is the transport's, see
 * transport/openAiRequest.ts). The domain does not read them.
 */
export type UpstreamParams = { readonly [field: string]: JsonValue };

/**
 * Settings for one reply that override the provider's configured ones, e.g.
 * from an OpenAI-style request on `/v1/chat/completions`.
 */
export interface GenerationOptions {
  /** Replaces the configured system prompt for this reply. */
  readonly system?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** The model (by its configured name) to answer with; absent: the session's, else the default. */
  readonly model?: string;
  /** Passed through to the model's server as they are. */
  readonly upstream?: UpstreamParams;
}
