// Usage events, recorded exactly once, and what a subscription's usage bills (docs/usage.md).
//
// Recording a batch is one transaction: the events that were recorded before are answered as
// duplicates (and never checked again: a retry a month later still gets its original event);
// the others are checked, and any that breaks a rule refuses the whole batch. The new ones are
// inserted in event_id order (a concurrent batch sharing ids waits on the primary key, then
// skips them), and only the events this transaction inserted are added to the totals. The
// customers' subscriptions are read in share mode first: a renewal closing a period's usage
// (for update) waits for recordings in flight, and recordings after it see the period closed.
import { periodContaining } from '../billing/periods.js';
import {
  billingAnchor,
  dayOf,
  endlessTrial,
  firstUsageDayBilled,
  lastDayServed,
  subscriptionNow,
  trialPeriodOf,
  endedTrialPeriodOf,
} from '../billing/subscription-time.js';
import { formatCents, formatMicros, parseAmount } from '../billing/money.js';
import {
  formatQuantity,
  parseQuantity,
  parseTotal,
  usageAmountBound,
  priceUsage,
  type UsageBreakdownLine,
} from '../billing/usage-pricing.js';
import type {
  BillableMetricRow,
  StoredUsageCharge,
  SubscriptionRow,
  UsageEventRow,
} from '../database/schema.js';
import { findBillableMetricsByCode } from '../queries/billable-metrics.js';
import { usageChargesOf, usageChargesOfCustomers } from '../queries/plans.js';
import { findSubscription, shareLockSubscriptionsOf, updateSubscription } from '../queries/subscriptions.js';
import type { Charge } from '../billing/invoices.js';
import * as usage from '../queries/usage.js';
import { sql } from 'kysely';
import { isDatabaseUnavailable, isForeignKeyViolation } from '../database/errors.js';
import { usageWalletsOf } from '../queries/wallets.js';
import { timeline, usageBlocked } from './wallets.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage, type Tx } from './context.js';
import { MAX_CHARGE_AMOUNT, usagePriceOf } from './usage-charges.js';

/** How far ahead of now (or of the subscription's clock) an event's timestamp may be. */
export const MAX_FUTURE_MS = 5 * 60 * 1000;

export interface UsageEventInput {
  event_id: string;
  /** The customer: user_id, or external_customer_id (the user's external_id), one of them. */
  user_id?: string | undefined;
  external_customer_id?: string | undefined;
  subscription_id?: string | undefined;
  metric: string;
  timestamp?: string | undefined;
  properties?: Record<string, unknown> | undefined;
  cost?: string | undefined;
}

/** What is wrong with one event of the request: its index and a pointer into it ('/metric'). */
export interface EventError {
  index: number;
  field: string;
  message: string;
}

export interface RecordedEvent {
  status: 'created' | 'duplicate';
  event: UsageEventRow;
  metric: string;
}

export type RecordOutcome =
  { kind: 'recorded'; results: RecordedEvent[] } | { kind: 'invalid'; errors: EventError[] };

/** The text a property value is compared and counted as (filters, group_by, unique_count). */
const asText = (value: unknown): string | null =>
  value === undefined || value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);

/**
 * The most bytes (UTF-8) a value the totals are kept by may take: a unique_count value and a
 * group_by value are in unique indexes (usage_totals, usage_unique_values), whose entries
 * PostgreSQL refuses past about 2,700 bytes. A property of 1,000 characters may take 4,000.
 */
const MOST_VALUE_BYTES = 1000;
const overLong = (text: string | null) =>
  text !== null && text.length * 3 > MOST_VALUE_BYTES && Buffer.byteLength(text) > MOST_VALUE_BYTES;
const OVER_LONG = `is over ${MOST_VALUE_BYTES.toLocaleString('en-US')} bytes in UTF-8, the most a value the metric counts by (its unique_count field or its group_by) may take`;

/** A numeric property as an exact non-negative decimal with up to 6 places, or why not. */
function decimalValue(value: unknown): { value: string } | { error: string } {
  // A JSON number past 2^53 was rounded by the parser before we saw it: refuse it, not its rounding.
  if (typeof value === 'number' && Math.abs(value) > Number.MAX_SAFE_INTEGER)
    return { error: 'is a number too large to be exact in JSON (2^53 or more): send it as a decimal string' };
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value;
  if (typeof text !== 'string') return { error: 'must be a number or a decimal string' };
  try {
    return { value: formatQuantity(parseQuantity(text)) };
  } catch {
    return { error: 'must be a non-negative decimal with at most 6 decimals and 18 integer digits' };
  }
}

/**
 * An event's own property: one it does not carry is undefined, whatever its name (`constructor`,
 * `toString` and `__proto__` would otherwise read the members every object inherits).
 */
const propertyOf = (properties: Record<string, unknown>, name: string): unknown =>
  Object.hasOwn(properties, name) ? properties[name] : undefined;

const matchesFilters = (metric: BillableMetricRow, properties: Record<string, unknown>) =>
  Object.entries(metric.filters).every(([property, values]) => {
    const text = asText(propertyOf(properties, property));
    return text !== null && values.includes(text);
  });

/** Whether the subscription serves the day: started, and not ended before it. */
function serves(subscription: SubscriptionRow, day: string): boolean {
  if (day < subscription.start_date) return false;
  const ended = lastDayServed(subscription);
  return !ended || day <= ended.lastDay;
}

export async function recordUsageEvents(
  ctx: ServiceContext,
  actor: Actor,
  inputs: readonly UsageEventInput[],
): Promise<RecordOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { results, errors } = await recordInTransaction(ctx, actor, inputs, { each: false });
      return errors.length > 0
        ? { kind: 'invalid', errors }
        : { kind: 'recorded', results: results as RecordedEvent[] };
    } catch (error) {
      // Refused after writing (a charge over its limit): the transaction rolled back, nothing stays.
      if (error instanceof UsageRefused) return { kind: 'invalid', errors: error.errors };
      // A metric, customer or subscription deleted by a transaction that committed between our
      // reads and our insert: read again, which refuses the event with its own 422 (it answered
      // 409 "still referenced", which the operation does not declare, for a row that was gone).
      if (attempt === 1 && isForeignKeyViolation(error)) continue;
      throw error;
    }
  }
}

