import { randomBytes, randomUUID } from 'node:crypto';
import type { IdGenerator } from '../domain/ids.ts';

/** 128 random bits per session id, as 22 base64url characters. */
export const randomIds: IdGenerator = {
  sessionId: () => randomBytes(16).toString('base64url'),
  messageId: () => randomUUID(),
};
