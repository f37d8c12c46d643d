/**
 * Settings for one reply that override the provider's configured ones, e.g.
 * from an OpenAI-style request on `/v1/chat/completions`.
 */
export interface GenerationOptions {
  /** Replaces the configured system prompt for this reply. */
  readonly system?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
}