export type RecordOneOutcome =
  { kind: 'recorded'; result: RecordedEvent } | { kind: 'invalid'; errors: EventError[] };

/**
 * Records one event, in a group commit: while recordings of the key's single events are in flight,
 * the events that arrive for it wait, then go together in one transaction. Alone, an event goes at
 * once; under load, the round trips and the commit of one transaction are shared by many events.
 * Each request gets the answer it would get alone: an event refused before writing is left out
 * of its group, and a group that fails as a whole (a charge over its limit, a conflict) is
 * recorded again one event per transaction. An event_id already waiting in the group waits for
 * the next one, which then answers it as the duplicate it is.
 */
export function recordUsageEvent(
  ctx: ServiceContext,
  actor: Actor,
  input: UsageEventInput,
): Promise<RecordOneOutcome> {
  let byKey = groupQueues.get(ctx);
  if (!byKey) groupQueues.set(ctx, (byKey = new Map<string, GroupQueue>()));
  // One key is one tenant and one scope: its events can share a transaction.
  let queue = byKey.get(actor.keyId);
  if (!queue) byKey.set(actor.keyId, (queue = { inFlight: 0, waiting: [] }));
  const waiting = queue;
  return new Promise((resolve, reject) => {
    waiting.waiting.push({ input, actor, resolve, reject });
    startGroups(ctx, byKey, actor.keyId, waiting);
  });
}

/** Groups of one key recorded at the same time (a second one keeps the database busy meanwhile). */
const GROUPS_IN_FLIGHT = 2;
/** The most events in one group: a batch's limit. */
const GROUP_SIZE = 1000;

interface WaitingEvent {
  input: UsageEventInput;
  actor: Actor;
  resolve: (outcome: RecordOneOutcome) => void;
  reject: (error: unknown) => void;
}
interface GroupQueue {
  inFlight: number;
  waiting: WaitingEvent[];
}
const groupQueues = new WeakMap<ServiceContext, Map<string, GroupQueue>>();

function startGroups(ctx: ServiceContext, byKey: Map<string, GroupQueue>, keyId: string, queue: GroupQueue) {
  while (queue.inFlight < GROUPS_IN_FLIGHT && queue.waiting.length > 0) {
    const group: WaitingEvent[] = [];
    const eventIds = new Set<string>();
    const later: WaitingEvent[] = [];
    for (const waiting of queue.waiting) {
      if (group.length < GROUP_SIZE && !eventIds.has(waiting.input.event_id)) {
        group.push(waiting);
        eventIds.add(waiting.input.event_id);
      } else later.push(waiting);
    }
    queue.waiting = later;
    queue.inFlight += 1;
    void recordGroup(ctx, group).finally(() => {
      queue.inFlight -= 1;
      if (queue.inFlight === 0 && queue.waiting.length === 0) byKey.delete(keyId);
      else startGroups(ctx, byKey, keyId, queue);
    });
  }
}

async function recordGroup(ctx: ServiceContext, group: readonly WaitingEvent[]): Promise<void> {
  if (group.length > 1) {
    try {
      const { results, errors } = await recordInTransaction(
        ctx,
        group[0]!.actor,
        group.map((w) => w.input),
        {
          each: true,
        },
      );
      group.forEach((waiting, i) => {
        const result = results[i];
        if (result) waiting.resolve({ kind: 'recorded', result });
        else
          waiting.resolve({
            kind: 'invalid',
            errors: errors.filter((e) => e.index === i).map((e) => ({ ...e, index: 0 })),
          });
      });
      return;
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        for (const waiting of group) waiting.reject(error);
        return;
      }
      // Rolled back as a whole: one transaction per event below, as if each had come alone.
    }
  }
  await Promise.all(
    group.map((waiting) =>
      recordUsageEvents(ctx, waiting.actor, [waiting.input]).then(
        (outcome) =>
          waiting.resolve(
            outcome.kind === 'invalid' ? outcome : { kind: 'recorded', result: outcome.results[0]! },
          ),
        waiting.reject,
      ),
    ),
  );
}

class UsageRefused extends Error {
  constructor(readonly errors: EventError[]) {
    super('usage refused');
  }
}

/** What one transaction recorded: each input's result, or (with `each`) undefined for those refused. */
interface Recording {
  results: Array<RecordedEvent | undefined>;
  /** Every refusal found before writing; without `each`, nothing was recorded when there is one. */
  errors: EventError[];
}

/**
 * Each event's customer as a user id: user_id as given, or the user whose external_id is the
 * event's external_customer_id (one query, only when an event names one). An event naming no
 * customer, both kinds, or an external id no user has is refused (its user_id stays unset).
 */
async function resolveCustomers(
  tx: Tx,
  inputs: readonly UsageEventInput[],
): Promise<{ inputs: readonly UsageEventInput[]; errors: EventError[] }> {
  const errors: EventError[] = [];
  const external = [
    ...new Set(inputs.flatMap((e) => (e.external_customer_id === undefined ? [] : [e.external_customer_id]))),
  ];
  if (external.length === 0) {
    inputs.forEach((e, index) => {
      if (e.user_id === undefined)
        errors.push({ index, field: '/user_id', message: 'user_id or external_customer_id is required' });
    });
    return { inputs, errors };
  }
  const { rows } = await sql<{ id: string; external_id: string }>`
    select id, external_id from users where external_id = any(${external}::text[])`.execute(tx.db);
  const ids = new Map(rows.map((r) => [r.external_id, r.id]));
  const resolved = inputs.map((e, index) => {
    if (e.external_customer_id === undefined) {
      if (e.user_id === undefined)
        errors.push({ index, field: '/user_id', message: 'user_id or external_customer_id is required' });
      return e;
    }
    if (e.user_id !== undefined) {
      errors.push({
        index,
        field: '/external_customer_id',
        message: 'give user_id or external_customer_id, not both',
      });
      return e;
    }
    const id = ids.get(e.external_customer_id);
    if (id === undefined)
      errors.push({
        index,
        field: '/external_customer_id',
        message: `no customer has the external_id ${e.external_customer_id}`,
      });
    return { ...e, user_id: id };
  });
  return { inputs: resolved, errors };
}

