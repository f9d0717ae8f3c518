// The demo data of db/seeds is made in SQL for speed; these check that it is what the API itself
// would have made: prices from the plan versions, periods, invoice amounts and taxes, numbers.
import { readdirSync, readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { invoiceAmounts } from '../../src/billing/invoices.js';
import { periodContaining } from '../../src/billing/periods.js';
import type { Schemas } from '../../src/contract.js';
import { withTenant } from '../../src/database/connection.js';
import { planVersions } from '../../src/queries/plans.js';
import { ratesInForce } from '../../src/queries/tax-rates.js';
import { priceSubscription } from '../../src/services/plans.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { loadTenant, recompute } from '../helpers/mrr-reference.js';

const ctx = useTestApp();
let t: TestTenant;
const ROWS = 6000;

beforeAll(async () => {
  t = await ctx.newTenant();
  for (const file of readdirSync('db/seeds')
    .filter((f) => f.endsWith('.sql'))
    .sort()) {
    await ctx.db.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${t.id}, true), set_config('seed.rows', ${String(ROWS)}, true),
        set_config('seed.users', ${String(ROWS / 3)}, true)`.execute(trx);
      await sql.raw(readFileSync(`db/seeds/${file}`, 'utf8')).execute(trx);
    });
  }
});

const inTenant = <T>(work: Parameters<typeof withTenant<T>>[2]) =>
  withTenant(ctx.appDb, { tenantId: t.id }, work);

describe('the seeded plans and subscriptions', () => {
  it('price every plan subscription as the API does, from the version in force on its start date', async () => {
    const { subscriptions, versions } = await inTenant(async (db) => {
      const subscriptions = await db
        .selectFrom('subscriptions')
        .select([
          'id',
          'plan_id',
          'plan_version_id',
          'quantity',
          'plan_cost',
          'price_breakdown',
          'start_date',
        ])
        .where('plan_id', 'is not', null)
        .execute();
      const plans = await db.selectFrom('plans').select('id').execute();
      return {
        subscriptions,
        versions: await planVersions(
          db,
          plans.map((p) => p.id),
        ),
      };
    });
    expect(subscriptions.length).toBeGreaterThan(ROWS * 0.8);
    const byId = new Map(versions.map((v) => [v.id, v]));
    const models = new Set<string>();
    for (const s of subscriptions) {
      const version = byId.get(s.plan_version_id!)!;
      models.add(version.price_model);
      const expected = priceSubscription(s.plan_id!, version, s.quantity);
      expect(s.plan_cost).toBe(expected.plan_cost);
      expect(s.price_breakdown).toEqual(JSON.parse(expected.price_breakdown));
      // The version in force on the start date: the newest one created on or before it.
      const inForce = versions
        .filter((v) => v.plan_id === s.plan_id && v.created_at.toISOString().slice(0, 10) <= s.start_date)
        .sort((a, b) => b.number - a.number)[0];
      expect(version.id).toBe(inForce?.id);
    }
    expect([...models].sort()).toEqual(['flat', 'tiered']);
    // Every version prices some: standard-monthly's version 1 the subscriptions from before its
    // price rise, version 2 the newer ones.
    expect(new Set(subscriptions.map((s) => s.plan_version_id)).size).toBe(versions.length);
    expect(versions.filter((v) => v.number === 2).map((v) => v.amount)).toEqual(['21.9900']);
  });

  it('serve through the API, valid against the spec', async () => {
    const res = await t.api.get('/api/v1/plans?limit=100');
    expect(res.status).toBe(200);
    const plans = (res.body as Schemas['PlanList']).data;
    expect(plans.map((p) => p.code)).toContain('team-seats');
    expect(plans.find((p) => p.code === 'standard-monthly')?.price_version).toBe(2);
  });
});

describe('the seeded invoices', () => {
  it('carry the amounts, taxes and periods the API would have computed, numbered without gaps', async () => {
    const { invoices, counter } = await inTenant(async (db) => ({
      invoices: await db
        .selectFrom('invoices as i')
        .innerJoin('subscriptions as s', 's.id', 'i.subscription_id')
        .select([
          'i.number',
          'i.status',
          'i.period_start',
          'i.period_end',
          'i.region',
          'i.lines',
          'i.subtotal',
          'i.taxes',
          'i.tax_total',
          'i.total',
          's.start_date',
          's.billing_interval',
          's.interval_count',
          's.plan_cost',
          's.quantity',
          's.price_breakdown',
        ])
        .orderBy('i.number')
        .execute(),
      counter: await db.selectFrom('invoice_counters').select('last_number').executeTakeFirst(),
    }));
    expect(invoices.length).toBeGreaterThan(100);
    expect(invoices.map((i) => Number(i.number))).toEqual(invoices.map((_, n) => n + 1));
    expect(Number(counter?.last_number)).toBe(invoices.length);

    const regions = new Set<string | null>();
    for (const i of invoices) {
      regions.add(i.region);
      expect(periodContaining(i.start_date, i.billing_interval, i.interval_count, i.period_start)).toEqual({
        start: i.period_start,
        end: i.period_end,
      });
      const rates = i.region ? await inTenant((db) => ratesInForce(db, i.region!, i.period_start)) : [];
      const snapshot = i.price_breakdown as { breakdown?: unknown[] } | null;
      const expected = invoiceAmounts(
        [
          {
            type: 'subscription',
            description: '',
            amount: i.plan_cost,
            quantity: i.quantity,
            breakdown: (snapshot?.breakdown ?? []) as never,
            period_start: i.period_start,
            period_end: i.period_end,
            usage: null,
          },
        ],
        rates,
      );
      const [line] = i.lines as Array<{ description: string }>;
      expect(line?.description).toContain(`${i.period_start} to ${i.period_end}`);
      expect(i.lines).toEqual(expected.lines.map((l) => ({ ...l, description: line?.description })));
      expect(i.taxes).toEqual(expected.taxes);
      expect([i.subtotal, i.tax_total, i.total]).toEqual([
        expected.subtotal,
        expected.tax_total,
        expected.total,
      ]);
    }
    expect([...regions].sort()).toEqual(['DE', 'GB', 'US-CA', null]);
  });

  it('show the historical rate change in the tax report, month by month', async () => {
    const month = (d: Date) => `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    const now = new Date();
    const to = month(now);
    const from = month(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 12, 1)));
    const res = await t.api.get(`/api/v1/reports/taxes?from=${from}&to=${to}`);
    expect(res.status).toBe(200);
    const report = res.body as Schemas['TaxReport'];
    // The rate each month's California invoices carry, and their tax, straight from the snapshots.
    const { rows } = await inTenant((db) =>
      sql<{ month: string; percentages: string[]; tax: string; n: number }>`
        select to_char(invoice_date, 'YYYY-MM') as month, array_agg(distinct t->>'percentage') as percentages,
               sum((t->>'amount')::numeric)::text as tax, count(*)::int as n
        from invoices, jsonb_array_elements(taxes) t
        where region = 'US-CA' and status <> 'void' group by 1 order by 1`.execute(db),
    );
    expect(rows.length).toBeGreaterThan(6);
    for (const row of rows) {
      expect(row.percentages).toHaveLength(1); // the change falls on the first of a month
      const reported = report.months
        .find((m) => m.month === row.month)
        ?.taxes.find((x) => x.region === 'US-CA');
      expect(reported).toMatchObject({ code: 'SALES', tax_amount: row.tax, invoice_count: row.n });
    }
    const rates = rows.map((r) => r.percentages[0]);
    expect(new Set(rates)).toEqual(new Set(['7.2500', '7.5000']));
    expect(rates).toEqual([...rates].sort()); // the old rate before the new one
  });
});

