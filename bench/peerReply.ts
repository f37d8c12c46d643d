import { randomBytes, randomUUID } from 'node:crypto';

/** What a peer server (bare ws, Socket.IO) is configured with: the simulated model's schedule. */
export interface PeerOptions {
  simChunks?: number;
  simIntervalMs?: number;
}

export type PeerFrame = Record<string, unknown> & { type: string };

/** A fresh session id, shaped like llm-chat's (22 base64url characters). */
export const peerSessionId = (): string => randomBytes(16).toString('base64url');

/**
 * The frames llm-chat sends for one reply of its simulated model, on the same
 * schedule, for the peers we measure it against: `accepted`, then chunk k
 * after k sequential waits of `simIntervalMs` (at 0 ms a yield to the event
 * loop), then `completed` with the last chunk. Same fields, same values, so
 * every server writes the same bytes per reply and only the machinery differs.
 * `send` answers false once the connection is gone, which ends the reply.
 */
export function streamPeerReply(
  options: PeerOptions,
  session: { sessionId: string; nextSeq: () => number },
  text: string,
  send: (frame: PeerFrame) => boolean,
): void {
  const chunks = options.simChunks ?? 5;
  const intervalMs = options.simIntervalMs ?? 400;
  const { sessionId } = session;
  const messageId = randomUUID();
  const wait = (then: () => void) => (intervalMs > 0 ? setTimeout(then, intervalMs) : setImmediate(then));
  if (!send({ type: 'accepted', sessionId, messageId, userMessageId: randomUUID(), text, position: 0 })) return;
  let index = 0;
  const next = () => {
    index += 1;
    const last = index === chunks;
    if (!send({ type: 'chunk', sessionId, messageId, seq: session.nextSeq(), chunk: `chunk ${index}: ${text}`, is_last: last })) return;
    if (last) send({ type: 'completed', sessionId, messageId });
    else wait(next);
  };
  wait(next);
}
