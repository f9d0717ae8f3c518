// An independent recomputation of the subscription metrics (README, "Subscription metrics"),
// from the base tables and the event history only, never the maintained aggregates: each
// subscription's status, price and plan over time come from its events (or, for rows written
// without events, such as the seed's, from the row itself), evaluated at each month's edges.
// Exact: money in integer cents, ratios rounded half-up from exact fractions.
import { sql } from 'kysely';
import type { Schemas } from '../../src/contract.js';
import type { Db } from '../../src/database/connection.js';

interface Version {
  at: number;
  status: string;
  cents: bigint;
  planId: string | null;
}

interface Sub {
  id: string;
  userId: string;
  region: string | null;
  start: number;
  /** The first instant no longer served: end_date + 1 day, 00:00 UTC. */
  end: number | null;
  canceledAt: number | null;
  features: Set<string>;
  history: Version[];
}

export interface Filter {
  plan_id?: string;
  feature_id?: string;
  region?: string;
}

const DAY = 86_400_000;
const utc = (date: string) => Date.parse(`${date}T00:00:00Z`);

/** Cents of a decimal string ('12.30' → 1230n). */
export function cents(amount: string): bigint {
  const [whole = '0', fraction = ''] = amount.replace('-', '').split('.');
  const value = BigInt(whole) * 100n + BigInt((fraction + '00').slice(0, 2));
  return amount.startsWith('-') ? -value : value;
}
const money = (value: bigint) => {
  const sign = value < 0n ? '-' : '';
  const text = (value < 0n ? -value : value).toString().padStart(3, '0');
  return `${sign}${text.slice(0, -2)}.${text.slice(-2)}`;
};
/** n ÷ d rounded half-up (n ≥ 0, d > 0). */
const divide = (n: bigint, d: bigint) => (2n * n + d) / (2n * d);
const ratio = (n: bigint, d: bigint): string | null => {
  if (d === 0n) return null;
  const r = divide(n * 10_000n, d)
    .toString()
    .padStart(5, '0');
  return `${r.slice(0, -4)}.${r.slice(-4)}`;
};

type Discount = Schemas['Discount'] | null;

/**
 * A price per period as cents per month, rounded half-up: net of a recurring discount (repeating
 * or forever; a once discount reduces one invoice, not the price), of the subscription's plan or
 * for any plan. A percentage is taken of the price, half up to the cent; an amount, at most it.
 */
const monthly = (
  planCost: string,
  interval: string,
  count: number,
  discount: Discount,
  planId: string | null,
) => {
  const price = cents(planCost);
  let off = 0n;
  if (
    discount &&
    discount.duration !== 'once' &&
    (discount.plan_ids.length === 0 || (planId !== null && discount.plan_ids.includes(planId)))
  ) {
    if (discount.percent_off !== null) {
      const [whole = '0', fraction = ''] = discount.percent_off.split('.');
      const basisPoints = BigInt(whole) * 100n + BigInt((fraction + '00').slice(0, 2));
      off = divide(price * basisPoints, 10_000n);
    } else {
      off = cents(discount.amount_off!);
    }
    if (off > price) off = price;
  }
  return divide(price - off, BigInt(count * (interval === 'year' ? 12 : 1)));
};