/**
 * Records the inputs in one transaction. Without `each`, one refusal refuses them all (a batch);
 * with it (a group of single events, whose event_ids are distinct), the events refused before
 * writing are left out and the others recorded. A refusal after writing throws UsageRefused.
 */
function recordInTransaction(
  ctx: ServiceContext,
  actor: Actor,
  given: readonly UsageEventInput[],
  { each }: { each: boolean },
) {
  return inTenant(ctx, actor, async (tx): Promise<Recording> => {
    const { inputs: byUser, errors: customerErrors } = await resolveCustomers(tx, given);
    const inputs = byUser as ReadonlyArray<UsageEventInput & { user_id: string }>;
    const unresolved = new Set(customerErrors.map((e) => e.index));
    const userIds = [...new Set(inputs.flatMap((e, i) => (unresolved.has(i) ? [] : [e.user_id])))];
    // Independent reads, sent together: one round trip instead of four (most requests carry one
    // event, so these round trips were most of its time). They cover every event of the request,
    // duplicates too; only the new ones use them.
    const [found, metrics, users, subscriptions, charges, paying] = await Promise.all([
      usage.findEventsByEventId(tx.db, [...new Set(inputs.map((e) => e.event_id))]),
      findBillableMetricsByCode(tx.db, [...new Set(inputs.map((e) => e.metric))]),
      sql<{ id: string }>`select id from users where id = any(${userIds}::uuid[])`.execute(tx.db),
      // Share mode: a renewal that closes a period's usage waits for this transaction, or we for
      // it (and then see the period closed).
      shareLockSubscriptionsOf(tx.db, userIds),
      usageChargesOfCustomers(tx.db, userIds),
      usageWalletsOf(tx.db, userIds),
    ]);
    const recorded = new Map(found.map((e) => [e.event_id, e]));
    // The first occurrence of each event_id not recorded yet is the one to record.
    const firsts = new Map<string, number>();
    inputs.forEach((e, i) => {
      if (!recorded.has(e.event_id) && !firsts.has(e.event_id)) firsts.set(e.event_id, i);
    });
    // A customer not found matters only for an event to record (a duplicate answers the original).
    const firstIndexes = [...firsts.values()];
    const toPrepare = unresolved.size ? firstIndexes.filter((i) => !unresolved.has(i)) : firstIndexes;
    const knownUsers = new Set(users.rows.map((u) => u.id));
    const prepared = prepareEvents({ metrics, knownUsers, subscriptions, charges }, inputs, toPrepare);
    if (prepared.closed.length > 0) await explainNeverBilled(tx, prepared.closed);
    // Customers whose prepaid credits are used up, in a wallet that blocks their usage: refused.
    // An event is in the timeline of the subscription it counts for (real time if none).
    const blocked = await usageBlocked(tx, paying);
    const clockOf = new Map(subscriptions.map((s) => [s.id, s.test_clock_id]));
    const blockedBy = (e: { user_id: string; subscription_id: string | null }) =>
      blocked.get(timeline(e.user_id, e.subscription_id ? (clockOf.get(e.subscription_id) ?? null) : null));
    const errors = [
      ...customerErrors.filter((e) => firstIndexes.includes(e.index)),
      ...prepared.errors,
      ...prepared.events.flatMap((e, i) => {
        const wallet = blocked.size > 0 ? blockedBy(e) : undefined;
        return wallet
          ? [
              {
                index: prepared.indexes[i]!,
                field: '/user_id',
                message: `the customer's prepaid credits are used up, and their wallet ${wallet} blocks usage until credits are added`,
              },
            ]
          : [];
      }),
    ];
    if (errors.length > 0 && !each) return { results: [], errors };
    const refused = new Set(errors.map((e) => e.index));
    const toRecord = prepared.indexes.filter((index) => !refused.has(index));
    const newEvents = prepared.events.filter((_, i) => !refused.has(prepared.indexes[i]!));

    const byEventId = new Map(newEvents.map((e, i) => [e.event_id, i]));
    // Rows built field by field: a batch makes a thousand of them (spreads cost several times more).
    const inserted = (await usage.insertNewEvents(tx.db, newEvents)).map((made): UsageEventRow => {
      const i = byEventId.get(made.event_id)!;
      const event = newEvents[i]!;
      return {
        id: made.id,
        event_id: event.event_id,
        user_id: event.user_id,
        subscription_id: event.subscription_id,
        billable_metric_id: event.billable_metric_id,
        timestamp: event.timestamp,
        properties: (inputs[toRecord[i]!]!.properties ?? {}) as UsageEventRow['properties'],
        // As numeric(14, 4) writes it, so that a duplicate's answer reads the same.
        cost: event.cost === null ? null : formatMicros(parseAmount(event.cost)),
        value: event.value,
        dimension: event.dimension,
        counted: event.counted,
        period_start: event.period_start,
        received_at: made.received_at,
      };
    });
    const totals = await addToTotals(tx, inserted, prepared.metricsById);
    const over = chargesOverLimit(totals, prepared.charges, prepared.metricsById);
    if (over.length > 0) {
      const indexOf = new Map(newEvents.map((e, i) => [e.event_id, toRecord[i]!]));
      throw new UsageRefused(
        inserted
          .filter((e) =>
            over.some(
              (o) =>
                o.subscription_id === e.subscription_id &&
                o.period_start === e.period_start &&
                o.billable_metric_id === e.billable_metric_id,
            ),
          )
          .map((e) => ({
            index: indexOf.get(e.event_id)!,
            field: '',
            message: `the usage of the period starting ${e.period_start} would bill more than ${MAX_CHARGE_AMOUNT} for one charge of the plan, the most a charge bills a period`,
          })),
      );
    }
    for (const event of inserted) recorded.set(event.event_id, event);
    // Recorded by a concurrent transaction between our look and our insert: duplicates too.
    const missing = toRecord.map((i) => inputs[i]!.event_id).filter((id) => !recorded.has(id));
    for (const event of await usage.findEventsByEventId(tx.db, missing)) recorded.set(event.event_id, event);

    const codes = await metricCodes(tx, [...recorded.values()], prepared.metricsById);
    const created = new Set(inserted.map((e) => e.event_id));
    const results = inputs.map((input, i): RecordedEvent | undefined => {
      if (refused.has(i)) return undefined;
      const event = recorded.get(input.event_id)!;
      const isNew = created.has(input.event_id) && firsts.get(input.event_id) === i;
      return { status: isNew ? 'created' : 'duplicate', event, metric: codes.get(event.billable_metric_id)! };
    });
    return { results, errors };
  });
}

