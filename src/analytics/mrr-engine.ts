// The MRR engine: from one customer's subscriptions to what that customer adds to the daily MRR
// aggregates (mrr_days). Pure and exact: money in integer cents, no I/O. The rebuild, the
// compaction of changed customers, the correction a read adds for customers not compacted yet,
// and the consistency check all count a customer with this one function, so they agree by
// construction; test/unit/mrr-engine.test.ts checks it against an independent recomputation.
//
// The model (docs/metrics.md). A subscription's monthly amount is its price ÷ the months of its
// interval, rounded half-up to the cent (subscription_versions.monthly_amount). Its MRR at instant
// t is that amount while it counts: from start_date 00:00 UTC, before end_date + 1 day and before
// canceled_at, while its status (of the version in force at t) is active or past_due. A
// customer's MRR is a step function of time per dimension: every subscription; those on a plan
// (by the plan of the version in force); those linked to a feature (today's links); those on a
// plan and linked to a feature. The customer's region (today's) tags all of it.
//
// What a customer adds to a day of a dimension and region (and to region '*'), as 14 deltas:
//   mrr, customers             level changes on that day (running sums are MRR and customers);
//   <kind>_amount, _count      movement changes within that day's month, comparing the
//                              customer's MRR at the month's start with its MRR at each point
//                              (summed over a month's days up to today: its movements so far);
//   nrr_base, nrr_num          trailing-12-month retention: nrr_base's running sum is, at the start
//                              of month m, the MRR then of the customers who had MRR at the start
//                              of month m-11 (the cohort); nrr_num, what changes for them during m.

/**
 * A sum of cents passed 2^53, beyond which a double no longer holds every integer: the count
 * stops rather than round (problems.ts answers it with a 409).
 */
export class MrrRangeError extends RangeError {
  constructor(message = 'an MRR aggregate went beyond 2^53 cents') {
    super(message);
    this.name = 'MrrRangeError';
  }
}

/**
 * x, a sum of integer cents, while a double holds it exactly; else MrrRangeError. For a customer's
 * own MRR too: the sums it goes into see only its changes, which may each be small while their
 * total is not.
 */
function exact(x: number): number {
  if (x > Number.MAX_SAFE_INTEGER || x < -Number.MAX_SAFE_INTEGER) throw new MrrRangeError();
  return x;
}

/** The dimension for "any plan" or "any feature". */
export const ANY = '00000000-0000-0000-0000-000000000000';

export const COLUMNS = [
  'mrr',
  'customers',
  'new_amount',
  'new_count',
  'reactivation_amount',
  'reactivation_count',
  'expansion_amount',
  'expansion_count',
  'contraction_amount',
  'contraction_count',
  'churn_amount',
  'churn_count',
  'nrr_base',
  'nrr_num',
] as const;
export const WIDTH = COLUMNS.length;

export interface Version {
  /** valid_from, ms; the first version also stands for every time before it. */
  at: number;
  /** Status active or past_due: it counts. */
  counts: boolean;
  /** Monthly amount in cents. */
  cents: number;
  planId: string | null;
}

export interface EngineSubscription {
  /** The subscription's id: absent in inputs counted before 202612030013 (counted again whole). */
  id?: string;
  /** start_date 00:00 UTC, ms. */
  start: number;
  /** end_date + 1 day 00:00 UTC, ms (end_date is the last day served); null when open. */
  end: number | null;
  canceledAt: number | null;
  /** By `at`, at least one. */
  versions: Version[];
  /** Feature ids linked today. */
  features: string[];
}

export interface CustomerInput {
  /** Today's region; '' when none. */
  region: string;
  subscriptions: EngineSubscription[];
}

/**
 * Small integer ids for plans, features and regions, so that a dimension (a plan or any, and a
 * feature or any) and a bucket key are numbers, not strings: the engine's hot loop allocates
 * nothing per point. One registry per run (a rebuild, a compaction, a read).
 */
export class Dimensions {
  readonly plans: string[] = [ANY];
  readonly features: string[] = [ANY];
  readonly regions: string[] = ['*'];
  readonly #plans = new Map<string, number>([[ANY, 0]]);
  readonly #features = new Map<string, number>([[ANY, 0]]);
  readonly #regions = new Map<string, number>([['*', 0]]);

