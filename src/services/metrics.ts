// Subscription metrics (GET /metrics/mrr, /metrics/churn): the window's rules, then one read of
// the MRR engine's daily sums in the tenant's transaction, after the cancellations now due, with
// the correction for the customers waiting for compaction; and the compaction itself.
import { sql } from 'kysely';
import { readCorrection, recount, type Wanted, wantedBy } from '../analytics/mrr-counting.js';
import { encodeInput } from '../analytics/mrr-input.js';
import { ANY } from '../analytics/mrr-engine.js';
import {
  addDays,
  clearMarks,
  digestOf,
  type DirtyCustomer,
  dirtyCustomers,
  rememberCounted,
  saveCounted,
  takeDirtyCustomers,
  tryMrrLock,
} from '../analytics/mrr-store.js';
import { type MetricsFilter, type MetricsMonths, readMetricsMonths } from '../analytics/mrr.js';
import type { Db } from '../database/connection.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';
import { performDueCancellations } from './subscriptions.js';

export type { MetricsFilter };

export const MAX_MONTHS = 120;

/**
 * What the customers waiting for compaction (as `dirtyCustomers` read them, in this transaction)
 * change in one slot of the sums, now.
 */
export async function correctionFor(
  db: Db,
  tenantId: string,
  wanted: Wanted,
  dirty: readonly DirtyCustomer[],
) {
  return dirty.length === 0 ? undefined : readCorrection(db, tenantId, dirty, wanted);
}

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
  // By default the 12 months to `to`, but none before 0001-01 (year 0 is no Month).
  const from = query.from ? toIndex(query.from) : Math.max(to - 11, toIndex('0001-01'));
  const errors: FieldErrors = [];
  if (to > current)
    errors.push({ field: 'to', message: `must not be after the current month, ${fromIndex(current)}` });
  if (from > to) errors.push({ field: 'from', message: 'must not be after to' });
  else if (to - from + 1 > MAX_MONTHS)
    errors.push({ field: 'from', message: `must be at most ${MAX_MONTHS} months before to, inclusive` });
  return errors.length > 0 ? { errors } : { from: fromIndex(from), to: fromIndex(to) };
}

/** An id no plan or feature has (not a version 7 UUID, as every id is). */
const NO_SUCH_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/**
 * The nil id stands for "every plan" (every feature) in the stored sums (ANY). Sent as a filter
 * it names no plan, as any unknown id: it is read as one, not as the whole tenant.
 */
const namingNone = (filter: MetricsFilter): MetricsFilter => ({
  ...filter,
  planId: filter.planId === ANY ? NO_SUCH_ID : filter.planId,
  featureId: filter.featureId === ANY ? NO_SUCH_ID : filter.featureId,
});

export function getMetrics(
  ctx: ServiceContext,
  actor: Actor,
  filter: MetricsFilter,
  query: { from?: string | undefined; to?: string | undefined },
): Promise<MetricsOutcome> {
  // One snapshot: a compaction committing between the correction and the read of the sums would
  // otherwise be counted twice.
  return inTenant(ctx, { ...actor, snapshot: true }, async (tx): Promise<MetricsOutcome> => {
    // The window is judged by the database's clock, the one the metrics are measured by. Sent
    // together, in this order, with BEGIN: the marks are read after the cancellations now due.
    const [, { rows }, dirty] = await Promise.all([
      performDueCancellations(tx),
      sql<{ now: Date }>`select now() as now`.execute(tx.db),
      dirtyCustomers(tx.db),
    ]);
    const asOf = rows[0]!.now;
    const window = metricsWindow(query, asOf);
    if ('errors' in window) return { kind: 'invalid', errors: window.errors };
    const named = namingNone(filter);
    const correction = await correctionFor(tx.db, actor.tenantId, wantedBy(named), dirty);
    tx.commitWithNext();
    const months = await readMetricsMonths(
      tx.db,
      named,
      { from: `${window.from}-01`, to: `${window.to}-01` },
      correction,
    );
    return { kind: 'ok', ...window, asOf, months };
  });
}

/**
 * The worker's compaction of one tenant: up to `limit` customers waiting (none a writer still
 * holds) are counted again: the difference goes into the sums, their new input into mrr_counted,
 * their marks go. -1 when a compaction or rebuild of the tenant runs already.
 */
export function compactMetrics(ctx: ServiceContext, tenantId: string, limit: number): Promise<number> {
  return inTenant(ctx, { tenantId, keyId: 'system' }, async (tx) => {
    if (!(await tryMrrLock(tx.db))) return -1;
    const dirty = await takeDirtyCustomers(tx.db, limit);
    if (dirty.length === 0) return 0;
    const users = dirty.map((d) => d.user);
    const { rows, current } = await recount(tx.db, dirty);
    const counted = users.map((user): [string, string | null] => {
      const input = current.get(user);
      if (!input) return [user, null];
      const encoded = encodeInput(input);
      // This process's next read of the customer finds it decoded (stored as this digest).
      rememberCounted(user, digestOf(encoded), input);
      return [user, encoded];
    });
    // Three tables, no statement depending on another's result: sent together, one round trip
    // for the usual small compaction instead of four.
    await Promise.all([addDays(tx.db, rows), saveCounted(tx.db, counted), clearMarks(tx.db, users)]);
    return users.length;
  });
}