/** The events to insert, checked, and every refusal (with the event's index). */
function prepareEvents(
  read: {
    metrics: BillableMetricRow[];
    knownUsers: Set<string>;
    subscriptions: SubscriptionRow[];
    /** The usage charges of (at least) the plans of these subscriptions, by plan id. */
    charges: Map<string, StoredUsageCharge[]>;
  },
  inputs: ReadonlyArray<UsageEventInput & { user_id: string }>,
  indexes: readonly number[],
): {
  events: usage.NewUsageEvent[];
  /** Each event's index in the request. */
  indexes: number[];
  /** The events refused (none of them is in `events`). */
  errors: EventError[];
  /** The refusals of events in a period closed (not a trial's): some may be periods never billed. */
  closed: ClosedPeriodRefusal[];
  metricsById: Map<string, BillableMetricRow>;
  /** The usage charges of each subscription's plan, by subscription id. */
  charges: Map<string, StoredUsageCharge[]>;
} {
  const errors: EventError[] = [];
  const closed: ClosedPeriodRefusal[] = [];
  const metrics = new Map(read.metrics.map((m) => [m.code, m]));
  const { knownUsers, subscriptions, charges } = read;
  // The plan in force on a day: a change scheduled for a period's start is the plan of the days
  // from then on (the renewal that starts that period makes it; an event may come a little ahead).
  const planOn = (s: SubscriptionRow, day: string) =>
    s.scheduled_change?.plan_id && day >= s.scheduled_change.effective_date
      ? s.scheduled_change.plan_id
      : s.plan_id;
  const charging = (s: SubscriptionRow, metricId: string, day: string) => {
    const plan = planOn(s, day);
    return plan !== null && (charges.get(plan) ?? []).some((c) => c.billable_metric_id === metricId);
  };
  const realNow = new Date();
  const subscriptionsOf = new Map<string, SubscriptionRow[]>();
  for (const s of subscriptions)
    subscriptionsOf.set(s.user_id, [...(subscriptionsOf.get(s.user_id) ?? []), s]);
  // Events of one subscription and day share their period: computed once.
  const periods = new Map<string, { start: string; end: string }>();
  const periodOf = (s: SubscriptionRow, day: string) => {
    const key = `${s.id}|${day}`;
    let period = periods.get(key);
    if (!period) {
      period =
        trialPeriodOf(s, day) ??
        periodContaining(billingAnchor(s), s.billing_interval, s.interval_count, day);
      periods.set(key, period);
    }
    return period;
  };

  const events: usage.NewUsageEvent[] = [];
  const eventIndexes: number[] = [];
  for (const index of indexes) {
    const input = inputs[index]!;
    const fail = (field: string, message: string) => errors.push({ index, field, message });
    const metric = metrics.get(input.metric);
    if (!metric) fail('/metric', `no billable metric has the code ${input.metric}`);
    else if (metric.archived_at !== null) fail('/metric', `the billable metric ${input.metric} is archived`);
    if (!knownUsers.has(input.user_id)) fail('/user_id', `no customer has the id ${input.user_id}`);
    if (!metric || metric.archived_at !== null || !knownUsers.has(input.user_id)) continue;

    const own = subscriptionsOf.get(input.user_id) ?? [];
    const at = (s: SubscriptionRow | undefined) =>
      input.timestamp ? new Date(input.timestamp) : s ? subscriptionNow(s, realNow) : realNow;
    let subscription: SubscriptionRow | undefined;
    if (input.subscription_id !== undefined) {
      subscription = own.find((s) => s.id === input.subscription_id);
      if (!subscription) {
        fail('/subscription_id', `the customer has no subscription with the id ${input.subscription_id}`);
        continue;
      }
    } else {
      const candidates = own.filter((s) => charging(s, metric.id, dayOf(at(s))) && serves(s, dayOf(at(s))));
      if (candidates.length > 1) {
        fail(
          '/subscription_id',
          `${candidates.length} of the customer's subscriptions charge ${metric.code} at this time: name one`,
        );
        continue;
      }
      subscription = candidates[0];
    }
    const timestamp = at(subscription);
    const now = subscription ? subscriptionNow(subscription, realNow) : realNow;
    if (timestamp.getTime() > now.getTime() + MAX_FUTURE_MS) {
      fail('/timestamp', `is more than 5 minutes ahead of now (${now.toISOString()})`);
      continue;
    }
    // A subscription named whose plan does not charge the metric bills it nowhere, as when none
    // of the customer's subscriptions does: kept uncounted (a charge added to the plan later
    // must not bill it, nor could the cap below have checked it).
    if (subscription && !charging(subscription, metric.id, dayOf(timestamp))) subscription = undefined;
    let periodStart: string | null = null;
    if (subscription) {
      const day = dayOf(timestamp);
      if (!serves(subscription, day)) {
        fail(
          '/timestamp',
          day < subscription.start_date
            ? `is before the subscription starts (${subscription.start_date})`
            : `is after the subscription's last day of service (${lastDayServed(subscription)!.lastDay})`,
        );
        continue;
      }
      const period = periodOf(subscription, day);
      if (subscription.usage_invoiced_until !== null && period.start < subscription.usage_invoiced_until) {
        const trial = trialPeriodOf(subscription, day) !== undefined;
        // Served until within this period: no later period of it will bill an adjustment.
        const ended = lastDayServed(subscription);
        fail(
          '/timestamp',
          trial
            ? `falls in the trial, ${period.start} to ${period.end}, whose usage is free and closed since a later period's usage was invoiced`
            : ended && ended.lastDay < period.end
              ? `falls in the period ${period.start} to ${period.end}, the subscription's last (it ends on ${ended.lastDay}), whose usage is invoiced already: no later invoice of it will bill usage, so bill it with a one-off invoice (POST /invoices)`
              : `falls in the period ${period.start} to ${period.end}, whose usage is invoiced already: record it in a later period as an adjustment`,
        );
        if (!trial) closed.push({ error: errors[errors.length - 1]!, subscription, day });
        continue;
      }
      periodStart = period.start;
    }
    const properties = input.properties ?? {};
    let value: string | null = null;
    if (metric.field !== null) {
      const raw = propertyOf(properties, metric.field);
      if (raw === undefined || raw === null) {
        fail(
          `/properties/${metric.field}`,
          `is required by the metric ${metric.code} (${metric.aggregation})`,
        );
        continue;
      }
      if (metric.aggregation === 'unique_count') {
        value = asText(raw);
        if (overLong(value)) {
          fail(`/properties/${metric.field}`, OVER_LONG);
          continue;
        }
      } else {
        const parsed = decimalValue(raw);
        if ('error' in parsed) {
          fail(`/properties/${metric.field}`, parsed.error);
          continue;
        }
        value = parsed.value;
      }
    }
    const dimension = metric.group_by === null ? null : asText(propertyOf(properties, metric.group_by));
    if (overLong(dimension)) {
      fail(`/properties/${metric.group_by!}`, OVER_LONG);
      continue;
    }
    events.push({
      event_id: input.event_id,
      user_id: input.user_id,
      subscription_id: subscription?.id ?? null,
      billable_metric_id: metric.id,
      timestamp,
      properties: JSON.stringify(properties),
      cost: input.cost ?? null,
      value,
      dimension,
      // A trial's usage is free: one without an end has trialed since its start, so nothing
      // recorded for it while it trials is counted (one with an end counts it in its own period).
      counted:
        subscription !== undefined && !endlessTrial(subscription) && matchesFilters(metric, properties),
      period_start: periodStart,
    });
    eventIndexes.push(index);
  }
  return {
    events,
    indexes: eventIndexes,
    errors,
    closed,
    metricsById: new Map([...metrics.values()].map((m) => [m.id, m])),
    // Those of the plan a change is scheduled to as well: its period's events count for them.
    charges: new Map(
      subscriptions.map((s) => [
        s.id,
        [s.plan_id, s.scheduled_change?.plan_id ?? null].flatMap((plan) =>
          plan === null ? [] : (charges.get(plan) ?? []),
        ),
      ]),
    ),
  };
}

