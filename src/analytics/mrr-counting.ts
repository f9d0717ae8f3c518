// Counting changed customers again: what the engine's sums (mrr_days) lack for customers whose
// data changed since they were counted (mrr_dirty): their current contribution minus the one they
// are counted with (mrr_counted). Compaction writes that difference; a read adds it, so it is
// exact before compaction catches up. Inside the tenant's transaction: one snapshot for both.
import type { Db } from '../database/connection.js';
import {
  ANY,
  Buckets,
  contribute,
  type CustomerInput,
  type DayRows,
  Dimensions,
  type Sink,
  type Slot,
  toDayRows,
} from './mrr-engine.js';
import { loadCustomers } from './mrr-input.js';
import { loadCounted } from './mrr-store.js';

/** One dimension and region of the sums: what a read needs. */
export interface Wanted {
  planId?: string | undefined;
  featureId?: string | undefined;
  /** A region, or '*' for all. */
  region: string;
}

/** The slot of the sums a metrics filter reads: a plan or any, a feature or any, a region or '*'. */
export function wantedBy(filter: {
  planId?: string | undefined;
  featureId?: string | undefined;
  region?: string | undefined;
}): Wanted {
  return { planId: filter.planId, featureId: filter.featureId, region: filter.region ?? '*' };
}

const nowhere: Slot = { add() {} };

/** Keeps only one dimension and region of what customers contribute. */
class OneSlot implements Sink {
  readonly #plan: number;
  readonly #feature: number;
  readonly #region: number;
  constructor(
    private readonly buckets: Buckets,
    dims: Dimensions,
    wanted: Wanted,
  ) {
    this.#plan = dims.plan(wanted.planId ?? ANY);
    this.#feature = dims.feature(wanted.featureId ?? ANY);
    this.#region = dims.region(wanted.region);
  }
  slot(plan: number, feature: number, region: number): Slot {
    return plan === this.#plan && feature === this.#feature && region === this.#region
      ? this.buckets.slot(plan, feature, region)
      : nowhere;
  }
}

export interface Recount {
  /** The difference, as mrr_days rows. */
  rows: DayRows;
  /** Each customer's current input (absent: nothing of theirs counts any more). */
  current: Map<string, CustomerInput>;
}

/** What these customers change in the sums now (only the `wanted` slot, if given). */
export async function recount(db: Db, userIds: readonly string[], wanted?: Wanted): Promise<Recount> {
  const [current, counted] = await Promise.all([loadCustomers(db, userIds), loadCounted(db, userIds)]);
  const dims = new Dimensions();
  const buckets = new Buckets();
  const sink = wanted ? new OneSlot(buckets, dims, wanted) : buckets;
  for (const user of userIds) {
    const before = counted.get(user);
    if (before) contribute(before, dims, sink, -1);
    const now = current.get(user);
    if (now) contribute(now, dims, sink, 1);
  }
  return { rows: toDayRows(buckets, dims), current };
}
