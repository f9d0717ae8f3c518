// Subscription metrics (GET /metrics/mrr, /metrics/churn): the window's rules, then one read of
// the maintained MRR aggregates in the tenant's transaction, after the cancellations now due.
import { sql } from 'kysely';
import {
  compact,
  countDirty,
  type MetricsFilter,
  type MetricsMonths,
  readMetricsMonths,
} from '../analytics/mrr.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';
import { performDueCancellations } from './subscriptions.js';

export type { MetricsFilter };

export const MAX_MONTHS = 120;
/**
 * A read corrects for the customers still waiting for compaction; past this many it compacts
 * them first (the worker normally keeps up; without one, reads do it).
 */
const COMPACT_BEFORE_READING = 500;

/** Query parameters that break a rule, each with why. */
export type FieldErrors = Array<{ field: 'from' | 'to'; message: string }>;

export type MetricsOutcome =
  | { kind: 'ok'; from: string; to: string; asOf: Date; months: MetricsMonths }
  | { kind: 'invalid'; errors: FieldErrors };

/** 'YYYY-MM' as a count of months since year 0, and back. */
const toIndex = (month: string) => Number(month.slice(0, 4)) * 12 + Number(month.slice(5, 7)) - 1;
const fromIndex = (index: number) =>
  `${String(Math.floor(index / 12)).padStart(4, '0')}-${String((index % 12) + 1).padStart(2, '0')}`;

/**
 * Months from `from` to `to` ('YYYY-MM'): by default the 12 months ending with the current one
 * (UTC); `to` at most the current month, `from` not after `to`, at most MAX_MONTHS.
 */
export function metricsWindow(
  query: { from?: string | undefined; to?: string | undefined },
  now = new Date(),
): { from: string; to: string } | { errors: FieldErrors } {
  const current = now.getUTCFullYear() * 12 + now.getUTCMonth();
  const to = query.to ? toIndex(query.to) : current;
  const from = query.from ? toIndex(query.from) : to - 11;
  const errors: FieldErrors = [];
  if (to > current)
    errors.push({ field: 'to', message: `must not be after the current month, ${fromIndex(current)}` });
  if (from > to) errors.push({ field: 'from', message: 'must not be after to' });
  else if (to - from + 1 > MAX_MONTHS)
    errors.push({ field: 'from', message: `the window is at most ${MAX_MONTHS} months` });
  else if (from < 12) errors.push({ field: 'from', message: 'must be in year 1 or later' });
  return errors.length > 0 ? { errors } : { from: fromIndex(from), to: fromIndex(to) };
}

export function getMetrics(
  ctx: ServiceContext,
  actor: Actor,
  filter: MetricsFilter,
  query: { from?: string | undefined; to?: string | undefined },
): Promise<MetricsOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<MetricsOutcome> => {
    await performDueCancellations(tx);
    if ((await countDirty(tx.db, COMPACT_BEFORE_READING)) >= COMPACT_BEFORE_READING) {
      await compact(tx.db, 1_000_000);
    }
    // The window is judged by the database's clock, the one the metrics are measured by.
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(tx.db);
    const asOf = rows[0]!.now;
    const window = metricsWindow(query, asOf);
    if ('errors' in window) return { kind: 'invalid', errors: window.errors };
    const months = await readMetricsMonths(tx.db, filter, {
      from: `${window.from}-01`,
      to: `${window.to}-01`,
    });
    return { kind: 'ok', ...window, asOf, months };
  });
}

/** The worker's compaction of one tenant: up to `limit` dirty customers; -1 if one runs already. */
export function compactMetrics(ctx: ServiceContext, tenantId: string, limit: number): Promise<number> {
  return inTenant(ctx, { tenantId, keyId: 'system' }, (tx) => compact(tx.db, limit));
}
