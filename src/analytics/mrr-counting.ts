// Counting changed customers again: what the engine's sums (mrr_days) lack for customers whose
// data changed since they were counted (mrr_dirty): their current contribution minus the one they
// are counted with (mrr_counted). Compaction writes that difference; a read adds it, so it is
// exact before compaction catches up. Inside the tenant's transaction: one snapshot for both.
// A customer marked by subscription is counted again from what changed only (patchMarked).
import type { Db } from '../database/connection.js';
import {
  ANY,
  Buckets,
  contributeChange,
  contributeSeries,
  countsIn,
  type CustomerSeries,
  dimensionsOf,
  type EngineSubscription,
  patchSeries,
  seriesKey,
  seriesOf,
  type CustomerInput,
  type DayRows,
  Dimensions,
  type Sink,
  type Slot,
  toDayRows,
} from './mrr-engine.js';
import { loadCustomers, loadRegions, loadSubscriptions } from './mrr-input.js';
import { digestOf, type DirtyCustomer, loadCounted } from './mrr-store.js';

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

/**
 * Each input's series, built once: a counted input kept decoded (mrr-store's cache) keeps its
 * series with it, so counting a large customer again patches them instead of deriving them.
 */
const seriesMemo = new WeakMap<CustomerInput, CustomerSeries>();
function seriesFor(input: CustomerInput): CustomerSeries {
  let series = seriesMemo.get(input);
  if (!series) seriesMemo.set(input, (series = seriesOf(input)));
  return series;
}

/** Each input's subscriptions by id, built once (a marked customer's are looked up by id). */
const byIdMemo = new WeakMap<CustomerInput, Map<string, EngineSubscription>>();
function byId(input: CustomerInput): Map<string, EngineSubscription> {
  let map = byIdMemo.get(input);
  if (!map) byIdMemo.set(input, (map = new Map(input.subscriptions.map((s) => [s.id!, s]))));
  return map;
}

/**
 * A dirty customer now: its region and series (absent: nothing of theirs counts), its input if
 * asked for (compaction stores it), and the dimensions where it may differ from the counted one
 * (undefined: all of them).
 */
interface Changed {
  now: { region: string; series: CustomerSeries; input: CustomerInput | undefined } | undefined;
  dimensions: Set<string> | undefined;
}

/**
 * Customers marked by subscription, now: the counted input with the marked subscriptions read
 * again, and the region read again; their series patched from the counted ones. Only the
 * dimensions of the marked subscriptions (as counted and as now) can change, unless the region
 * did. What this costs grows with the marked subscriptions, not with the customer. A read of one
 * dimension (`wanted`) patches that dimension alone and builds no input.
 */
function patchMarked(
  marked: readonly DirtyCustomer[],
  read: {
    counted: Map<string, CustomerInput>;
    regions: Map<string, string>;
    loaded: Map<string, Map<string, EngineSubscription>>;
  },
  wanted: { plan: string; feature: string } | undefined,
  changed: Map<string, Changed>,
): void {
  const { counted, regions, loaded } = read;
  for (const { user, subscriptions } of marked) {
    const before = counted.get(user);
    const stale: EngineSubscription[] = [];
    if (before) {
      const counts = byId(before);
      for (const id of subscriptions) {
        const s = counts.get(id);
        if (s) stale.push(s);
      }
    }
    const fresh = [...(loaded.get(user)?.values() ?? [])];
    const region = regions.get(user);
    const left = (before?.subscriptions.length ?? 0) - stale.length + fresh.length;
    let now: Changed['now'];
    if (region !== undefined && left > 0) {
      const series = before
        ? patchSeries(seriesFor(before), stale, fresh, wanted)
        : seriesOf({ subscriptions: fresh });
      let input: CustomerInput | undefined;
      if (!wanted) {
        const ids = new Set(subscriptions);
        const kept = before?.subscriptions.filter((s) => !ids.has(s.id!)) ?? [];
        input = { region, subscriptions: [...kept, ...fresh] };
        seriesMemo.set(input, series);
      }
      now = { region, series, input };
    }
    let dimensions: Set<string> | undefined;
    if (before && now && before.region === now.region) {
      dimensions = new Set();
      if (wanted) {
        // A read needs only whether its dimension is touched.
        const touched = (s: EngineSubscription) => countsIn(s, wanted.plan, wanted.feature);
        if (stale.some(touched) || fresh.some(touched))
          dimensions.add(seriesKey(wanted.plan, wanted.feature));
      } else {
        for (const s of stale) dimensionsOf(s, dimensions);
        for (const s of fresh) dimensionsOf(s, dimensions);
      }
    }
    changed.set(user, { now, dimensions });
  }
}

/**
 * The dirty customers as counted and now. A customer marked by subscription costs what changed:
 * only those subscriptions are read, only their dimensions counted again (for a read, `wanted`'s
 * alone); a customer marked whole (or counted before subscriptions had ids) is read whole.
 */