/** An event refused because its period's usage is closed. */
interface ClosedPeriodRefusal {
  error: EventError;
  subscription: SubscriptionRow;
  day: string;
}

/**
 * The first day whose usage the subscription's invoices bill, if known: usage before it was never
 * billed, and never will be (a subscription created with its start two or more periods back, or a
 * trial ended early). From its first invoice's period, or before any from billed_until (the period
 * its first invoice will bill).
 */
function usageBilledFrom(
  subscription: SubscriptionRow,
  firstInvoiced: string | undefined,
): string | undefined {
  const first = firstInvoiced ?? subscription.billed_until;
  return first === null ? undefined : firstUsageDayBilled(subscription, first);
}

/**
 * Events refused in a closed period that no invoice ever billed say so, and from which day the
 * subscription's usage is billed, instead of calling it invoiced (read only when refusing).
 */
async function explainNeverBilled(tx: Tx, closed: readonly ClosedPeriodRefusal[]): Promise<void> {
  const firsts = await usage.firstInvoicedPeriods(tx.db, [...new Set(closed.map((c) => c.subscription.id))]);
  for (const { error, subscription, day } of closed) {
    const from = usageBilledFrom(subscription, firsts.get(subscription.id));
    if (from !== undefined && day < from)
      error.message = `is before ${from}, the day from which subscription ${subscription.id}'s usage is billed: no invoice bills usage before it, so it is refused (record it on ${from} or later as an adjustment)`;
  }
}