describe('the seeded rows', () => {
  it('obey the rules the API enforces on the rows it writes', async () => {
    // Each rule: how many rows break it. The API stamps times with now(), in the order things
    // happen: nothing lies in the future, nothing ends before it began, nothing is billed after
    // its cancellation.
    const rules = {
      'subscription canceled in the future': sql`select count(*) from subscriptions where canceled_at > now()`,
      'subscription canceled before it was created': sql`select count(*) from subscriptions where canceled_at < created_at`,
      'subscription created or updated in the future': sql`select count(*) from subscriptions where greatest(created_at, updated_at) > now()`,
      'subscription updated before it was created': sql`select count(*) from subscriptions where updated_at < created_at`,
      'subscription created before its user': sql`select count(*) from subscriptions s join users u on u.id = s.user_id where s.created_at < u.created_at`,
      'subscription priced by a plan version made after it': sql`select count(*) from subscriptions s join plan_versions v on v.id = s.plan_version_id where s.created_at < v.created_at`,
      'subscription ending before it starts': sql`select count(*) from subscriptions where end_date < start_date`,
      'user, feature, plan or tax rate created in the future': sql`select (select count(*) from users where greatest(created_at, updated_at) > now())
        + (select count(*) from features where greatest(created_at, updated_at) > now())
        + (select count(*) from plans where greatest(created_at, updated_at) > now())
        + (select count(*) from plan_versions where created_at > now())
        + (select count(*) from tax_rates where created_at > now())`,
      'invoice dated, finalized, paid, voided or made uncollectible in the future': sql`select count(*) from invoices
        where invoice_date > current_date
           or greatest(created_at, updated_at, finalized_at, paid_at, voided_at, uncollectible_at) > now()`,
      'invoice paid or made uncollectible before it was finalized': sql`select count(*) from invoices
        where paid_at < finalized_at or uncollectible_at < finalized_at`,
      'invoice for a period starting after its subscription was canceled': sql`select count(*) from invoices i
        join subscriptions s on s.id = i.subscription_id where i.period_start >= s.canceled_at::date`,
      'invoice of another user than its subscription': sql`select count(*) from invoices i
        join subscriptions s on s.id = i.subscription_id where i.user_id <> s.user_id`,
      'invoice made before its subscription': sql`select count(*) from invoices i
        join subscriptions s on s.id = i.subscription_id where i.created_at < s.created_at`,
    };
    const broken = await inTenant(async (db) => {
      const counts: Record<string, number> = {};
      for (const [rule, query] of Object.entries(rules)) {
        const { rows } = await sql<{ count: string }>`select (${query}) as count`.execute(db);
        counts[rule] = Number(rows[0]!.count);
      }
      return counts;
    });
    expect(broken).toEqual(Object.fromEntries(Object.keys(rules).map((rule) => [rule, 0])));
  });
});

