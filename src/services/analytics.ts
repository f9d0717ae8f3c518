// Revenue and customer metrics from the maintained aggregates, and their consistency check.
import type { Schemas } from '../contract.js';
import { sql } from 'kysely';
import { aggregateCorrections, applyCorrections, findDifferences } from '../analytics/maintenance.js';
import { APP_ROLE } from '../database/connection.js';
import { type AnalyticsParams, readRollups } from '../analytics/metrics.js';
import { currentMrr } from '../analytics/mrr.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';
import { checkMrr, type CountProgress, rebuildMrr } from './mrr-rebuild.js';
import { correctionFor } from './metrics.js';
import { dirtyCustomers } from '../analytics/mrr-store.js';
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
  // One snapshot, as for GET /metrics: the MRR sums and their correction must agree.
  return inTenant(ctx, { ...actor, snapshot: true }, async (tx) => {
    // Sent together, in this order, with BEGIN: the marks and the rollups are read after the
    // cancellations now due (the same transaction sees its own writes). Under load every round
    // trip waits for the CPU, so the read makes as few as it can.
    const [, dirty, rollups] = await Promise.all([
      performDueCancellations(tx),
      dirtyCustomers(tx.db),
      readRollups(tx.db, params),
    ]);
    const correction = await correctionFor(tx.db, actor.tenantId, { region: '*' }, dirty);
    tx.commitWithNext();
    const mrr = await currentMrr(tx.db, correction);
    // as_of first, then the MRR: the fields in the order the schema gives them.
    const { as_of, ...rest } = rollups;
    return { kind: 'ok', analytics: { as_of, ...mrr, ...rest } };
  });
}

/**
 * Every aggregate checked against a recount from the tables: GET /analytics's in the tenant's
 * transaction, the MRR sums and counted inputs in one snapshot on a few connections.
 */
export async function checkConsistency(
  ctx: ServiceContext,
  actor: Actor,
  progress?: CountProgress,
): Promise<Differences> {
  progress?.('reading', 0, 0);
  const analytics = await inTenant(ctx, actor, (tx) => findDifferences(tx.db, actor.tenantId));
  return [...analytics, ...(await checkMrr(ctx.db, actor.tenantId, progress ? { progress } : {}))];
}

/**
 * Rebuilds every aggregate of the tenant, then checks them, without stopping writers: GET
 * /analytics's aggregates are corrected by difference, the MRR sums rebuilt from one snapshot
 * (services/mrr-rebuild.ts).
 */
export async function rebuild(
  ctx: ServiceContext,
  actor: Actor,
  progress?: CountProgress,
): Promise<Differences> {
  // Several transactions: the idempotency key is claimed, and the reply stored, by a last one
  // that does nothing else. A retry with the key rebuilds again (harmless) and gets the first reply.
  const work = { ...actor, idempotency: undefined };
  // One run per tenant in this process: a rebuild asked for while one runs joins it and gets its
  // answer. Each run waits for the tenant's MRR lock holding a connection, so ten at once held
  // the pool while the running one needed another (retest8 #4: 503s, and every tenant slowed).
  let run = rebuildsRunning.get(actor.tenantId);
  if (!run) {
    run = (async () => {
      await rebuildUnchecked(ctx, work, progress);
      return checkConsistency(ctx, work);
    })().finally(() => rebuildsRunning.delete(actor.tenantId));
    rebuildsRunning.set(actor.tenantId, run);
  }
  const differences = await run;
  return actor.idempotency ? inTenant(ctx, actor, () => Promise.resolve(differences)) : differences;
}

/** The rebuild running for each tenant in this process. */
const rebuildsRunning = new Map<string, Promise<Differences>>();

/** Rebuilds without the check, for data valid by construction (the seed, which the tests check). */
export async function rebuildUnchecked(
  ctx: ServiceContext,
  actor: Actor,
  progress?: CountProgress,
): Promise<void> {
  // GET /analytics's aggregates: the correction of each row is measured in one snapshot, then
  // added to the rows as they are by then (maintenance.ts, applyCorrections): no writer waits.
  const corrections = await ctx.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${actor.tenantId}, true)`.execute(
        trx,
      );
      return aggregateCorrections(trx, actor.tenantId);
    });
  await inTenant(ctx, actor, (tx) => applyCorrections(tx.db, corrections));
  await rebuildMrr(ctx.db, actor.tenantId, progress ? { progress } : {});
}