/** Everything the recomputation needs, read from the tables (as the owner, one tenant). */
export async function loadTenant(db: Db, tenantId: string): Promise<Sub[]> {
  const subs = await db
    .selectFrom('subscriptions as s')
    .innerJoin('users as u', (j) =>
      j.onRef('u.id', '=', 's.user_id').onRef('u.tenant_id', '=', 's.tenant_id'),
    )
    .select([
      's.id',
      's.user_id',
      'u.region',
      's.start_date',
      's.end_date',
      's.canceled_at',
      's.status',
      's.plan_cost',
      's.billing_interval',
      's.interval_count',
      's.plan_id',
      's.discount',
      's.created_at',
    ])
    .where('s.tenant_id', '=', tenantId)
    .where('s.test_clock_id', 'is', null)
    .execute();
  const links = await db
    .selectFrom('subscription_features')
    .select(['subscription_id', 'feature_id'])
    .where('tenant_id', '=', tenantId)
    .execute();
  const { rows: events } = await sql<{
    type: string;
    resource_id: string;
    occurred_at: Date;
    data: Schemas['Subscription'];
    previous: Partial<Schemas['Subscription']> | null;
  }>`
    select type, resource_id, occurred_at, data, previous from events
    where tenant_id = ${tenantId} and type like 'subscription.%' and type <> 'subscription.deleted'
    order by xid, seq`.execute(db);
  // By subscription, so that loading stays linear (the bench recomputes 5,000,000 subscriptions).
  const linked = new Map<string, string[]>();
  for (const l of links) {
    const list = linked.get(l.subscription_id);
    if (list) list.push(l.feature_id);
    else linked.set(l.subscription_id, [l.feature_id]);
  }
  const createdAt = new Map(subs.map((s) => [s.id, s.created_at.getTime()]));
  const version = (at: number, data: Schemas['Subscription'], first: boolean): Version => ({
    at,
    // Created canceled (a past subscription recorded late): active until canceled_at.
    status: first && data.status === 'canceled' ? 'active' : data.status,
    cents: monthly(
      data.plan_cost,
      data.billing_interval,
      data.interval_count,
      data.discount,
      data.plan_id ?? null,
    ),
    planId: data.plan_id ?? null,
  });
  const history = new Map<string, Version[]>();
  for (const e of events) {
    const list = history.get(e.resource_id) ?? [];
    // A subscription written without events (the seed's) and changed through the API since: the
    // first event's `previous` is what it was from its creation until then.
    const created = createdAt.get(e.resource_id);
    if (list.length === 0 && e.type !== 'subscription.created' && created !== undefined)
      list.push(version(created, { ...e.data, ...e.previous }, true));
    list.push(version(e.occurred_at.getTime(), e.data, list.length === 0));
    history.set(e.resource_id, list);
  }
  return subs.map((s) => ({
    id: s.id,
    userId: s.user_id,
    region: s.region,
    start: utc(s.start_date),
    end: s.end_date ? utc(s.end_date) + DAY : null,
    canceledAt: s.canceled_at?.getTime() ?? null,
    features: new Set(linked.get(s.id) ?? []),
    history: history.get(s.id) ?? [
      {
        at: s.created_at.getTime(),
        // No history: its status since it started, but a canceled one was active until canceled.
        status: s.status === 'canceled' ? 'active' : s.status,
        cents: monthly(s.plan_cost, s.billing_interval, s.interval_count, s.discount, s.plan_id),
        planId: s.plan_id,
      },
    ],
  }));
}

/**
 * A subscription's MRR in cents at instant `t`, just before it (`before`) or at it, within the
 * filter (the plan of the version in effect then).
 */
function valueOf(sub: Sub, t: number, before: boolean, filter: Filter): bigint {
  const inEffect = (at: number) => (before ? at < t : at <= t);
  if (before ? sub.start >= t : sub.start > t) return 0n;
  if (sub.end !== null && (before ? sub.end < t : sub.end <= t)) return 0n;
  if (sub.canceledAt !== null && (before ? sub.canceledAt < t : sub.canceledAt <= t)) return 0n;
  const version = sub.history.filter((v) => inEffect(v.at)).at(-1) ?? sub.history[0]!;
  if (filter.plan_id && version.planId !== filter.plan_id) return 0n;
  return version.status === 'active' || version.status === 'past_due' ? version.cents : 0n;
}

const monthStart = (month: string) => Date.parse(`${month}-01T00:00:00Z`);
const addMonths = (month: string, n: number) => {
  const d = new Date(monthStart(month));
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 7);
};

type Kind = 'new' | 'reactivation' | 'expansion' | 'contraction' | 'churn';

export interface Reference {
  mrr: Schemas['MrrMonth'][];
  churn: Schemas['ChurnMonth'][];
}