/** Adds what the newly inserted events count to their totals: all of the metric, and their dimension. */
async function addToTotals(
  tx: Tx,
  inserted: readonly UsageEventRow[],
  metrics: Map<string, BillableMetricRow>,
) {
  const counted = inserted.filter((e) => e.counted);
  const keysOf = (e: UsageEventRow): usage.TotalKey[] => {
    const key = {
      subscription_id: e.subscription_id!,
      billable_metric_id: e.billable_metric_id,
      period_start: e.period_start!,
    };
    return e.dimension === null
      ? [{ ...key, dimension: null }]
      : [
          { ...key, dimension: null },
          { ...key, dimension: e.dimension },
        ];
  };
  const uniques = counted.flatMap((e) =>
    metrics.get(e.billable_metric_id)!.aggregation === 'unique_count'
      ? keysOf(e).map((k) => ({ ...k, value: e.value! }))
      : [],
  );
  const distinct = new Map(uniques.map((u) => [`${usage.totalKeyText(u)}|${u.value}`, u]));
  const fresh = await usage.insertUniqueValues(tx.db, [...distinct.values()]);
  // Sums kept as BigInt while adding, written out once per total (not once per event).
  interface Sum {
    key: usage.TotalKey;
    events: number;
    total: bigint;
    max: bigint | null;
    max_value: string | null;
    latest_value: string | null;
    latest_at: Date | null;
    latest_event_id: string | null;
    unique_values: number;
    cost: bigint;
  }
  const sums = new Map<string, Sum>();
  // Keyed as usage.totalKeyText writes the key, built once per event.
  const sumOf = (text: string, key: () => usage.TotalKey) => {
    let sum = sums.get(text);
    if (!sum) {
      sum = {
        key: key(),
        events: 0,
        total: 0n,
        max: null,
        max_value: null,
        latest_value: null,
        latest_at: null,
        latest_event_id: null,
        unique_values: 0,
        cost: 0n,
      };
      sums.set(text, sum);
    }
    return sum;
  };
  for (const e of counted) {
    const aggregation = metrics.get(e.billable_metric_id)!.aggregation;
    const amount = aggregation === 'sum' || aggregation === 'max' ? parseQuantity(e.value!) : 0n;
    const cost = e.cost === null ? 0n : parseAmount(e.cost);
    const base = `${e.subscription_id!}|${e.billable_metric_id}|${e.period_start!}|`;
    const all = () => ({
      subscription_id: e.subscription_id!,
      billable_metric_id: e.billable_metric_id,
      period_start: e.period_start!,
      dimension: null,
    });
    const targets =
      e.dimension === null
        ? [sumOf(base, all)]
        : [sumOf(base, all), sumOf(`${base}=${e.dimension}`, () => ({ ...all(), dimension: e.dimension }))];
    for (const d of targets) {
      d.events += 1;
      d.cost += cost;
      if (aggregation === 'sum') d.total += amount;
      if (aggregation === 'max' && (d.max === null || amount > d.max)) {
        d.max = amount;
        d.max_value = e.value;
      }
      if (
        aggregation === 'latest' &&
        (d.latest_at === null ||
          e.timestamp > d.latest_at ||
          (e.timestamp.getTime() === d.latest_at.getTime() && e.event_id > d.latest_event_id!))
      ) {
        d.latest_at = e.timestamp;
        d.latest_value = e.value;
        d.latest_event_id = e.event_id;
      }
    }
  }
  for (const u of fresh) sumOf(usage.totalKeyText(u), () => u).unique_values += 1;
  const deltas = [...sums.values()].map((d): usage.TotalDelta => ({
    subscription_id: d.key.subscription_id,
    billable_metric_id: d.key.billable_metric_id,
    period_start: d.key.period_start,
    dimension: d.key.dimension,
    events: d.events,
    total: formatQuantity(d.total),
    max_value: d.max_value,
    latest_value: d.latest_value,
    latest_at: d.latest_at,
    latest_event_id: d.latest_event_id,
    unique_values: d.unique_values,
    cost: formatMicros(d.cost),
  }));
  return usage.addToTotals(tx.db, deltas);
}

/** The totals whose charge would now bill a period more than MAX_CHARGE_AMOUNT. */
function chargesOverLimit(
  totals: ReadonlyArray<usage.TotalKey & usage.TotalRow>,
  charges: Map<string, StoredUsageCharge[]>,
  metrics: Map<string, BillableMetricRow>,
): Array<usage.TotalKey> {
  const limit = parseAmount(MAX_CHARGE_AMOUNT);
  // The limit in exact units (1/10^10, usage-pricing.ts): an exact sum below it rounds to at most the limit.
  const safe = limit * 1_000_000n;
  return totals.filter((total) =>
    (charges.get(total.subscription_id) ?? []).some((charge) => {
      if (
        charge.billable_metric_id !== total.billable_metric_id ||
        charge.dimension_value !== total.dimension
      )
        return false;
      const quantity = quantityOf(metrics.get(total.billable_metric_id)!.aggregation, total);
      const price = usagePriceOf(charge);
      // Most totals are far below the limit: the bound says so without pricing them.
      if (usageAmountBound(price, parseTotal(quantity)) < safe) return false;
      return parseAmount(priceUsage(price, quantity).amount) > limit;
    }),
  );
}

/**
 * Where new charges for a plan would bill one of its subscriptions' periods not invoiced yet more
 * than MAX_CHARGE_AMOUNT (the charges as they are when a period is invoiced price it): one
 * message per charge, by its index in `charges`.
 */
export function chargesOverLimitOnPlan(
  tx: Tx,
  planId: string,
  charges: readonly StoredUsageCharge[],
): Promise<Array<{ index: number; message: string }>> {
  return chargesOverLimitOn(tx, charges, (metricIds) => usage.openTotalsOfPlan(tx.db, planId, metricIds));
}

/**
 * The same for one subscription moving to a plan with these charges: they price its periods not
 * invoiced yet, whose totals its plan so far counted (in dimensions it may not have charged).
 */
export function chargesOverLimitOnSubscription(
  tx: Tx,
  subscriptionId: string,
  charges: readonly StoredUsageCharge[],
): Promise<Array<{ index: number; message: string }>> {
  return chargesOverLimitOn(tx, charges, (metricIds) =>
    usage.openTotalsOfSubscription(tx.db, subscriptionId, metricIds),
  );
}

async function chargesOverLimitOn(
  tx: Tx,
  charges: readonly StoredUsageCharge[],
  openTotals: (metricIds: string[]) => Promise<Array<usage.TotalKey & usage.TotalRow>>,
): Promise<Array<{ index: number; message: string }>> {
  const metricIds = [...new Set(charges.map((c) => c.billable_metric_id))];
  if (metricIds.length === 0) return [];
  const [totals, { rows: metrics }] = await Promise.all([
    openTotals(metricIds),
    sql<BillableMetricRow>`select * from billable_metrics where id = any(${metricIds}::uuid[])`.execute(
      tx.db,
    ),
  ]);
  if (totals.length === 0) return [];
  const bySubscription = new Map(totals.map((t) => [t.subscription_id, [...charges]]));
  const over = chargesOverLimit(totals, bySubscription, new Map(metrics.map((m) => [m.id, m])));
  return charges.flatMap((charge, index) => {
    const hit = over.find(
      (o) => o.billable_metric_id === charge.billable_metric_id && o.dimension === charge.dimension_value,
    );
    return hit
      ? [
          {
            index,
            message: `would bill the usage of subscription ${hit.subscription_id}'s period starting ${hit.period_start}, not invoiced yet, more than ${MAX_CHARGE_AMOUNT}, the most a charge bills a period`,
          },
        ]
      : [];
  });
}

/** The codes of the events' metrics (codes never change). */
async function metricCodes(
  tx: Tx,
  events: readonly UsageEventRow[],
  known: Map<string, BillableMetricRow>,
): Promise<Map<string, string>> {
  const codes = new Map([...known.values()].map((m) => [m.id, m.code]));
  const missing = [...new Set(events.map((e) => e.billable_metric_id))].filter((id) => !codes.has(id));
  if (missing.length > 0) {
    const { rows } = await sql<{ id: string; code: string }>`
      select id, code from billable_metrics where id = any(${missing}::uuid[])`.execute(tx.db);
    for (const row of rows) codes.set(row.id, row.code);
  }
  return codes;
}

