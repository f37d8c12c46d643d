import type { LiveSession } from './liveSession.ts';

/**
 * Watches one supervisor for its end. An object whose methods XState binds
 * to it, with one callback shared by every session: two closures and their
 * context per session were ~0.9 KB of each idle session's heap. Its `error`
 * also keeps XState from rethrowing a supervisor's own bug, which would take
 * the whole process down.
 */
export class SupervisorEnd {
  readonly #session: LiveSession;
  readonly #ended: (session: LiveSession, error?: unknown) => void;

  constructor(session: LiveSession, ended: (session: LiveSession, error?: unknown) => void) {
    this.#session = session;
    this.#ended = ended;
  }

  complete(): void {
    this.#ended(this.#session);
  }

  error(error: unknown): void {
    this.#ended(this.#session, error ?? new Error('supervisor failed'));
  }
}
