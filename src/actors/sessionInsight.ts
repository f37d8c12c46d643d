import type { AnyActorRef, InspectionEvent } from 'xstate';
import { isChatError } from '../domain/errors.ts';
import type { LiveSession } from './liveSession.ts';
import type { MachineChart } from './machineChart.ts';
import { sessionChart } from './sessionActor.ts';
import { supervisorChart } from './supervisorChart.ts';

export type { ChartState, ChartTransition, MachineChart } from './machineChart.ts';

/**
 * Safe views of the session machines for the inspector. Machine contexts hold
 * the conversation and the deps (bus, store, provider), so nothing here ever
 * serialises a snapshot or an event as a whole: it copies state values,
 * counts, event types and error codes, field by field.
 */

export interface SessionOverview {
  sessionId: string;
  /** The supervisor's state: running, restarting or stopped. */
  supervisor: string;
  /** The session actor's state (idle, generating), or null while there is none (restarting). */
  session: string | null;
  /** Restarts within the current restart-intensity period. */
  restarts: number;
  messages: number;
  /** The reply in progress plus the queued ones. */
  pending: number;
  lastSeq: number;
  lastActiveAt: number;
  /** The id of the API key the session belongs to; null when it was made without one. */
  owner: string | null;
}

function childState(child: AnyActorRef | undefined): string | null {
  try {
    const snapshot = child?.getSnapshot() as { status?: string; value?: unknown } | undefined;
    return snapshot?.status === 'active' ? String(snapshot.value) : null;
  } catch {
    return null; // a child still in its constructor cannot be read yet
  }
}

export function describeSession(live: LiveSession): SessionOverview {
  const snapshot = live.actor.getSnapshot();
  const summary = live.summary();
  return {
    sessionId: live.sessionId,
    supervisor: snapshot.status === 'active' ? String(snapshot.value) : 'stopped',
    session: childState(snapshot.children.session),
    restarts: snapshot.context.restarts.length,
    messages: summary.messageCount,
    pending: summary.pending,
    lastSeq: summary.lastSeq,
    lastActiveAt: summary.lastActiveAt,
    owner: live.owner ?? null,
  };
}

let charts: MachineChart[] | undefined;

/** The supervisor machine's and the session actor's states and transitions (computed once). */
export function machineCharts(): MachineChart[] {
  charts ??= [supervisorChart, sessionChart];
  return charts;
}

export interface InspectionRecord {
  kind: 'actor' | 'event' | 'snapshot' | 'transition' | 'action';
  /** `supervisor` or `session`. */
  actor: string;
  /** For events: who sent it, when known. */
  sender?: string;
  /** The event's type (and a safe detail: a stop reason, an error code). */
  event?: string;
  detail?: string;
  /** For snapshots and transitions: the state value (machines) or status (promise actors). */
  state?: string;
  status?: string;
  /** For transitions: from → to, by state key. */
  transitions?: { from: string; to: string[] }[];
  /** For actions: the action's name. */
  action?: string;
}

/** The supervisor `root` itself or the session actor it spawned (its only child). */
function ofSession(ref: unknown, root: AnyActorRef): boolean {
  return ref === root || (ref as { _parent?: unknown } | undefined)?._parent === root;
}

function actorName(ref: unknown, root: AnyActorRef): string {
  if (ref === root) return 'supervisor';
  const id = (ref as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : 'unknown';
}

function eventDetail(event: { type: string; [key: string]: unknown }): string | undefined {
  if (event.type === 'stop' && typeof event['reason'] === 'string') return event['reason'];
  if (event.type.startsWith('xstate.error.actor.')) {
    const error = event['error'];
    return isChatError(error) ? error.code : 'internal_error';
  }
  return undefined;
}

function stateOf(snapshot: unknown): { state?: string; status?: string } {
  const { value, status } = (snapshot ?? {}) as { value?: unknown; status?: unknown };
  return {
    ...(typeof value === 'string' ? { state: value } : {}),
    ...(typeof status === 'string' ? { status } : {}),
  };
}

/** An XState inspection event as a record safe to send to a browser, or undefined to skip it. */
export function toInspectionRecord(event: InspectionEvent, root: AnyActorRef): InspectionRecord | undefined {
  // Every session's actors share one actor system (sessionsRoot.ts): an
  // observer on it hears them all, and a watcher gets its own session's only.
  if (!ofSession(event.actorRef, root)) return undefined;
  const actor = actorName(event.actorRef, root);
  switch (event.type) {
    case '@xstate.actor':
      // Sent from the actor's constructor: its snapshot cannot be read yet (XState's dev build throws).
      return { kind: 'actor', actor };
    case '@xstate.event': {
      const detail = eventDetail(event.event);
      return {
        kind: 'event',
        actor,
        ...(event.sourceRef ? { sender: actorName(event.sourceRef, root) } : {}),
        event: event.event.type,
        ...(detail ? { detail } : {}),
      };
    }
    case '@xstate.snapshot':
      return { kind: 'snapshot', actor, event: event.event.type, ...stateOf(event.snapshot) };
    case '@xstate.microstep':
      return {
        kind: 'transition',
        actor,
        event: event.event.type,
        ...stateOf(event.snapshot),
        transitions: event._transitions.map((transition) => ({
          from: transition.source.key,
          to: (transition.target ?? []).map((target) => target.key),
        })),
      };
    case '@xstate.action':
      return { kind: 'action', actor, action: event.action.type };
    default:
      return undefined;
  }
}

export interface NodeOverview {
  live: number;
  /** Sessions by supervisor state, and by session-actor state (`none` while restarting). */
  bySupervisor: Record<string, number>;
  bySession: Record<string, number>;
  /** Restarts within their periods, summed over sessions. */
  restarts: number;
  /** The most recently activated sessions, newest first, at most `limit` of them. */
  sessions: SessionOverview[];
}

/** Counts over every live session and the details of the `limit` most recently activated. */
export function summarise(sessions: Iterable<LiveSession>, limit: number): NodeOverview {
  const bySupervisor: Record<string, number> = { dormant: 0, running: 0, restarting: 0, stopped: 0 };
  const bySession: Record<string, number> = { idle: 0, generating: 0, none: 0 };
  const recent: SessionOverview[] = [];
  let live = 0;
  let restarts = 0;
  for (const session of sessions) {
    const overview = describeSession(session);
    live += 1;
    restarts += overview.restarts;
    bySupervisor[overview.supervisor] = (bySupervisor[overview.supervisor] ?? 0) + 1;
    const state = overview.session ?? 'none';
    bySession[state] = (bySession[state] ?? 0) + 1;
    // The registry yields activation order, oldest first: keep the last `limit` in a ring.
    if (limit > 0) recent[(live - 1) % limit] = overview;
  }
  const start = live > limit && limit > 0 ? live % limit : 0;
  const ordered = [...recent.slice(start), ...recent.slice(0, start)];
  return { live, bySupervisor, bySession, restarts, sessions: ordered.reverse() };
}