export interface UsageEventWithMetric {
  event: UsageEventRow;
  metric: string;
}

export function getUsageEvent(ctx: ServiceContext, actor: Actor, id: string) {
  return inTenant(ctx, actor, async (tx): Promise<UsageEventWithMetric | undefined> => {
    const event = await usage.findEvent(tx.db, id);
    if (!event) return undefined;
    const codes = await metricCodes(tx, [event], new Map());
    return { event, metric: codes.get(event.billable_metric_id)! };
  });
}

export type ListUsageEventsOutcome =
  | { kind: 'page'; page: Page<UsageEventWithMetric> }
  /** A metric filter naming no metric: nothing can match. */
  | { kind: 'empty' };

export function listUsageEvents(
  ctx: ServiceContext,
  actor: Actor,
  filter: Omit<usage.UsageEventFilter, 'billableMetricId'> & { metric?: string | undefined },
): Promise<Page<UsageEventWithMetric>> {
  return inTenant(ctx, actor, async (tx) => {
    let billableMetricId: string | undefined;
    if (filter.metric !== undefined) {
      const [metric] = await findBillableMetricsByCode(tx.db, [filter.metric]);
      if (!metric) return { rows: [], more: false };
      billableMetricId = metric.id;
    }
    const page = toPage(await usage.listEvents(tx.db, { ...filter, billableMetricId }), filter.limit);
    const codes = await metricCodes(tx, page.rows, new Map());
    return {
      more: page.more,
      rows: page.rows.map((event) => ({ event, metric: codes.get(event.billable_metric_id)! })),
    };
  });
}

/** One charge's usage in a period, priced. */
export interface ChargeUsage<C = StoredUsageCharge> {
  charge: C;
  aggregation: BillableMetricRow['aggregation'];
  quantity: string;
  billable_quantity: string;
  amount: string;
  breakdown: UsageBreakdownLine[];
}

/**
 * What each of the plan's usage charges bills for the subscription's period starting on
 * `periodStart`. `planCharges`: the plan's usage charges, when the caller read the plan.
 */
export async function periodUsage(
  tx: Tx,
  subscription: SubscriptionRow,
  periodStart: string,
  planCharges?: StoredUsageCharge[],
): Promise<ChargeUsage[]> {
  if (!subscription.plan_id) return [];
  const charges =
    planCharges ?? (await usageChargesOf(tx.db, [subscription.plan_id])).get(subscription.plan_id) ?? [];
  if (charges.length === 0) return [];
  // Independent reads: one write, one round trip.
  const [totals, { rows: aggregations }] = await Promise.all([
    usage.periodTotals(tx.db, subscription.id, periodStart),
    sql<{ id: string; aggregation: BillableMetricRow['aggregation'] }>`
      select id, aggregation from billable_metrics
      where id = any(${charges.map((c) => c.billable_metric_id)}::uuid[])`.execute(tx.db),
  ]);
  const aggregationOf = new Map(aggregations.map((a) => [a.id, a.aggregation]));
  return charges.map((charge) => {
    const aggregation = aggregationOf.get(charge.billable_metric_id)!;
    const total = totals.find(
      (t) => t.billable_metric_id === charge.billable_metric_id && t.dimension === charge.dimension_value,
    );
    const quantity = total ? quantityOf(aggregation, total) : '0';
    const priced = priceUsage(usagePriceOf(charge), quantity);
    return {
      charge,
      aggregation,
      quantity: priced.quantity,
      billable_quantity: priced.billable_quantity,
      amount: priced.amount,
      breakdown: priced.breakdown,
    };
  });
}

/** A total's quantity under the metric's aggregation, as an exact decimal. */
function quantityOf(aggregation: BillableMetricRow['aggregation'], total: usage.TotalRow): string {
  switch (aggregation) {
    case 'count':
      return total.events;
    case 'sum':
      return formatQuantity(parseTotal(trimNumeric(total.total)));
    case 'max':
      return total.max_value === null ? '0' : formatQuantity(parseQuantity(trimNumeric(total.max_value)));
    case 'latest':
      return total.latest_value === null
        ? '0'
        : formatQuantity(parseQuantity(trimNumeric(total.latest_value)));
    case 'unique_count':
      return total.unique_values;
  }
}

/** numeric as text may carry more than 6 trailing zeros ("12.5000000"): the value has at most 6 decimals. */
const trimNumeric = (text: string) =>
  text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;

export type SubscriptionUsageOutcome =
  | {
      kind: 'usage';
      subscription: SubscriptionRow;
      period: { start: string; end: string };
      /** The period is a trial's (one with an end, or one without an end still trialing): its usage is free, never invoiced. */
      trial: boolean;
      invoiced: boolean;
      charges: BilledCharge[];
      amount: string;
    }
  | { kind: 'missing' }
  | { kind: 'no-such-period'; message: string }
  /** A period before the first day whose usage is billed: its usage is never invoiced. */
  | { kind: 'never-billed'; period: { start: string; end: string }; billedFrom: string };

