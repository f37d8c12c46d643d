import { randomUUID } from 'node:crypto';
import { randomTokens } from './randomTokens.ts';
import type { IdGenerator } from '../domain/ids.ts';

/** 128 random bits per session id, as 22 base64url characters. */
const sessionId = randomTokens(16);

export const randomIds: IdGenerator = {
  sessionId,
  messageId: () => randomUUID(),
};
