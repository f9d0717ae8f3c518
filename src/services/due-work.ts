// The worker's one job: perform the billing work that is due in a scope (a test clock, or real
// time for one tenant or all), earliest first, until nothing is due. Finding work reads ids
// across tenants as the owner; every step then runs in its tenant's transaction (collection.ts).
import type { Db } from '../database/connection.js';
import { type DueItem, findDueWork } from '../queries/due-work.js';
import { type DueScope, enqueueDue, findStalledClocks } from '../queries/jobs.js';
import {
  announceTrialEnd,
  type CollectionContext,
  cancelDue,
  closeDue,
  renewDue,
  retryDue,
  settleDue,
  submitDue,
} from './collection.js';
import { lapseDue } from './credit-purchases.js';
import { resumeDue } from './pauses.js';
import { testClockReady } from './payments.js';
import { settleRefundDue, submitRefundDue } from './refunds.js';
import { sweepWallet } from './wallets.js';

export interface DueWorkContext extends CollectionContext {
  /** The owner's pool: finds due work across tenants (ids only). */
  readonly ownerDb: Db;
}

const BATCH = 200;
/** Steps at once in real time (the worker's pool has 4 connections). */
const REAL_TIME_CONCURRENCY = 3;

function perform(ctx: CollectionContext, item: DueItem, at: Date): Promise<void> {
  switch (item.kind) {
    case 'cancel':
      return cancelDue(ctx, item.tenant_id, item.target_id, at);
    case 'renew':
      return renewDue(ctx, item.tenant_id, item.target_id, at).then(() => undefined);
    case 'submit':
      return submitDue(ctx, item.tenant_id, item.target_id, at);
    case 'settle':
      return settleDue(ctx, item.tenant_id, item.target_id, at);
    case 'retry':
      return retryDue(ctx, item.tenant_id, item.target_id, at);
    case 'expire':
      return sweepWallet(ctx, item.tenant_id, item.target_id, at);
    case 'trial':
      return announceTrialEnd(ctx, item.tenant_id, item.target_id, at);
    case 'close':
      return closeDue(ctx, item.tenant_id, item.target_id, at);
    case 'resume':
      return resumeDue(ctx, item.tenant_id, item.target_id, at);
    case 'refund':
      return submitRefundDue(ctx, item.tenant_id, item.target_id, at);
    case 'refund_settle':
      return settleRefundDue(ctx, item.tenant_id, item.target_id, at);
    case 'lapse':
      return lapseDue(ctx, item.tenant_id, item.target_id, at);
  }
}

/**
 * Performs everything due in the scope; returns how many steps ran. On a test clock each step
 * happens at its own due time (a renewal on its period's first day, a settlement when the rail
 * settles), so a year advanced at once reads like a year lived; in real time, steps happen now.
 */
export async function performDueWork(ctx: DueWorkContext, scope: DueScope): Promise<number> {
  return (await performDueWorkUntil(ctx, scope, Infinity)).steps;
}

export interface DueWorkSlice {
  steps: number;
  /** Nothing was due any more (a test clock is then ready); otherwise the rest is still due. */
  finished: boolean;
}

/**
 * performDueWork, stopping after the batch during which `deadline` (epoch ms) passes: the worker
 * runs a long catch-up (a tenant's import of backdated subscriptions, a clock advanced by years)
 * as a chain of jobs, so that the jobs queued behind it (another clock's advance) take turns with
 * it instead of waiting minutes. Stopping between batches is what a worker killed there does, and
 * the order of a clock's steps depends on the state alone: the next slice goes on where this one
 * stopped.
 */
export async function performDueWorkUntil(
  ctx: DueWorkContext,
  scope: DueScope,
  deadline: number,
): Promise<DueWorkSlice> {
  let steps = 0;
  // Every step changes what is due; the same item due twice would mean a step that did nothing,
  // and a loop that never ends: fail the job instead (it is retried, and visible if it stays).
  const done = new Set<string>();
  for (;;) {
    // On a test clock, only the steps of the earliest (due time, rank): whatever they make due
    // sorts after them (see findDueWork's ranks), so the order of the steps is a function of
    // the state alone, and the same on every run however often a worker was killed. (A whole
    // batch would not be: after a kill, a renewal's payment could overtake another renewal.)
    // In real time every due step happens now anyway.
    const found = await findDueWork(ctx.ownerDb, scope, BATCH);
    if (found.length === 0) break;
    const { at, kind } = found[0]!;
    const items = scope.clockId
      ? found.filter((item) => item.kind === kind && item.at.getTime() === at.getTime())
      : found;
    for (const item of items) {
      const key = `${item.kind}:${item.target_id}:${item.due_at.toISOString()}`;
      if (done.has(key)) throw new Error(`billing step made no progress: ${key}`);
      done.add(key);
    }
    // A test clock's steps one after another, in their order (invoice numbers follow it); real
    // time's, a few at once: they belong to different subscriptions.
    let next = 0;
    await Promise.all(
      Array.from({ length: scope.clockId ? 1 : REAL_TIME_CONCURRENCY }, async () => {
        while (next < items.length) {
          const item = items[next++]!;
          await perform(ctx, item, scope.clockId ? item.at : new Date());
          steps++;
        }
      }),
    );
    // At least one batch a slice: every slice moves on.
    if (Date.now() > deadline) return { steps, finished: false };
  }
  if (scope.clockId && scope.tenantId) await testClockReady(ctx, scope.tenantId, scope.clockId);
  return { steps, finished: true };
}

/**
 * Queues the catch-up of every test clock whose job failed for good, so that it finishes once
 * what made it fail is gone (as real time's work does on the next minute): run by the minute
 * schedule. Returns how many clocks it queued.
 */
export async function resumeStalledClocks(ctx: DueWorkContext, quietFor?: string): Promise<number> {
  const stalled = await findStalledClocks(ctx.ownerDb, quietFor);
  for (const clock of stalled)
    await enqueueDue(ctx.ownerDb, { tenantId: clock.tenant_id, clockId: clock.id });
  return stalled.length;
}
