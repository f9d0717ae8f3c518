// The worker's one job: perform the billing work that is due in a scope (a test clock, or real
// time for one tenant or all), earliest first, until nothing is due. Finding work reads ids
// across tenants as the owner; every step then runs in its tenant's transaction (collection.ts).
import type { Db } from '../database/connection.js';
import { type DueItem, findDueWork } from '../queries/due-work.js';
import type { DueScope } from '../queries/jobs.js';
import { type CollectionContext, cancelDue, renewDue, retryDue, settleDue, submitDue } from './collection.js';
import { testClockReady } from './payments.js';

export interface DueWorkContext extends CollectionContext {
  /** The owner's pool: finds due work across tenants (ids only). */
  readonly ownerDb: Db;
}

const BATCH = 200;

function perform(ctx: CollectionContext, item: DueItem, at: Date): Promise<void> {
  switch (item.kind) {
    case 'cancel':
      return cancelDue(ctx, item.tenant_id, item.target_id, at);
    case 'renew':
      return renewDue(ctx, item.tenant_id, item.target_id, at);
    case 'submit':
      return submitDue(ctx, item.tenant_id, item.target_id, at);
    case 'settle':
      return settleDue(ctx, item.tenant_id, item.target_id, at);
    case 'retry':
      return retryDue(ctx, item.tenant_id, item.target_id, at);
  }
}

/**
 * Performs everything due in the scope; returns how many steps ran. On a test clock each step
 * happens at its own due time (a renewal on its period's first day, a settlement when the rail
 * settles), so a year advanced at once reads like a year lived; in real time, steps happen now.
 */
export async function performDueWork(ctx: DueWorkContext, scope: DueScope): Promise<number> {
  let steps = 0;
  // Every step changes what is due; the same item due twice would mean a step that did nothing,
  // and a loop that never ends: fail the job instead (it is retried, and visible if it stays).
  const done = new Set<string>();
  for (;;) {
    // On a test clock, one step at a time, the earliest due: a step can make another one due
    // before the rest (a renewal's payment, a dunning retry), and choosing each step from the
    // state the last one left makes the order the same on every run, however often a worker
    // was killed (a batch would be cut at a different place). In real time every due step
    // happens now anyway, so batches are fine.
    const items = await findDueWork(ctx.ownerDb, scope, scope.clockId ? 1 : BATCH);
    if (items.length === 0) break;
    for (const item of items) {
      const key = `${item.kind}:${item.target_id}:${item.due_at.toISOString()}`;
      if (done.has(key)) throw new Error(`billing step made no progress: ${key}`);
      done.add(key);
      await perform(ctx, item, scope.clockId ? item.due_at : new Date());
      steps++;
    }
  }
  if (scope.clockId && scope.tenantId) await testClockReady(ctx, scope.tenantId, scope.clockId);
  return steps;
}