/** The months from..to (inclusive, 'YYYY-MM'), measured at `asOf` for the current month. */
export function recompute(all: Sub[], filter: Filter, from: string, to: string, asOf: Date): Reference {
  const subs = all.filter(
    (s) =>
      (!filter.feature_id || s.features.has(filter.feature_id)) &&
      (!filter.region || s.region === filter.region),
  );
  const customers = new Map<string, Sub[]>();
  for (const s of subs) {
    const list = customers.get(s.userId);
    if (list) list.push(s);
    else customers.set(s.userId, [s]);
  }
  const f = (list: Sub[], t: number, before: boolean) =>
    list.reduce((sum, s) => sum + valueOf(s, t, before, filter), 0n);
  const breakpoints = (list: Sub[]) =>
    list
      .flatMap((s) => [s.start, s.end, s.canceledAt, ...s.history.map((v) => v.at)])
      .filter((t) => t !== null);
  const now = asOf.getTime();
  const mrr: Schemas['MrrMonth'][] = [];
  const churn: Schemas['ChurnMonth'][] = [];
  for (let month = from; month <= to; month = addMonths(month, 1)) {
    const start = monthStart(month);
    const complete = monthStart(addMonths(month, 1)) <= now;
    const end = complete ? monthStart(addMonths(month, 1)) : now;
    const cohortAt = monthStart(addMonths(month, -11));
    const m: Record<Kind, { amount: bigint; count: number }> = {
      new: { amount: 0n, count: 0 },
      reactivation: { amount: 0n, count: 0 },
      expansion: { amount: 0n, count: 0 },
      contraction: { amount: 0n, count: 0 },
      churn: { amount: 0n, count: 0 },
    };
    let startMrr = 0n;
    let endMrr = 0n;
    let startCustomers = 0;
    let endCustomers = 0;
    let retained = 0n;
    let cohort = 0n;
    for (const list of customers.values()) {
      const s = f(list, start, true);
      const e = f(list, end, complete);
      startMrr += s;
      endMrr += e;
      if (s > 0n) startCustomers++;
      if (e > 0n) endCustomers++;
      const then = f(list, cohortAt, true);
      if (then > 0n) {
        cohort += then;
        retained += e;
      }
      const add = (kind: Kind, amount: bigint) => {
        m[kind] = { amount: m[kind].amount + amount, count: m[kind].count + 1 };
      };
      if (s === 0n && e > 0n) {
        const paidBefore = breakpoints(list).some((t) => t < start && f(list, t, false) > 0n);
        add(paidBefore ? 'reactivation' : 'new', e);
      } else if (s > 0n && e === 0n) add('churn', -s);
      else if (e > s) add('expansion', e - s);
      else if (e < s) add('contraction', e - s);
    }
    const movement = (kind: Kind) => ({ amount: money(m[kind].amount), customers: m[kind].count });
    const arpa = endCustomers === 0 ? null : money(divide(endMrr, BigInt(endCustomers)));
    const churned = BigInt(m.churn.count);
    mrr.push({
      month,
      complete,
      starting_mrr: money(startMrr),
      mrr: money(endMrr),
      arr: money(12n * endMrr),
      starting_customers: startCustomers,
      customers: endCustomers,
      arpa,
      net_new_mrr: money(endMrr - startMrr),
      movements: {
        new: movement('new'),
        reactivation: movement('reactivation'),
        expansion: movement('expansion'),
        contraction: movement('contraction'),
        churn: movement('churn'),
      },
    });
    churn.push({
      month,
      complete,
      starting_customers: startCustomers,
      churned_customers: m.churn.count,
      customer_churn_rate: ratio(churned, BigInt(startCustomers)),
      starting_mrr: money(startMrr),
      churned_mrr: money(-m.churn.amount),
      contraction_mrr: money(-m.contraction.amount),
      gross_mrr_churn_rate: ratio(-(m.churn.amount + m.contraction.amount), startMrr),
      net_revenue_retention: ratio(
        startMrr + m.expansion.amount + m.contraction.amount + m.churn.amount,
        startMrr,
      ),
      trailing_12m_net_revenue_retention: ratio(retained, cohort),
      arpa,
      ltv:
        churned === 0n || endCustomers === 0
          ? null
          : money(divide(endMrr * BigInt(startCustomers), BigInt(endCustomers) * churned)),
    });
  }
  return { mrr, churn };
}
