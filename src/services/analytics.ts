// Revenue and customer metrics from the maintained aggregates, and their consistency check.
import type { Schemas } from '../contract.js';
import { findDifferences, rebuildAggregates } from '../analytics/maintenance.js';
import { type AnalyticsParams, readAnalytics } from '../analytics/metrics.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';
import { performDueCancellations } from './subscriptions.js';

type Differences = Schemas['AnalyticsConsistency']['differences'];

export type AnalyticsOutcome =
  { kind: 'ok'; analytics: Schemas['Analytics'] } | { kind: 'window-before-year-1' };

export async function getAnalytics(
  ctx: ServiceContext,
  actor: Actor,
  params: AnalyticsParams,
): Promise<AnalyticsOutcome> {
  // The window of months must not reach before January of year 1, which has no 'YYYY-MM' label.
  const [year = 0, month = 0] = params.asOf.split('-').map(Number);
  if (year * 12 + (month - 1) - (params.months - 1) < 12) return { kind: 'window-before-year-1' };
  return inTenant(ctx, actor, async (tx) => {
    await performDueCancellations(tx);
    return { kind: 'ok', analytics: await readAnalytics(tx.db, params) };
  });
}

export function checkConsistency(ctx: ServiceContext, actor: Actor): Promise<Differences> {
  return inTenant(ctx, actor, (tx) => findDifferences(tx.db));
}

/** Rebuilds, then checks in the same transaction, while the rebuild's lock still keeps writers out. */
export function rebuild(ctx: ServiceContext, actor: Actor): Promise<Differences> {
  return inTenant(ctx, actor, async (tx) => {
    await rebuildAggregates(tx.db);
    return findDifferences(tx.db);
  });
}

/** Rebuilds without the check, for data valid by construction (the seed, which the tests check). */
export function rebuildUnchecked(ctx: ServiceContext, actor: Actor): Promise<void> {
  return inTenant(ctx, actor, (tx) => rebuildAggregates(tx.db));
}
