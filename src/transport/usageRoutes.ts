import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { TokenLedger } from '../actors/tokenLedger.ts';
import { ChatError } from '../domain/errors.ts';
import type { Clock } from '../domain/ports.ts';
import { dayOf, daysBefore, isDay, nextDayStart } from '../domain/tokenUsage.ts';
import type { UsageEntry } from '../domain/tokenUsage.ts';
import { adminGuard } from './adminGuard.ts';
import { callerOf } from './authenticate.ts';
import type { Authenticator } from './authenticate.ts';

const day = z.string().refine(isDay, 'a day as YYYY-MM-DD');
const rangeParams = z.object({ from: day.optional(), to: day.optional(), keyId: z.string().min(1).max(100).optional() }).strict();

/** At most this many days in one answer. */
const MAX_DAYS = 366;

/** The days asked for (default: the last 30, today included), checked. */
function rangeOf(request: Request, clock: Clock): { fromDay: string; toDay: string; keyId?: string } {
  const parsed = rangeParams.safeParse(request.query);
  if (!parsed.success) throw new ChatError('bad_request', 'Expected ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days, at most 366 apart).');
  const toDay = parsed.data.to ?? dayOf(clock.now());
  const fromDay = parsed.data.from ?? daysBefore(toDay, 29);
  if (fromDay > toDay || daysBefore(toDay, MAX_DAYS - 1) > fromDay) throw new ChatError('bad_request', 'Expected from ≤ to, at most 366 days apart.');
  return { fromDay, toDay, ...(parsed.data.keyId !== undefined ? { keyId: parsed.data.keyId } : {}) };
}

const row = (entry: UsageEntry) => ({ day: entry.day, model: entry.model, inputTokens: entry.inputTokens, outputTokens: entry.outputTokens });

export interface UsageRoutesOptions {
  ledger: TokenLedger;
  auth: Authenticator;
  clock: Clock;
}

/**
 * `GET /api/usage`: the caller's own tokens by day and model (the key's,
 * never another's; without keys, what was spent without one), with its daily
 * budget, what it spent today and when that resets.
 */
export function createUsageRoutes(options: UsageRoutesOptions): Router {
  const { ledger, auth, clock } = options;
  const router = Router();
  router.get('/usage', auth.guard(), async (request: Request, response: Response) => {
    const caller = callerOf(response);
    const range = rangeOf(request, clock);
    if (range.keyId !== undefined) throw new ChatError('bad_request', 'keyId is for GET /admin/usage; /api/usage reports the caller’s own key.');
    const keyId = caller.keyId ?? '';
    const entries = await ledger.list({ keyId, fromDay: range.fromDay, toDay: range.toDay });
    response.json({
      keyId: caller.keyId ?? null,
      from: range.fromDay,
      to: range.toDay,
      tokensPerDay: caller.limits.tokensPerDay > 0 ? caller.limits.tokensPerDay : null,
      spentToday: await ledger.spentToday(keyId),
      resetsAt: nextDayStart(clock.now()),
      usage: entries.map(row),
    });
  });
  return router;
}

export interface AdminUsageRoutesOptions {
  ledger: TokenLedger;
  clock: Clock;
  adminToken: string;
  /** Key names by id (revoked keys included). */
  keyNames(ids: readonly string[]): Promise<Map<string, string>>;
}

/** `GET /admin/usage`: every key's tokens by day and model (`?keyId=` for one), behind the admin token. */
export function createAdminUsageRoutes(options: AdminUsageRoutesOptions): Router {
  const { ledger, clock } = options;
  const router = Router();
  router.get('/admin/usage', adminGuard(options.adminToken), async (request: Request, response: Response) => {
    response.setHeader('Cache-Control', 'no-store');
    const range = rangeOf(request, clock);
    const entries = await ledger.list(range);
    const ids = [...new Set(entries.map((entry) => entry.keyId))];
    const names = await options.keyNames(ids.filter((id) => id !== ''));
    response.json({
      from: range.fromDay,
      to: range.toDay,
      keys: ids.map((id) => {
        const own = entries.filter((entry) => entry.keyId === id);
        return {
          keyId: id === '' ? null : id,
          name: id === '' ? null : (names.get(id) ?? null),
          inputTokens: own.reduce((sum, entry) => sum + entry.inputTokens, 0),
          outputTokens: own.reduce((sum, entry) => sum + entry.outputTokens, 0),
          usage: own.map(row),
        };
      }),
    });
  });
  return router;
}
