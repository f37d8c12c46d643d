/**
 * Identifiers. A session id is a bearer capability (knowing it grants access
 * to the session's stream), so it must carry at least 128 random bits: we use
 * 16 random bytes written as 22 base64url characters.
 */
export type SessionId = string;
export type MessageId = string;

const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** True when `value` has the shape of a session id (says nothing of existence). */
export function isSessionId(value: unknown): value is SessionId {
  return typeof value === 'string' && SESSION_ID_PATTERN.test(value);
}

/** Port: where new ids come from (random in production, sequential in tests). */
export interface IdGenerator {
  sessionId(): SessionId;
  messageId(): MessageId;
}
