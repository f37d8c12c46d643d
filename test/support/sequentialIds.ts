import type { IdGenerator } from '../../src/domain/ids.ts';

/** Deterministic ids: session ids keep the real 22-character shape. */
export function sequentialIds(): IdGenerator {
  let sessions = 0;
  let messages = 0;
  return {
    sessionId: () => `session${String(++sessions).padStart(15, '0')}`,
    messageId: () => `m${++messages}`,
  };
}
