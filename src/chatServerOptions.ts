import type { Server } from 'node:http';
import type { InspectionEvent, Observer } from 'xstate';
import type { AuthOptions } from './access.ts';
import type { CircuitBreaker } from './actors/circuitBreaker.ts';
import type { InspectionHub } from './actors/inspectionHub.ts';
import type { KeyRing } from './actors/keyRing.ts';
import type { SessionRegistry } from './actors/sessionRegistry.ts';
import type { Sessions } from './actors/sessions.ts';
import type { ClusterNode } from './cluster/clusterNode.ts';
import type { IdGenerator } from './domain/ids.ts';
import type { Clock, EventBus, Logger, SessionStore } from './domain/ports.ts';
import type { ModelCatalog, ModelOptions } from './model.ts';
import type { Admission, RejectReason } from './transport/admission.ts';

/** What `createChatServer` takes: every option has a default (the embedded one). */
export interface ChatServerOptions extends ModelOptions {
  /** API keys (default `{ mode: 'keys' }`: every request needs one). */
  auth?: AuthOptions;
  /** New connections (and requests without a valid key) an IP may make above `connRatePerIp`, per minute (default 1,000). */
  connBurstPerIp?: number;
  /** Proxies (addresses, CIDRs, `loopback`) whose `X-Forwarded-For` names the client for per-IP limits (default: none). */
  trustProxy?: string;
  /** Delete sessions with no activity for this many days (default 0 = keep forever). */
  retentionDays?: number;
  queueLimit?: number;
  sessionTtlMs?: number;
  restartIntensity?: number;
  restartPeriodMs?: number;
  restartBackoffMs?: number;
  maxFrameBytes?: number;
  maxBodyBytes?: number;
  /** Largest `/v1` request body (default 16 MiB: images and audio come inline). */
  maxV1BodyBytes?: number;
  /** Spent tokens are written to the store this often (default 1 s). */
  usageFlushMs?: number;
  maxBufferedBytes?: number;
  /** Unsent bytes over all WebSocket and SSE connections; past it the heaviest are closed first (default 256 MiB). */
  maxBufferedTotalBytes?: number;
  /** WebSocket ping interval; a peer that neither answers nor takes or sends bytes until the next ping is dropped (default 30 s; 0 = never). */
  wsPingMs?: number;
  /** How long a WebSocket close handshake may take before the socket is dropped (default 2 s). */
  wsCloseGraceMs?: number;
  replayLogSize?: number;
  /** Bytes of chunk text kept per session for resume (default 1 MiB). */
  replayLogBytes?: number;
  heartbeatMs?: number;
  /** Most active sessions (default 100,000; 0 = no limit). */
  maxSessions?: number;
  /** Open WS + SSE connections (default, or 0: the open-file limit less 2%). */
  maxConnections?: number;
  /** New connections per client IP per second (default 50; 0 = off). */
  connRatePerIp?: number;
  /** Messages per session per minute (default 60; 0 = off). */
  messagesPerMinute?: number;
  /** Shed new work while event-loop p99 delay exceeds this (default 500 ms; 0 = off). */
  shedLagMs?: number;
  /** Observers for refusals and slow consumers (metrics). */
  onReject?: (reason: RejectReason) => void;
  onSlowConsumer?: (transport: 'ws' | 'sse' | 'http') => void;
  /** On `shutdown()`: how long replies in flight may finish before they are interrupted (default 10 s). */
  shutdownDeadlineMs?: number;
  /** Serve Prometheus metrics at `GET /metrics` (default true). */
  metrics?: boolean;
  /** The state-machine inspector at `/inspector`, behind `adminToken`; off when absent. */
  inspector?: { adminToken: string; redact?: boolean };
  /** An inspection observer for every session's actors (e.g. @statelyai/inspect's); costly, off when absent. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** How often a streaming reply's text is written to the store (default 500 ms). */
  flushIntervalMs?: number;
  /**
   * This node's part in a cluster (Redis): the bus, session ownership by
   * lease and routing of commands to the owner. Absent: one node, all in
   * process. `listen()` attaches it.
   */
  cluster?: ClusterNode;
  /** Ports and collaborators; each defaults to the embedded implementation. */
  store?: SessionStore;
  bus?: EventBus;
  clock?: Clock;
  ids?: IdGenerator;
  logger?: Logger;
}

export interface ChatServer {
  readonly http: Server;
  readonly registry: SessionRegistry;
  /** What the transports use: the registry on one node, the cluster's router across nodes. */
  readonly sessions: Sessions;
  readonly bus: EventBus;
  readonly admission: Admission;
  /** API keys, when `auth.mode` is `keys`. */
  readonly keys: KeyRing | undefined;
  /** The default model's circuit breaker (every model's state is on `GET /api/status`). */
  readonly breaker: CircuitBreaker;
  /** The models clients may name. */
  readonly models: ModelCatalog;
  /** The inspector's watch hub, when the inspector is on. */
  readonly inspection: InspectionHub | undefined;
  /** What the edge holds now: admission slots, open WebSockets (and those the gateway tracks), SSE streams, unsent bytes node-wide. */
  edge(): { slots: number; ws: number; wsTracked: number; sse: number; bufferedBytes: number };
  /** Starts listening; port 0 picks a free port. Resolves with the address. */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  /** Stops sessions (clients are told), closes connections, the bus and the store. */
  close(): Promise<void>;
  /**
   * Graceful stop: stops listening, tells clients, lets replies in flight
   * finish for up to `deadlineMs` (default: the `shutdownDeadlineMs` option),
   * interrupts the rest, flushes the store and closes. `close()` is this with
   * no grace.
   */
  shutdown(deadlineMs?: number): Promise<void>;
  /** True once shutdown (or close) has begun. */
  readonly shuttingDown: boolean;
}