/** A subscription's usage in its current period (on its clock), or the one starting on `periodStart`. */
export function getSubscriptionUsage(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  periodStart?: string,
): Promise<SubscriptionUsageOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<SubscriptionUsageOutcome> => {
    const subscription = await findSubscription(tx.db, subscriptionId);
    if (!subscription) return { kind: 'missing' };
    const today = dayOf(subscriptionNow(subscription));
    const { start_date: start, billing_interval: interval, interval_count: count } = subscription;
    let day = periodStart ?? today;
    if (periodStart === undefined) {
      // The current period; for an ended subscription its last one, before its start its first.
      const ended = lastDayServed(subscription);
      if (ended && ended.lastDay < day) day = ended.lastDay;
      if (day < start) day = start;
    } else if (periodStart < start) {
      return { kind: 'no-such-period', message: `the subscription starts on ${start}` };
    } else if (periodStart > today) {
      return { kind: 'no-such-period', message: `${periodStart} is in the future (today is ${today})` };
    }
    // A trial, running or ended early: its own period, before the schedule its end anchored.
    const trial = trialPeriodOf(subscription, day) ?? endedTrialPeriodOf(subscription, day);
    const period = trial ?? periodContaining(billingAnchor(subscription), interval, count, day);
    // Trialing without an end: free since the start, as long as it trials (nothing is counted).
    const free = trial !== undefined || endlessTrial(subscription);
    if (periodStart !== undefined && period.start !== periodStart) {
      return {
        kind: 'no-such-period',
        message: `no billing period starts on ${periodStart}; the one containing it starts on ${period.start}`,
      };
    }
    const invoiced =
      trial === undefined &&
      subscription.usage_invoiced_until !== null &&
      period.start < subscription.usage_invoiced_until;
    if (invoiced) {
      // Closed, but maybe never billed: not invoiced, and never to be.
      const firsts = await usage.firstInvoicedPeriods(tx.db, [subscription.id]);
      const from = usageBilledFrom(subscription, firsts.get(subscription.id));
      if (from !== undefined && period.start < from)
        return { kind: 'never-billed', period, billedFrom: from };
    }
    // An invoiced period is what its invoice billed: the plan's charges may have changed since.
    const charges = invoiced
      ? await billedCharges(tx, subscription.id, period.start)
      : await periodUsage(tx, subscription, period.start);
    const total = charges.reduce((sum, c) => sum + parseAmount(c.amount), 0n);
    return {
      kind: 'usage',
      subscription,
      period,
      trial: free,
      invoiced,
      charges,
      amount: formatCents(total),
    };
  });
}

/** A charge as an invoice line names it. */
type BilledCharge = ChargeUsage<Pick<StoredUsageCharge, 'metric' | 'billable_metric_id' | 'dimension_value'>>;

/**
 * A period's charges as its invoice billed them, before prepaid credits paid part of them (a line
 * paid by credits keeps the rest as its amount). None when no invoice billed the period's usage
 * (its plan charged none then).
 */
async function billedCharges(tx: Tx, subscriptionId: string, periodStart: string): Promise<BilledCharge[]> {
  const lines = ((await usage.billedUsageLines(tx.db, subscriptionId, periodStart)) ?? []) as Charge[];
  const billed = lines.filter(
    (l) => l.type === 'usage' && l.usage !== null && l.period_start === periodStart,
  );
  if (billed.length === 0) return [];
  const { rows } = await sql<{ id: string; aggregation: BillableMetricRow['aggregation'] }>`
    select id, aggregation from billable_metrics
    where id = any(${[...new Set(billed.map((l) => l.usage!.billable_metric_id))]}::uuid[])`.execute(tx.db);
  const aggregationOf = new Map(rows.map((r) => [r.id, r.aggregation]));
  return billed.map((line) => {
    const u = line.usage!;
    const paid = line.credits_applied ? parseAmount(line.credits_applied.amount) : 0n;
    return {
      charge: {
        metric: u.metric,
        billable_metric_id: u.billable_metric_id,
        dimension_value: u.dimension_value,
      },
      aggregation: aggregationOf.get(u.billable_metric_id)!,
      quantity: u.quantity,
      billable_quantity: u.billable_quantity,
      amount: formatCents(parseAmount(line.amount) + paid),
      breakdown: u.breakdown,
    };
  });
}

/**
 * Whether the invoice of the period starting on `periodStart` bills usage of a period before it:
 * not the first period's, nor the one after a trial (the trial's usage is free).
 */
export const billsUsageBefore = (
  subscription: Pick<SubscriptionRow, 'start_date' | 'trial_end'>,
  periodStart: string,
): boolean =>
  periodStart > subscription.start_date &&
  (subscription.trial_end === null || periodStart > subscription.trial_end);

/**
 * The invoice lines of the usage of the period before the one starting on `periodStart` (none for
 * the first period, or a plan without usage charges), and that period's usage closed: events for
 * it are refused from now on. On a subscription locked for update (invoiceForPeriod). `planCharges`:
 * its plan's usage charges, when the caller read the plan.
 */
export async function closeUsageBefore(
  tx: Tx,
  subscription: SubscriptionRow,
  periodStart: string,
  planCharges?: StoredUsageCharge[],
): Promise<Charge[]> {
  if (!billsUsageBefore(subscription, periodStart)) return [];
  // Closed already, and not by an invoice of this period (it would be the one found): its usage
  // is never billed (before the first day billed, a trial ended early) or was closed without an
  // invoice. Billing it now would bill a period before the start, or its minimum, for nothing.
  if (subscription.usage_invoiced_until !== null && subscription.usage_invoiced_until >= periodStart)
    return [];
  // The period before closes whatever its plan charges now: a charge added to the plan later
  // must not count late events into it, which no invoice would ever bill.
  await updateSubscription(tx.db, subscription.id, { usage_invoiced_until: periodStart });
  if (!subscription.plan_id) return [];
  const previous = periodContaining(
    billingAnchor(subscription),
    subscription.billing_interval,
    subscription.interval_count,
    dayBefore(periodStart),
  );
  const charges = await periodUsage(tx, subscription, previous.start, planCharges);
  return charges.map((c) => ({
    type: 'usage' as const,
    description: `${c.charge.metric}${c.charge.dimension_value === null ? '' : ` (${c.charge.dimension_value})`} usage, ${previous.start} to ${previous.end}`,
    amount: c.amount,
    quantity: 1,
    breakdown: [],
    period_start: previous.start,
    period_end: previous.end,
    usage: {
      metric: c.charge.metric,
      billable_metric_id: c.charge.billable_metric_id,
      dimension_value: c.charge.dimension_value,
      quantity: c.quantity,
      billable_quantity: c.billable_quantity,
      breakdown: c.breakdown,
    },
    credits_applied: null,
  }));
}

const dayBefore = (date: string) => dayOf(new Date(new Date(`${date}T00:00:00Z`).getTime() - 86_400_000));
