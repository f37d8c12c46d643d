import type { SessionId } from '../domain/ids.ts';

/**
 * Every Redis key and channel llm-chat uses. A session's keys share the hash
 * tag `{s:ID}` and a node's `{n:ID}`, so the multi-key scripts stay on one
 * slot should Redis be a cluster. README "Running many nodes" lists them with
 * what they hold and how long.
 */
export const redisKeys = {
  /** Shard channel: the session's events, `origin|json`. */
  events: (sessionId: SessionId) => `llm-chat:{s:${sessionId}}:events`,
  /** Stream: the session's recent chunks, entry id `seq-0`, capped and expiring after idle. */
  log: (sessionId: SessionId) => `llm-chat:{s:${sessionId}}:log`,
  /** String `node token`, PX the lease: who runs the session's actor. */
  lease: (sessionId: SessionId) => `llm-chat:{s:${sessionId}}:lease`,
  /** Counter: the session's last fencing token. */
  fence: (sessionId: SessionId) => `llm-chat:{s:${sessionId}}:fence`,
  /** Shard channel: commands routed to a node, and their replies. */
  rpc: (nodeId: string) => `llm-chat:{n:${nodeId}}:rpc`,
  /** String (JSON: counts), PX the lease: the node is alive. */
  node: (nodeId: string) => `llm-chat:{n:${nodeId}}:alive`,
  /** Set: sessions with a reply in flight or queued on the node (taken over if it dies). */
  working: (nodeId: string) => `llm-chat:{n:${nodeId}}:working`,
  /** String, PX: one survivor takes over a dead node's sessions. */
  takeover: (nodeId: string) => `llm-chat:{n:${nodeId}}:takeover`,
  /** Set: ids of the nodes that registered (a dead one is removed once taken over). */
  nodes: 'llm-chat:nodes',
  /** String, PX: the identity of the store every node must share. */
  store: 'llm-chat:store',
  /** Prefix of the rate-limit counters (rate-limiter-flexible). */
  limits: 'llm-chat:limit',
} as const;

/** The session id in an events channel name. */
export function sessionOfChannel(channel: string): SessionId | undefined {
  const match = /^llm-chat:\{s:([^}]+)\}:events$/.exec(channel);
  return match?.[1];
}
