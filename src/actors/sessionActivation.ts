import { Conversation } from '../domain/conversation.ts';
import type { ConversationPolicy } from '../domain/conversationRules.ts';
import type { IdGenerator, SessionId } from '../domain/ids.ts';
import type { LoadWindow } from '../domain/ports.ts';
import { LiveSession } from './liveSession.ts';
import type { Admission } from './liveSession.ts';
import { SupervisorEnd } from './supervisorEnd.ts';
import type { SessionDeps } from './sessionEffects.ts';
import type { ActiveSessions } from './activeSessions.ts';
import type { SessionsRoot } from './sessionsRoot.ts';
import type { RestartPolicy } from './supervisorActor.ts';
import type { SessionAccess } from './sessionRegistryContract.ts';

export interface SessionActivationOptions {
  /** What every session's actors use; its store reports to its health. */
  deps: SessionDeps;
  ids: IdGenerator;
  /** The actor system the supervisors are spawned in. */
  root: SessionsRoot;
  /** The registry's active sessions: an activated one joins them, an ended one leaves. */
  active: ActiveSessions;
  /** Shared by the sessions: whether they take new messages. */
  admission: Admission;
  restartPolicy: RestartPolicy;
  /** The rules a stored session comes back under. */
  policy: ConversationPolicy;
  /** How much of a stored session's history is loaded (see `windowFor`). */
  window: LoadWindow | undefined;
  /** Makes room for one more active session of `owner` (throws when there is none); `existing` when a stored one comes back. */
  admit: (owner: string | undefined, access: SessionAccess | undefined, existing: boolean) => void;
}

/** Brings sessions to life on this node: a supervisor each, watched for its end. */
export interface SessionActivation {
  /** Starts a supervisor for `conversation` (`resumed`: it came back from the store) and makes it active. */
  activate(conversation: Conversation, resumed: boolean): LiveSession;
  /** Loads a stored session and activates it, once however many ask at the same time; undefined when none (or not `access.owner`'s). */
  activateStored(sessionId: SessionId, access: SessionAccess | undefined): Promise<LiveSession | undefined>;
  /** The activation of this stored session under way, if any. */
  pending(sessionId: SessionId): Promise<LiveSession | undefined> | undefined;
}

export function createSessionActivation(options: SessionActivationOptions): SessionActivation {
  const { deps, ids, root, active, admission, restartPolicy, policy, window, admit } = options;
  const { bus, store, logger, writer, health } = deps;
  const activating = new Map<SessionId, Promise<LiveSession | undefined>>();

  /** A supervisor ended (its `error` only for a bug in the supervisor itself): it leaves nothing behind, its entry and its replay log on this node. */
  const ended = (session: LiveSession, error?: unknown) => {
    const { sessionId } = session;
    if (error !== undefined) logger.error({ sessionId, err: String(error) }, 'supervisor failed');
    active.drop(sessionId, session);
    if (!active.get(sessionId) && !activating.has(sessionId)) bus.forget(sessionId);
    if (error !== undefined) bus.publish({ type: 'session.stopped', sessionId, reason: 'crashed' });
  };

  const activate = (conversation: Conversation, resumed: boolean): LiveSession => {
    const sessionId = conversation.sessionId;
    const actor = root.spawn({ conversation, deps, policy: restartPolicy });
    const session = new LiveSession(actor, conversation, deps, ids, admission);
    actor.subscribe(new SupervisorEnd(session, ended));
    active.add(sessionId, session);
    // What restoring changed (an interrupted reply, cancelled waiting messages) is written back once.
    const recovered = resumed ? conversation.takeRecovered() : [];
    if (recovered.length > 0) {
      // Chunks this node may still hold from before the sequence jump would confuse resume.
      bus.forget(sessionId);
      writer.save(conversation, recovered);
    }
    actor.start();
    bus.publish({ type: 'session.started', sessionId, resumed });
    // Watchers still attached (on any node) learn that the reply they were following will not go on.
    for (const message of recovered) {
      if (message.role === 'assistant' && message.status === 'interrupted') bus.publish({ type: 'message.interrupted', sessionId, messageId: message.id });
    }
    return session;
  };

  /** Loads a stored session and activates it, once however many ask at the same time. */
  const activateStored = (sessionId: SessionId, access: SessionAccess | undefined): Promise<LiveSession | undefined> => {
    health.assertHealthy();
    const load = async () => {
      const record = await store.load(sessionId, window);
      if (!record) return undefined;
      const again = active.get(sessionId);
      if (again) return again.session;
      // Checked before activating: a stranger's guess never costs the owner a live slot.
      if (access?.owner !== undefined && record.owner !== access.owner) return undefined;
      admit(record.owner, access, true);
      return activate(Conversation.restore(record, policy), true);
    };
    // `.finally` runs after `set` below even when `load` fails at once: a
    // failed activation must never stay in the map and answer every later find.
    const activation: Promise<LiveSession | undefined> = load().finally(() => {
      if (activating.get(sessionId) === activation) activating.delete(sessionId);
    });
    activating.set(sessionId, activation);
    return activation;
  };

  return {
    activate,
    activateStored,
    pending(sessionId) {
      return activating.get(sessionId);
    },
  };
}