  plan(id: string): number {
    return intern(id, this.#plans, this.plans);
  }
  feature(id: string): number {
    return intern(id, this.#features, this.features);
  }
  region(name: string): number {
    return intern(name, this.#regions, this.regions);
  }
}

function intern(value: string, ids: Map<string, number>, values: string[]): number {
  let id = ids.get(value);
  if (id === undefined) {
    id = values.length;
    values.push(value);
    ids.set(value, id);
  }
  return id;
}

/** Where a series' contributions go: one (dimension, region) of a Sink. */
export interface Slot {
  /** Adds sign × the 14 deltas to a day. */
  add(day: number, deltas: Float64Array, sign: number): void;
}

/** Receives a customer's contributions, per dimension (plan or any, feature or any) and region. */
export interface Sink {
  slot(plan: number, feature: number, region: number): Slot;
}

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of an instant (its UTC date). */
export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS);

/** Months since 1970-01 (0 = January 1970) of a day (civil-from-days arithmetic: no Date object). */
function monthOfDay(day: number): number {
  const z = day + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9; // 1-12
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return (year - 1970) * 12 + month - 1;
}
/** The first day of a month (as monthOfDay counts months); computed once per month. */
const firstDays = new Map<number, number>();
function firstDayOfMonth(month: number): number {
  let day = firstDays.get(month);
  if (day === undefined) {
    // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999.
    const date = new Date(0);
    date.setUTCFullYear(1970 + Math.floor(month / 12), ((month % 12) + 12) % 12, 1);
    firstDays.set(month, (day = date.getTime() / DAY_MS));
  }
  return day;
}

// The engine is synchronous and never re-entered, so these buffers are reused from customer to
// customer: the hot path allocates almost nothing (garbage collection was a third of the time).
/** A customer's MRR deltas, one per change of a subscription in a dimension, not yet grouped. */
const deltaPlan: number[] = [];
const deltaFeature: number[] = [];
const deltaT: number[] = [];
const deltaValue: number[] = [];
let deltaCount = 0;
function pushDelta(plan: number, feature: number, t: number, delta: number) {
  if (delta === 0 || t === -Infinity) return;
  deltaPlan[deltaCount] = plan;
  deltaFeature[deltaCount] = feature;
  deltaT[deltaCount] = t;
  deltaValue[deltaCount] = delta;
  deltaCount++;
}

/** A subscription's marks: the moments its amount may change (versions first at equal times). */
const markT: number[] = [];
const markVersion: number[] = [];
const markOrder: number[] = [];
const featureIds: number[] = [];

/** Each subscription's changes of amount (g) and plan, as changes of its customer's dimensions. */
function deltasOf(input: { subscriptions: readonly EngineSubscription[] }, dims: Dimensions): void {
  deltaCount = 0;
  for (const s of input.subscriptions) {
    let marks = 0;
    for (let i = 0; i < s.versions.length; i++) {
      markT[marks] = i === 0 ? -Infinity : s.versions[i]!.at;
      markVersion[marks++] = i;
    }
    markT[marks] = s.start;
    markVersion[marks++] = -1;
    if (s.end !== null) {
      markT[marks] = s.end;
      markVersion[marks++] = -1;
    }
    if (s.canceledAt !== null) {
      markT[marks] = s.canceledAt;
      markVersion[marks++] = -1;
    }
    markOrder.length = marks;
    for (let i = 0; i < marks; i++) markOrder[i] = i;
    markOrder.sort(
      (a, b) =>
        markT[a]! - markT[b]! ||
        (markVersion[b]! >= 0 ? 1 : 0) - (markVersion[a]! >= 0 ? 1 : 0) ||
        markVersion[a]! - markVersion[b]!,
    );
    featureIds.length = s.features.length;
    for (let i = 0; i < s.features.length; i++) featureIds[i] = dims.feature(s.features[i]!);
    let current = s.versions[0]!;
    let gBefore = 0;
    let planBefore = -1;
    for (let m = 0; m < marks; m++) {
      const mark = markOrder[m]!;
      if (markVersion[mark]! >= 0) current = s.versions[markVersion[mark]!]!;
      const t = markT[mark]!;
      const off =
        t < s.start ||
        (s.end !== null && t >= s.end) ||
        (s.canceledAt !== null && t >= s.canceledAt) ||
        !current.counts;
      const g = off ? 0 : current.cents;
      const plan = current.planId === null ? -1 : dims.plan(current.planId);
      pushDelta(0, 0, t, g - gBefore);
      if (plan >= 0) pushDelta(plan, 0, t, g);
      if (planBefore >= 0) pushDelta(planBefore, 0, t, -gBefore);
      for (const f of featureIds) {
        pushDelta(0, f, t, g - gBefore);
        if (plan >= 0) pushDelta(plan, f, t, g);
        if (planBefore >= 0) pushDelta(planBefore, f, t, -gBefore);
      }
      gBefore = g;
      planBefore = plan;
    }
  }
}

/** A movement's contribution as of a customer's MRR `e` in a month that began at `s0`. */
function movements(out: Float64Array, sign: number, e: number, s0: number, paid: boolean) {
  // new, reactivation, expansion, contraction, churn: amount and count each (columns 2 to 11).
  if (s0 === 0) {
    if (e > 0) {
      const at = paid ? 4 : 2;
      out[at]! += sign * e;
      out[at + 1]! += sign;
    }
  } else if (e > s0) {
    out[6]! += sign * (e - s0);
    out[7]! += sign;
  } else if (e > 0 && e < s0) {
    out[8]! += sign * (e - s0);
    out[9]! += sign;
  } else if (e === 0) {
    out[10]! += sign * -s0;
    out[11]! += sign;
  }
}

const scratch = new Float64Array(WIDTH);
/** One series: its points' times, values (the MRR from then on), months; its months with points. */
const seriesT: number[] = [];
const seriesValue: number[] = [];
const seriesMonth: number[] = [];
const withPoints: number[] = [];
const endValue: number[] = [];
const timeline: number[] = [];
const cohortFlags: boolean[] = [];

/** What the series in seriesT/seriesValue adds to each day: emit(day, deltas) (a scratch buffer). */
function contributePoints(n: number, emit: (day: number, deltas: Float64Array) => void): void {
  withPoints.length = 0;
  endValue.length = 0;
  for (let i = 0; i < n; i++) {
    const month = monthOfDay(dayOf(seriesT[i]!));
    seriesMonth[i] = month;
    if (i === 0 || month !== seriesMonth[i - 1]) {
      withPoints.push(month);
      endValue.push(seriesValue[i]!);
    } else endValue[endValue.length - 1] = seriesValue[i]!;
  }
  // The 12-month retention timeline: the months where the value at a month's start (E) or the
  // cohort flag (E eleven months earlier > 0) can change: m, m + 1 and m + 12 for each month m
  // with points. E(m) = the end value of the last month with points before m; the cohort flag of
  // m = the end value of the last month with points at or before m - 12 is > 0; the base is E(m)
  // for the cohort. nrr_base gets each change of the base on the last day before its month.
  // withPoints ascends, so m, m + 1 and m + 12 are three ascending runs: merged, not sorted.
  timeline.length = 0;
  const months = withPoints.length;
  for (let a = 0, b = 0, c = 0; a < months || b < months || c < months;) {
    const next = Math.min(
      a < months ? withPoints[a]! : Infinity,
      b < months ? withPoints[b]! + 1 : Infinity,
      c < months ? withPoints[c]! + 12 : Infinity,
    );
    timeline.push(next);
    if (a < months && withPoints[a] === next) a++;
    else if (b < months && withPoints[b]! + 1 === next) b++;
    else c++;
  }
  let previousBase = 0;
  let k = 0;
  let j = 0;
  let p = 0; // index into withPoints for the cohort flags of months with points
  for (let x = 0; x < timeline.length; x++) {
    const m = timeline[x]!;
    if (x > 0 && m === timeline[x - 1]) continue;
    while (k < withPoints.length && withPoints[k]! < m) k++;
    while (j < withPoints.length && withPoints[j]! <= m - 12) j++;
    const start = k === 0 ? 0 : endValue[k - 1]!;
    const inCohort = j > 0 && endValue[j - 1]! > 0;
    if (p < withPoints.length && withPoints[p] === m) cohortFlags[p++] = inCohort;
    const base = inCohort ? start : 0;
    if (base !== previousBase) {
      scratch.fill(0);
      scratch[12] = base - previousBase;
      emit(firstDayOfMonth(m) - 1, scratch);
      previousBase = base;
    }
  }
  let paidEarlier = false;
  let s0 = 0;
  let paid = false;
  let monthIndex = -1;
  for (let i = 0; i < n; i++) {
    const before = i === 0 ? 0 : seriesValue[i - 1]!;
    const value = seriesValue[i]!;
    if (i === 0 || seriesMonth[i] !== seriesMonth[i - 1]) {
      s0 = before;
      paid = paidEarlier;
      monthIndex++;
    }
    scratch.fill(0);
    scratch[0] = value - before;
    scratch[1] = (value > 0 ? 1 : 0) - (before > 0 ? 1 : 0);
    movements(scratch, 1, value, s0, paid);
    movements(scratch, -1, before, s0, paid);
    if (cohortFlags[monthIndex]) scratch[13] = value - before;
    emit(dayOf(seriesT[i]!), scratch);
    if (value > 0) paidEarlier = true;
  }
}

const order: number[] = [];

/**
 * The deltas of deltasOf as series, one per dimension (plan, feature) with points: each in
 * seriesT/seriesValue (the level from then on), handed to onSeries with its length. Deltas at one
 * time add up; a time where they cancel out is no point.
 */
function groupDeltas(onSeries: (plan: number, feature: number, points: number) => void): void {
  const n = deltaCount;
  order.length = n;
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort(
    (a, b) => deltaPlan[a]! - deltaPlan[b]! || deltaFeature[a]! - deltaFeature[b]! || deltaT[a]! - deltaT[b]!,
  );
  for (let at = 0; at < n;) {
    const plan = deltaPlan[order[at]!]!;
    const feature = deltaFeature[order[at]!]!;
    let points = 0;
    let level = 0;
    while (at < n && deltaPlan[order[at]!] === plan && deltaFeature[order[at]!] === feature) {
      const t = deltaT[order[at]!]!;
      let delta = 0;
      while (
        at < n &&
        deltaPlan[order[at]!] === plan &&
        deltaFeature[order[at]!] === feature &&
        deltaT[order[at]!] === t
      )
        delta = exact(delta + deltaValue[order[at++]!]!);
      if (delta === 0) continue;
      level = exact(level + delta);
      seriesT[points] = t;
      seriesValue[points++] = level;
    }
    if (points > 0) onSeries(plan, feature, points);
  }
}

/** Adds sign × everything this customer contributes to the sink (its region and region '*'). */
export function contribute(input: CustomerInput, dims: Dimensions, sink: Sink, sign: 1 | -1): void {
  deltasOf(input, dims);
  if (deltaCount === 0) return;
  const region = dims.region(input.region);
  let own: Slot;
  let all: Slot;
  const emit = (day: number, deltas: Float64Array) => {
    own.add(day, deltas, sign);
    all.add(day, deltas, sign);
  };
  groupDeltas((plan, feature, points) => {
    own = sink.slot(plan, feature, region);
    all = sink.slot(plan, feature, 0);
    contributePoints(points, emit);
  });
}

// A customer's MRR as step functions, one per dimension, kept between runs: counting a customer
// again after a few of its subscriptions changed patches these (patchSeries) instead of deriving
// every subscription's changes again, and counts only the dimensions those subscriptions touch.

/** One dimension of a customer's MRR: at each t (ms, ascending) the level from then on. */
export interface Series {
  plan: string;
  feature: string;
  t: number[];
  level: number[];
}

/** A customer's series by dimension (seriesKey); never changed once built (patches copy). */
export type CustomerSeries = ReadonlyMap<string, Series>;

/** A dimension's key: a plan id or ANY, a feature id or ANY. */
export const seriesKey = (plan: string, feature: string): string => `${plan} ${feature}`;

/** The customer's series in every dimension. */
export function seriesOf(input: { subscriptions: readonly EngineSubscription[] }): CustomerSeries {
  const dims = new Dimensions();
  deltasOf(input, dims);
  const series = new Map<string, Series>();
  groupDeltas((plan, feature, points) => {
    const planId = dims.plans[plan]!;
    const featureId = dims.features[feature]!;
    series.set(seriesKey(planId, featureId), {
      plan: planId,
      feature: featureId,
      t: seriesT.slice(0, points),
      level: seriesValue.slice(0, points),
    });
  });
  return series;
}

/**
 * The dimensions a subscription counts in (seriesKey): any plan and each plan of its versions,
 * each by any feature and by each of its features. A change of the subscription changes nothing
 * in the customer's other dimensions.
 */
export function dimensionsOf(subscription: EngineSubscription, into: Set<string>): void {
  const plans = [ANY];
  for (const v of subscription.versions) if (v.planId !== null) plans.push(v.planId);
  const features = [ANY, ...subscription.features];
  for (const plan of plans) for (const feature of features) into.add(seriesKey(plan, feature));
}

/** Whether a subscription counts in a dimension (dimensionsOf, for one dimension, allocating nothing). */
export function countsIn(subscription: EngineSubscription, plan: string, feature: string): boolean {
  return (
    (plan === ANY || subscription.versions.some((v) => v.planId === plan)) &&
    (feature === ANY || subscription.features.includes(feature))
  );
}

/**
 * The series once `removed` subscriptions (as they were counted) are taken out and `added` ones
 * put in: their deltas merged into the affected dimensions, the same points a count of the
 * changed input would give (deltas at one time add up, and cancelled ones are no point). With
 * `only` (a read of one dimension), the answer has that dimension's series alone.
 */
export function patchSeries(
  before: CustomerSeries,
  removed: readonly EngineSubscription[],
  added: readonly EngineSubscription[],
  only?: { plan: string; feature: string },
): CustomerSeries {
  const changes = new Map<string, { plan: string; feature: string; t: number[]; delta: number[] }>();
  const dims = new Dimensions();
  for (const [subscriptions, sign] of [
    [removed, -1],
    [added, 1],
  ] as const) {
    deltasOf({ subscriptions }, dims);
    for (let i = 0; i < deltaCount; i++) {
      const plan = dims.plans[deltaPlan[i]!]!;
      const feature = dims.features[deltaFeature[i]!]!;
      if (only && (plan !== only.plan || feature !== only.feature)) continue;
      const key = seriesKey(plan, feature);
      let change = changes.get(key);
      if (!change) changes.set(key, (change = { plan, feature, t: [], delta: [] }));
      change.t.push(deltaT[i]!);
      change.delta.push(sign * deltaValue[i]!);
    }
  }
  let after: Map<string, Series>;
  if (only) {
    const key = seriesKey(only.plan, only.feature);
    const kept = before.get(key);
    after = new Map(kept ? [[key, kept]] : []);
  } else after = new Map(before);
  for (const [key, change] of changes) {
    const old = before.get(key);
    const byTime = change.t.map((_, i) => i).sort((a, b) => change.t[a]! - change.t[b]!);
    const t: number[] = [];
    const level: number[] = [];
    let current = 0;
    // Merge the old points (as deltas) with the changes, both in time order.
    let i = 0;
    let j = 0;
    const oldLength = old?.t.length ?? 0;
    while (i < oldLength || j < byTime.length) {
      const at = Math.min(
        i < oldLength ? old!.t[i]! : Infinity,
        j < byTime.length ? change.t[byTime[j]!]! : Infinity,
      );
      let delta = 0;
      while (i < oldLength && old!.t[i] === at) {
        delta = exact(delta + old!.level[i]! - (i === 0 ? 0 : old!.level[i - 1]!));
        i++;
      }
      while (j < byTime.length && change.t[byTime[j]!] === at)
        delta = exact(delta + change.delta[byTime[j++]!]!);
      if (delta === 0) continue;
      current = exact(current + delta);
      t.push(at);
      level.push(current);
    }
    if (t.length > 0) after.set(key, { plan: change.plan, feature: change.feature, t, level });
    else after.delete(key);
  }
  return after;
}

/**
 * Adds sign × what these series contribute to the sink, as `contribute` does for the input they
 * were built from: in every dimension, or only in `only` (seriesKey).
 */
export function contributeSeries(
  series: CustomerSeries,
  region: string,
  dims: Dimensions,
  sink: Sink,
  sign: 1 | -1,
  only?: ReadonlySet<string>,
): void {
  const own = dims.region(region);
  let mine: Slot;
  let all: Slot;
  const emit = (day: number, deltas: Float64Array) => {
    mine.add(day, deltas, sign);
    all.add(day, deltas, sign);
  };
  const each = (s: Series) => {
    const plan = dims.plan(s.plan);
    const feature = dims.feature(s.feature);
    mine = sink.slot(plan, feature, own);
    all = sink.slot(plan, feature, 0);
    for (let i = 0; i < s.t.length; i++) {
      seriesT[i] = s.t[i]!;
      seriesValue[i] = s.level[i]!;
    }
    contributePoints(s.t.length, emit);
  };
  if (only) {
    for (const key of only) {
      const s = series.get(key);
      if (s) each(s);
    }
  } else for (const s of series.values()) each(s);
}

/** A series' contributions, as contributePoints emits them: days, and WIDTH deltas each. */
interface Emits {
  days: number[];
  deltas: number[];
}
const emitsBefore: Emits = { days: [], deltas: [] };
const emitsNow: Emits = { days: [], deltas: [] };
const changeDeltas = new Float64Array(WIDTH);

function emitsOf(s: Series, into: Emits): Emits {
  into.days.length = 0;
  into.deltas.length = 0;
  for (let i = 0; i < s.t.length; i++) {
    seriesT[i] = s.t[i]!;
    seriesValue[i] = s.level[i]!;
  }
  contributePoints(s.t.length, (day, deltas) => {
    into.days.push(day);
    for (let k = 0; k < WIDTH; k++) into.deltas.push(deltas[k]!);
  });
  return into;
}

const sameDeltas = (a: Emits, i: number, b: Emits, j: number): boolean => {
  for (let k = 0; k < WIDTH; k++) if (a.deltas[i * WIDTH + k] !== b.deltas[j * WIDTH + k]) return false;
  return true;
};

/**
 * What a customer adds now minus what it added before, in one region, in the dimensions `only`
 * (or every one): the same sums as contributeSeries(before, -1) then contributeSeries(now, 1).
 * A contribution both make (the same day, the same deltas) is left out instead of added and
 * taken away: a change on day D leaves most of the days before D as they were, and compaction
 * spent most of its time adding and taking away those.
 */
export function contributeChange(
  before: CustomerSeries,
  now: CustomerSeries,
  region: string,
  dims: Dimensions,
  sink: Sink,
  only?: ReadonlySet<string>,
): void {
  const own = dims.region(region);
  const change = (key: string) => {
    const was = before.get(key);
    const is = now.get(key);
    const some = (was ?? is)!;
    const plan = dims.plan(some.plan);
    const feature = dims.feature(some.feature);
    const mine = sink.slot(plan, feature, own);
    const all = sink.slot(plan, feature, 0);
    const b = was ? emitsOf(was, emitsBefore) : undefined;
    const n = is ? emitsOf(is, emitsNow) : undefined;
    // Each contribution now, by day, until one before matches it.
    const open = new Map<number, number[]>();
    n?.days.forEach((day, j) => {
      const list = open.get(day);
      if (list) list.push(j);
      else open.set(day, [j]);
    });
    const add = (e: Emits, i: number, sign: number) => {
      for (let k = 0; k < WIDTH; k++) changeDeltas[k] = e.deltas[i * WIDTH + k]!;
      mine.add(e.days[i]!, changeDeltas, sign);
      all.add(e.days[i]!, changeDeltas, sign);
    };
    if (b)
      for (let i = 0; i < b.days.length; i++) {
        const list = open.get(b.days[i]!);
        const at = list && n ? list.findIndex((j) => sameDeltas(b, i, n, j)) : -1;
        if (at >= 0) list!.splice(at, 1);
        else add(b, i, -1);
      }
    if (n) for (const list of open.values()) for (const j of list) add(n, j, 1);
  };
  if (only) {
    for (const key of only) if (before.has(key) || now.has(key)) change(key);
  } else for (const key of new Set([...before.keys(), ...now.keys()])) change(key);
}

/**
 * Days from 1970-01-01 plus this are non-negative back to 0001-01-01 (719,162 days before), the
 * earliest date the API takes, and the one before it: the block index of a day. A multiple of 256.
 */
const DAY_OFFSET = 2_817 * 256;
const NOWHERE: Slot = { add() {} };
const BLOCK_SHIFT = 8;
const BLOCK_DAYS = 1 << BLOCK_SHIFT;

/**
 * Sums of contributions per dimension, region and day, exact: cents and counts as integers in
 * doubles, checked to stay within 2^53 (a sum beyond it throws rather than rounds). Each
 * (dimension, region) has blocks of 256 days × 14 sums, allocated where days have data: a series
 * finds its slot once, then adding is array indexing.
 */
export class Buckets implements Sink {
  /** (plan × 4096 + feature) × 1024 + region → the slot. */
  readonly #slots = new Map<number, BucketSlot>();
  readonly #allFromRegions: boolean;
  readonly #arena = new BlockArena();
  #summed = false;

  /**
   * With allFromRegions, what is added to region '*' (0) is dropped, and region '*' is summed
   * from the other regions when the cells are read: for a count of every customer, half the
   * additions. A sink that receives only some regions (a filtered read) must not use it.
   */
  constructor(options: { allFromRegions?: boolean } = {}) {
    this.#allFromRegions = options.allFromRegions === true;
  }

  slot(plan: number, feature: number, region: number): Slot {
    if (region === 0 && this.#allFromRegions) return NOWHERE;
    return this.#slotOf(plan, feature, region);
  }

  #slotOf(plan: number, feature: number, region: number): BucketSlot {
    const key = (plan * 4096 + feature) * 1024 + region;
    let slot = this.#slots.get(key);
    if (!slot) this.#slots.set(key, (slot = new BucketSlot(plan, feature, region, this.#arena)));
    return slot;
  }

  /** Region '*' of every dimension, as the sum of the other regions' slots. */
  #sumRegions(): void {
    for (const slot of [...this.#slots.values()]) {
      const all = this.#slotOf(slot.plan, slot.feature, 0);
      for (const [b, { sums, touched }] of slot.blocks) all.addBlock(b, sums, touched);
    }
  }

  /** Every cell that is not all zeros: (plan, feature, region, day) and its 14 sums. */
  *cells(): Generator<{ plan: number; feature: number; region: number; day: number; values: Float64Array }> {
    if (this.#allFromRegions && !this.#summed) {
      this.#sumRegions();
      this.#summed = true;
    }
    for (const slot of this.#slots.values()) {
      // The blocks a slot has, in day order.
      for (const b of [...slot.blocks.keys()].sort((x, y) => x - y)) {
        const { sums: block, touched } = slot.blocks.get(b)!;
        for (let i = 0; i < BLOCK_DAYS; i++) {
          if (touched[i] === 0) continue;
          let empty = true;
          for (let c = i * WIDTH; c < (i + 1) * WIDTH && empty; c++) empty = block[c] === 0;
          if (empty) continue;
          yield {
            plan: slot.plan,
            feature: slot.feature,
            region: slot.region,
            day: b * BLOCK_DAYS + i - DAY_OFFSET,
            values: block.subarray(i * WIDTH, (i + 1) * WIDTH),
          };
        }
      }
    }
  }
}

const EMPTY_SUMS = new Float64Array(0);
const EMPTY_TOUCHED = new Uint8Array(0);

/**
 * Blocks handed out from larger buffers: a whole tenant's count allocates thousands of blocks (a
 * few per slot), and a typed array of their own each (28 KB, outside V8's heap: an allocation, and
 * garbage collections triggered by external memory) was a tenth of the counting thread's profile.
 */
class BlockArena {
  /** Blocks per buffer: doubling from 1 (a read of a few customers needs a few) up to 32. */
  #size = 0;
  #sums = new Float64Array(0);
  #touched = new Uint8Array(0);
  #next = 0;

  block(): { sums: Float64Array; touched: Uint8Array } {
    if (this.#next === this.#size) {
      this.#size = Math.min(32, Math.max(1, this.#size * 2));
      this.#sums = new Float64Array(this.#size * BLOCK_DAYS * WIDTH);
      this.#touched = new Uint8Array(this.#size * BLOCK_DAYS);
      this.#next = 0;
    }
    const i = this.#next++;
    return {
      sums: this.#sums.subarray(i * BLOCK_DAYS * WIDTH, (i + 1) * BLOCK_DAYS * WIDTH),
      touched: this.#touched.subarray(i * BLOCK_DAYS, (i + 1) * BLOCK_DAYS),
    };
  }
}

/**
 * One dimension and region: blocks of 256 days × 14 sums, by (day + DAY_OFFSET) / 256. A series
 * adds to a few days in a row of one block, so the last block used is kept at hand; the others are
 * in a Map (an array indexed from year 1 would be sparse, and V8 makes such an array a dictionary).
 */
class BucketSlot implements Slot {
  /** The blocks by index: the sums, and the days something was added to (1). */
  readonly blocks = new Map<number, { sums: Float64Array; touched: Uint8Array }>();
  /** The block last added to: a series adds to a few days in a row, mostly of one block. */
  #index = -1;
  #sums: Float64Array = EMPTY_SUMS;
  #touched: Uint8Array = EMPTY_TOUCHED;
  constructor(
    readonly plan: number,
    readonly feature: number,
    readonly region: number,
    private readonly arena: BlockArena,
  ) {}

  /** Makes block b the one at hand (allocated if new). */
  #select(b: number): void {
    let block = this.blocks.get(b);
    if (!block) {
      block = this.arena.block();
      this.blocks.set(b, block);
    }
    this.#index = b;
    this.#sums = block.sums;
    this.#touched = block.touched;
  }

  /** Adds another slot's block b (its sums and the days it touched). */
  addBlock(b: number, sums: Float64Array, touchedDays: Uint8Array): void {
    if (b !== this.#index) this.#select(b);
    const block = this.#sums;
    const touched = this.#touched;
    for (let i = 0; i < BLOCK_DAYS; i++) {
      if (touchedDays[i] === 0) continue;
      touched[i] = 1;
      for (let c = i * WIDTH; c < (i + 1) * WIDTH; c++) {
        const sum = block[c]! + sums[c]!;
        if (!Number.isSafeInteger(sum)) throw new MrrRangeError();
        block[c] = sum;
      }
    }
  }

  add(day: number, deltas: Float64Array, sign: number): void {
    const d = day + DAY_OFFSET;
    if (d >> BLOCK_SHIFT !== this.#index) this.#select(d >> BLOCK_SHIFT);
    const sums = this.#sums;
    this.#touched[d & (BLOCK_DAYS - 1)] = 1;
    const at = (d & (BLOCK_DAYS - 1)) * WIDTH;
    for (let i = 0; i < WIDTH; i++) {
      const delta = deltas[i]!;
      if (delta !== 0) {
        // Integers in, so an integer sum: only its size needs checking (cheaper than isSafeInteger).
        const sum = sums[at + i]! + sign * delta;
        if (sum > Number.MAX_SAFE_INTEGER || sum < -Number.MAX_SAFE_INTEGER) throw new MrrRangeError();
        sums[at + i] = sum;
      }
    }
  }
}

/** mrr_days cells as parallel arrays (one per column), for unnest. */
export interface DayRows {
  plan: string[];
  feature: string[];
  region: string[];
  day: string[];
  columns: string[][];
}

/**
 * A day as PostgreSQL reads a date: 'YYYY-MM-DD', and five digits past 9999 (the day after an
 * end_date of 9999-12-31), where toISOString would write '+010000-01-01'.
 */
export function isoDate(day: number): string {
  const date = new Date(day * DAY_MS);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${String(date.getUTCFullYear()).padStart(4, '0')}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/** The day of a 'YYYY-MM-DD' date (five-digit years too). */
export function dayFromIso(date: string): number {
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const at = new Date(0);
  at.setUTCFullYear(year, month - 1, day);
  return at.getTime() / DAY_MS;
}

/**
 * The first day of the month before the current one (UTC). Reads sum whole months before the
 * current one, so a cell of an earlier month can move to its month's first day: a month of daily
 * rows becomes one, and the sums a read sees stay the same. The month before the current one stays
 * daily, so that a clock that is a little ahead of the database's never moves a day of the
 * current month.
 */
export function collapseCutoff(now = Date.now()): number {
  return firstDayOfMonth(monthOfDay(dayOf(now)) - 1);
}

/** Where a day's cell goes in the rows: its month's first day before the cutoff, itself after. */
export const storedDay = (day: number, cutoff: number): number =>
  day < cutoff ? firstDayOfMonth(monthOfDay(day)) : day;

/**
 * The buckets' non-zero cells with the days of months before `cutoff` summed on their month's
 * first day (see collapseCutoff): each cell's slot and stored day, and its sums (a buffer reused
 * from cell to cell: copy what is kept). MrrRangeError when a sum, or a month's on the way, passes
 * 2^53.
 */
function* collapsedCells(
  buckets: Buckets,
  cutoff: number,
): Generator<{ plan: number; feature: number; region: number; day: number; values: Float64Array }> {
  const sum = new Float64Array(WIDTH);
  const open = { plan: 0, feature: 0, region: 0, day: 0, values: sum };
  let any = false;
  // Cells come slot by slot, each slot's days in order: a run of one slot and stored day is summed.
  for (const cell of buckets.cells()) {
    const day = storedDay(cell.day, cutoff);
    if (
      !any ||
      open.plan !== cell.plan ||
      open.feature !== cell.feature ||
      open.region !== cell.region ||
      open.day !== day
    ) {
      if (any && !sum.every((v) => v === 0)) yield open;
      any = true;
      open.plan = cell.plan;
      open.feature = cell.feature;
      open.region = cell.region;
      open.day = day;
      sum.fill(0);
    }
    // Each partial sum too: a month's days may pass 2^53 on the way and come back (analytics7 #1).
    for (let i = 0; i < WIDTH; i++) sum[i] = exact(sum[i]! + cell.values[i]!);
  }
  if (any && !sum.every((v) => v === 0)) yield open;
}

/**
 * The buckets' non-zero cells, as rows: ids and names from the run's dimensions, days as dates,
 * the days of months before `cutoff` summed on their month's first day (see collapseCutoff).
 */
export function toDayRows(buckets: Buckets, dims: Dimensions, cutoff = collapseCutoff()): DayRows {
  const rows: DayRows = { plan: [], feature: [], region: [], day: [], columns: COLUMNS.map(() => []) };
  for (const cell of collapsedCells(buckets, cutoff)) {
    rows.plan.push(dims.plans[cell.plan]!);
    rows.feature.push(dims.features[cell.feature]!);
    rows.region.push(dims.regions[cell.region]!);
    rows.day.push(isoDate(cell.day));
    for (let i = 0; i < WIDTH; i++) rows.columns[i]!.push(String(cell.values[i]));
  }
  return rows;
}

/**
 * Sums packed for another thread: the run's dimension names, and per non-zero cell (collapsed as
 * toDayRows does) plan, feature, region, day and the 14 sums in one Float64Array, which a
 * postMessage can transfer instead of copying a row of strings per cell.
 */
export interface PackedCells {
  plans: string[];
  features: string[];
  regions: string[];
  cells: Float64Array;
}
const PACKED_WIDTH = 4 + WIDTH;

export function packCells(buckets: Buckets, dims: Dimensions, cutoff: number): PackedCells {
  let cells = new Float64Array(PACKED_WIDTH * 4096);
  let n = 0;
  for (const cell of collapsedCells(buckets, cutoff)) {
    if ((n + 1) * PACKED_WIDTH > cells.length) {
      const larger = new Float64Array(cells.length * 2);
      larger.set(cells);
      cells = larger;
    }
    const at = n++ * PACKED_WIDTH;
    cells[at] = cell.plan;
    cells[at + 1] = cell.feature;
    cells[at + 2] = cell.region;
    cells[at + 3] = cell.day;
    cells.set(cell.values, at + 4);
  }
  return {
    plans: dims.plans,
    features: dims.features,
    regions: dims.regions,
    cells: cells.slice(0, n * PACKED_WIDTH),
  };
}

/** Each packed cell: its plan, feature and region by name, its day, and its 14 sums (a view). */
export function forEachPackedCell(
  packed: PackedCells,
  each: (plan: string, feature: string, region: string, day: number, values: Float64Array) => void,
): void {
  const { cells } = packed;
  for (let at = 0; at < cells.length; at += PACKED_WIDTH)
    each(
      packed.plans[cells[at]!]!,
      packed.features[cells[at + 1]!]!,
      packed.regions[cells[at + 2]!]!,
      cells[at + 3]!,
      cells.subarray(at + 4, at + PACKED_WIDTH),
    );
}

/** Adds packed cells (another run's sums) into these buckets, their names mapped to these dimensions. */
export function addPackedCells(packed: PackedCells, dims: Dimensions, buckets: Buckets): void {
  const plans = packed.plans.map((id) => dims.plan(id));
  const features = packed.features.map((id) => dims.feature(id));
  const regions = packed.regions.map((name) => dims.region(name));
  const { cells } = packed;
  for (let at = 0; at < cells.length; at += PACKED_WIDTH) {
    buckets
      .slot(plans[cells[at]!]!, features[cells[at + 1]!]!, regions[cells[at + 2]!]!)
      .add(cells[at + 3]!, cells.subarray(at + 4, at + PACKED_WIDTH), 1);
  }
}