async function changesOf(
  db: Db,
  dirty: readonly DirtyCustomer[],
  wanted: Wanted | undefined,
): Promise<{ counted: Map<string, CustomerInput>; changed: Map<string, Changed> }> {
  // One round trip: the counted inputs, the marked subscriptions and regions, and the customers
  // marked whole, sent together.
  const marked = dirty.filter((d) => !d.whole);
  const whole = dirty.filter((d) => d.whole).map((d) => d.user);
  const [counted, regions, loaded, wholeNow] = await Promise.all([
    loadCounted(
      db,
      dirty.map((d) => d.user),
      wanted !== undefined,
    ),
    loadRegions(
      db,
      marked.map((d) => d.user),
    ),
    loadSubscriptions(db, marked),
    loadCustomers(db, whole),
  ]);
  // Counted before subscriptions had ids: read whole too (once: compaction stores ids).
  const unnamed = marked.filter((d) => counted.get(d.user)?.subscriptions.some((s) => s.id === undefined));
  if (unnamed.length > 0) {
    whole.push(...unnamed.map((d) => d.user));
    for (const [user, input] of await loadCustomers(
      db,
      unnamed.map((d) => d.user),
    ))
      wholeNow.set(user, input);
  }
  const changed = new Map<string, Changed>();
  // A read needs one dimension's series only; compaction and the check need every one, and the inputs.
  patchMarked(
    marked.filter((d) => !unnamed.includes(d)),
    { counted, regions, loaded },
    wanted && { plan: wanted.planId ?? ANY, feature: wanted.featureId ?? ANY },
    changed,
  );
  for (const user of whole) {
    const input = wholeNow.get(user);
    changed.set(user, {
      now: input && { region: input.region, series: seriesFor(input), input },
      dimensions: undefined,
    });
  }
  return { counted, changed };
}

/**
 * What these customers change in the sums now, in every slot, and their inputs now (compaction,
 * the consistency check).
 */
export async function recount(db: Db, dirty: readonly DirtyCustomer[]): Promise<Recount> {
  const { counted, changed } = await changesOf(db, dirty, undefined);
  const dims = new Dimensions();
  const buckets = new Buckets();
  const current = new Map<string, CustomerInput>();
  for (const { user } of dirty) {
    const { now, dimensions } = changed.get(user)!;
    if (now?.input) current.set(user, now.input);
    const before = counted.get(user);
    if (before && now && before.region === now.region) {
      contributeChange(seriesFor(before), now.series, now.region, dims, buckets, dimensions);
      continue;
    }
    if (before) contributeSeries(seriesFor(before), before.region, dims, buckets, -1, dimensions);
    if (now) contributeSeries(now.series, now.region, dims, buckets, 1, dimensions);
  }
  return { rows: toDayRows(buckets, dims), current };
}

/** A customer's series as counted or now, restricted to one dimension, with its region. */
interface Side {
  series: CustomerSeries;
  region: string;
}
/** A dirty customer's part in a read of one dimension (null: it changes nothing there). */
type ReadPart = { before: Side | undefined; now: Side | undefined } | null;

/**
 * Dirty customers' parts in reads, by tenant, customer, mark, counted input and dimension: a read
 * while the same customers wait (compaction lagging behind a burst of writes) reads and counts
 * again only those whose mark changed since the last read. A mark's version is the xmin of its
 * row, which every marking transaction rewrites (on conflict do update) in the transaction that
 * changes what the customer counts; the digest changes with what it is counted with. So a part is
 * never stale. Least recently used out, at most READ_PARTS.
 */
const readParts = new Map<string, ReadPart>();
const READ_PARTS = 50_000;

/** The series of one dimension alone. */
function onlyOne(series: CustomerSeries, key: string): CustomerSeries {
  const one = series.get(key);
  return new Map(one ? [[key, one]] : []);
}

/**
 * What the customers waiting for compaction change in the slot a read wants, now, as mrr_days
 * rows (inside the tenant's transaction, with the marks dirtyCustomers read in it).
 */
export async function readCorrection(
  db: Db,
  tenantId: string,
  dirty: readonly DirtyCustomer[],
  wanted: Wanted,
): Promise<DayRows> {
  const wantedKey = seriesKey(wanted.planId ?? ANY, wanted.featureId ?? ANY);
  const keyOf = (d: DirtyCustomer) => {
    if (d.version === undefined) return undefined;
    // A customer with thousands of marked subscriptions: their digest, not a key of megabytes.
    const marked = d.subscriptions.join(',');
    return `${tenantId} ${d.user} ${d.version} ${d.digest ?? '-'} ${d.whole} ${wantedKey} ${marked.length > 1000 ? digestOf(marked) : marked}`;
  };
  const parts: ReadPart[] = [];
  const missing: DirtyCustomer[] = [];
  for (const d of dirty) {
    const key = keyOf(d);
    const part = key === undefined ? undefined : readParts.get(key);
    if (part === undefined) missing.push(d);
    else {
      readParts.delete(key!);
      readParts.set(key!, part);
      parts.push(part);
    }
  }
  if (missing.length > 0) {
    const { counted, changed } = await changesOf(db, missing, wanted);
    for (const d of missing) {
      const { now, dimensions } = changed.get(d.user)!;
      const before = counted.get(d.user);
      const part: ReadPart =
        dimensions && !dimensions.has(wantedKey)
          ? null
          : {
              before: before && { series: onlyOne(seriesFor(before), wantedKey), region: before.region },
              now: now && { series: onlyOne(now.series, wantedKey), region: now.region },
            };
      parts.push(part);
      const key = keyOf(d);
      if (key !== undefined) readParts.set(key, part);
    }
    for (const key of readParts.keys()) {
      if (readParts.size <= READ_PARTS) break;
      readParts.delete(key);
    }
  }
  const dims = new Dimensions();
  const buckets = new Buckets();
  const sink = new OneSlot(buckets, dims, wanted);
  for (const part of parts) {
    if (part?.before && part.now && part.before.region === part.now.region) {
      contributeChange(part.before.series, part.now.series, part.now.region, dims, sink);
      continue;
    }
    if (part?.before) contributeSeries(part.before.series, part.before.region, dims, sink, -1);
    if (part?.now) contributeSeries(part.now.series, part.now.region, dims, sink, 1);
  }
  return toDayRows(buckets, dims);
}