describe('the seeded subscription metrics', () => {
  it('equal an independent recomputation over three years, for every kind of filter', async () => {
    const month = (offset: number) => {
      const now = new Date();
      return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1))
        .toISOString()
        .slice(0, 7);
    };
    const [from, to] = [month(-36), month(0)];
    const plans = (await t.api.get('/api/v1/plans?limit=100')).body as Schemas['PlanList'];
    const features = (await t.api.get('/api/v1/features?limit=1')).body as Schemas['FeatureList'];
    const subscriptions = await loadTenant(ctx.db, t.id);
    for (const filter of [
      {},
      { plan_id: plans.data.find((p) => p.code === 'standard-monthly')!.id },
      { plan_id: plans.data.find((p) => p.interval === 'year')!.id },
      { feature_id: features.data[0]!.id },
      { region: 'DE' },
    ]) {
      const res = await t.api.get('/api/v1/metrics/mrr').query({ ...filter, from, to });
      expect(res.status, res.text).toBe(200);
      const body = res.body as Schemas['MrrMetrics'];
      const reference = recompute(subscriptions, filter, from, to, new Date(body.as_of));
      expect(body.months, JSON.stringify(filter)).toEqual(reference.mrr);
      const churn = await t.api.get('/api/v1/metrics/churn').query({ ...filter, from, to });
      expect((churn.body as Schemas['ChurnMetrics']).months, JSON.stringify(filter)).toEqual(reference.churn);
    }
    // Three years of a real-looking business: customers, every kind of movement.
    const all = (await t.api.get('/api/v1/metrics/mrr').query({ from, to })).body as Schemas['MrrMetrics'];
    expect(all.months.at(-1)!.customers).toBeGreaterThan(100);
    for (const kind of ['new', 'churn'] as const)
      expect(
        all.months.some((m) => m.movements[kind].customers > 0),
        kind,
      ).toBe(true);
    const consistency = await t.api.get('/api/v1/analytics/consistency');
    expect(consistency.body).toEqual({ consistent: true, differences: [] });
  });
});

