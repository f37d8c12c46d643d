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
  /** String `node token`: who runs the session's actor; valid while that node's heartbeat lives. */
  lease: (sessionId: SessionId) => `llm-chat:{s:${sessionId}}:lease`,
  /** Counter: the session's last fencing token. */
  fence: (sessionId: SessionId) => `llm-chat:{s:${sessionId}}:fence`,
  /** Shard channel: commands routed to a node, and their replies. */
  rpc: (nodeId: string) => `llm-chat:{n:${nodeId}}:rpc`,
  /** String (JSON: counts), PX the lease: the node is alive, and so are its leases. */
  node: (nodeId: string) => `llm-chat:{n:${nodeId}}:alive`,
  /** The start of every heartbeat key (the lease scripts find a holder's from its node id). */
  nodePrefix: 'llm-chat:{n:',
  /** Set: the lease keys the node holds (a dead node's are deleted by the survivor taking it over). */
  held: (nodeId: string) => `llm-chat:{n:${nodeId}}:held`,
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
