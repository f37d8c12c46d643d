import type { EventBus, Unsubscribe } from '../domain/ports.ts';
import type { TokenLedger } from './tokenLedger.ts';

export interface UsageRecorderOptions {
  bus: EventBus;
  ledger: TokenLedger;
  /** The key a session belongs to (`undefined`: made without one). */
  ownerOf(sessionId: string): string | undefined;
  /** Named when a reply does not say which model answered. */
  defaultModel: string;
}

/**
 * Every finished reply's tokens go to the ledger, charged to the key that
 * owns the session (`''` without keys), under the model that answered. A
 * reply cancelled, failed or interrupted has no usage and is not charged.
 * Returns the unsubscribe.
 */
export function recordUsage(options: UsageRecorderOptions): Unsubscribe {
  const { bus, ledger, ownerOf, defaultModel } = options;
  return bus.subscribeAll((event) => {
    if (event.type !== 'message.completed' || !event.usage) return;
    ledger.record(ownerOf(event.sessionId) ?? '', event.model ?? defaultModel, event.usage);
  });
}