describe('the seeded usage', () => {
  it('keeps totals that equal the events, priced by the API, with the earlier periods invoiced', async () => {
    const { rows: events } = await ctx.db.executeQuery<{ subscription_id: string; n: string }>(
      sql`select subscription_id, count(*)::text as n from usage_events where tenant_id = ${t.id}
          group by subscription_id order by count(*) desc`.compile(ctx.db),
    );
    expect(events.length).toBeGreaterThan(10);
    // Every total is what its events add up to (recomputed here independently): one total of all
    // a metric's events per period, and one per value of its group_by.
    const key = (r: { subscription_id: string; billable_metric_id: string; dimension: string | null }) =>
      `${r.subscription_id}|${r.billable_metric_id}|${r.dimension ?? '*'}`;
    type Total = {
      subscription_id: string;
      billable_metric_id: string;
      dimension: string | null;
      events: string;
      total: string;
    };
    const { rows: totals } = await ctx.db.executeQuery<Total>(
      sql`select subscription_id, billable_metric_id, dimension, events::text, total::numeric(30, 6)::text as total
          from usage_totals where tenant_id = ${t.id}`.compile(ctx.db),
    );
    const { rows: all } = await ctx.db.executeQuery<
      Omit<Total, 'events' | 'total'> & { value: string | null }
    >(
      sql`select subscription_id, billable_metric_id, dimension, value from usage_events
          where tenant_id = ${t.id} and counted`.compile(ctx.db),
    );
    const expected = new Map<string, { events: number; total: number }>();
    for (const e of all) {
      for (const k of [key({ ...e, dimension: null }), ...(e.dimension === null ? [] : [key(e)])]) {
        const x = expected.get(k) ?? { events: 0, total: 0 };
        expected.set(k, { events: x.events + 1, total: x.total + Number(e.value ?? 0) });
      }
    }
    expect(
      new Map(totals.map((r) => [key(r), { events: Number(r.events), total: Number(r.total) }])),
    ).toEqual(expected);
    // The busiest subscription that has a period before the current one (a subscription that
    // started in this period has none, and an event before its start belongs to no subscription).
    const { rows: busiestRows } = await ctx.db.executeQuery<{ id: string }>(
      sql`select s.id from subscriptions s join usage_events e on e.tenant_id = s.tenant_id and e.subscription_id = s.id
          where s.tenant_id = ${t.id} and s.usage_invoiced_until > s.start_date
          group by s.id order by count(*) desc, s.id limit 1`.compile(ctx.db),
    );
    const busiest = busiestRows[0]!.id;
    const usage = await t.api.get(`/api/v1/subscriptions/${busiest}/usage`);
    expect(usage.status, usage.text).toBe(200);
    const body = usage.body as Schemas['SubscriptionUsage'];
    expect(body.invoiced).toBe(false);
    expect(body.charges.map((c) => c.metric).sort()).toEqual(['ai-tokens', 'ai-tokens', 'api-calls']);
    const events_ = body.charges.find((c) => c.metric === 'api-calls')!;
    expect(Number(events_.quantity)).toBeGreaterThan(0);
    // The period before the current one is invoiced: an event for it is refused.
    const sub = (await t.api.get(`/api/v1/subscriptions/${busiest}`)).body as Schemas['Subscription'];
    const late = await t.api.post('/api/v1/usage-events').send({
      event_id: 'late-seed-event',
      user_id: sub.user_id,
      metric: 'api-calls',
      timestamp: `${new Date(Date.parse(`${body.period_start}T00:00:00Z`) - 3_600_000).toISOString()}`,
    });
    expect(late.status, late.text).toBe(422);
  });
});
