// Subscription metrics: the worked example of the README with its numbers written out, then the
// API against an independent recomputation from the tables and the event history
// (test/helpers/mrr-reference.ts) on a hand-built tenant full of edge cases and on a random
// concurrent workload, for every filter, plus the window's rules.
import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { startMrrCompaction } from '../../src/jobs/mrr-compaction.js';
import { createLogger } from '../../src/logger.js';
import { compactMetrics } from '../../src/services/metrics.js';
import { checkMrr, rebuildMrr } from '../../src/services/mrr-rebuild.js';
import { encodeInput, everyInput, loadCustomers } from '../../src/analytics/mrr-input.js';
import { createDb, withTenant } from '../../src/database/connection.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';
import { type Filter, loadTenant, recompute } from '../helpers/mrr-reference.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

const currentMonth = () => new Date().toISOString().slice(0, 7);

async function metrics(tenant: TestTenant, query: Filter & { from: string; to: string }) {
  const mrr = await tenant.api.get('/api/v1/metrics/mrr').query(query);
  expect(mrr.status, mrr.text).toBe(200);
  const churn = await tenant.api.get('/api/v1/metrics/churn').query(query);
  expect(churn.status, churn.text).toBe(200);
  return { mrr: mrr.body as Schemas['MrrMetrics'], churn: churn.body as Schemas['ChurnMetrics'] };
}

/** The API's months and the recomputation's, for one filter, compared field for field. */
async function expectAgreement(tenant: TestTenant, filter: Filter, from: string, to = currentMonth()) {
  const api = await metrics(tenant, { ...filter, from, to });
  const reference = recompute(await loadTenant(ctx.db, tenant.id), filter, from, to, new Date(api.mrr.as_of));
  expect(api.mrr.months, JSON.stringify(filter)).toEqual(reference.mrr);
  expect(api.churn.months, JSON.stringify(filter)).toEqual(reference.churn);
  // The identity the movements exist for.
  for (const m of api.mrr.months) {
    const moved = Object.values(m.movements).reduce((sum, x) => sum + Math.round(Number(x.amount) * 100), 0);
    expect(Math.round(Number(m.starting_mrr) * 100) + moved).toBe(Math.round(Number(m.mrr) * 100));
  }
  return api;
}

const dirty = async (tenantId: string) =>
  Number(
    (
      await sql<{ n: string }>`select count(*) as n from mrr_dirty where tenant_id = ${tenantId}`.execute(
        ctx.db,
      )
    ).rows[0]!.n,
  );

const consistent = async (tenant: TestTenant) => {
  const res = await tenant.api.get('/api/v1/analytics/consistency');
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ consistent: true, differences: [] });
};

describe('the worked example of the README', () => {
  it('has the numbers the README shows', async () => {
    const t = await ctx.newTenant();
    const [ada, bob, cy] = [await createUser(t), await createUser(t), await createUser(t)];
    await createSubscription(t, {
      user_id: ada.id,
      plan_cost: '30.00',
      start_date: '2026-01-10',
      end_date: '2026-05-19',
    });
    await createSubscription(t, {
      user_id: ada.id,
      plan_cost: '20.00',
      start_date: '2026-03-15',
      end_date: '2026-05-19',
    });
    await createSubscription(t, {
      user_id: bob.id,
      plan_cost: '1200.00',
      billing_interval: 'year',
      start_date: '2026-02-01',
    });
    await createSubscription(t, { user_id: cy.id, plan_cost: '40.00', start_date: '2026-04-05' });

    const { mrr, churn } = await metrics(t, { from: '2026-01', to: '2026-06' });
    expect(
      mrr.months.map((m) => [
        m.month,
        m.starting_mrr,
        m.mrr,
        m.customers,
        m.movements.new.amount,
        m.movements.expansion.amount,
        m.movements.churn.amount,
      ]),
    ).toEqual([
      ['2026-01', '0.00', '30.00', 1, '30.00', '0.00', '0.00'],
      ['2026-02', '30.00', '130.00', 2, '100.00', '0.00', '0.00'],
      ['2026-03', '130.00', '150.00', 2, '0.00', '20.00', '0.00'],
      ['2026-04', '150.00', '190.00', 3, '40.00', '0.00', '0.00'],
      ['2026-05', '190.00', '140.00', 2, '0.00', '0.00', '-50.00'],
      ['2026-06', '140.00', '140.00', 2, '0.00', '0.00', '0.00'],
    ]);
    expect(mrr.months[4]).toMatchObject({ arr: '1680.00', arpa: '70.00', net_new_mrr: '-50.00' });
    expect(churn.months[4]).toEqual({
      month: '2026-05',
      complete: true,
      starting_customers: 3,
      churned_customers: 1,
      customer_churn_rate: '0.3333',
      starting_mrr: '190.00',
      churned_mrr: '50.00',
      contraction_mrr: '0.00',
      gross_mrr_churn_rate: '0.2632',
      net_revenue_retention: '0.7368',
      trailing_12m_net_revenue_retention: null,
      arpa: '70.00',
      ltv: '210.00',
    });
    // Without churn, LTV is null; the NRR of a month without change is 1.
    expect(churn.months[5]).toMatchObject({
      customer_churn_rate: '0.0000',
      ltv: null,
      net_revenue_retention: '1.0000',
    });
    await expectAgreement(t, {}, '2026-01', '2026-06');
  });
});

describe('the metrics against an independent recomputation', () => {
  it('agree on a tenant of edge cases, for every filter', async () => {
    const t = await ctx.newTenant();
    const plan = async (code: string, interval: 'month' | 'year', amount: string, interval_count = 1) => {
      const res = await t.api
        .post('/api/v1/plans')
        .send({ code, name: code, interval, interval_count, price: { model: 'flat', amount } });
      expect(res.status, res.text).toBe(201);
      return (res.body as Schemas['Plan']).id;
    };
    const monthly = await plan('monthly', 'month', '30.00');
    const cheaper = await plan('cheaper', 'month', '12.00');
    const yearly = await plan('yearly', 'year', '100.00'); // 8.33 a month, rounded per subscription
    const quarterly = await plan('quarterly', 'month', '100.00', 3); // 33.33
    const free = await plan('free', 'month', '0.00');
    const [f1, f2] = [await createFeature(t), await createFeature(t)];
    const user = (region?: string) => createUser(t, region ? { region } : {});
    const sub = async (user_id: string, body: Record<string, unknown>) => {
      const res = await t.api.post('/api/v1/subscriptions').send({ user_id, status: 'active', ...body });
      expect(res.status, res.text).toBe(201);
      return res.body as Schemas['Subscription'];
    };
    const patch = async (id: string, body: Record<string, unknown>) => {
      const res = await t.api.patch(`/api/v1/subscriptions/${id}`).send(body);
      expect(res.status, res.text).toBe(200);
    };

    // Month ends and leap days: a start on Jan 31, a last day on Feb 29.
    const u1 = await user('DE');
    await sub(u1.id, { plan_id: monthly, start_date: '2024-01-31', end_date: '2024-02-29' });
    // A yearly plan from a leap day, ended later by a back-dated end date.
    const u2 = await user('DE');
    const s2 = await sub(u2.id, { plan_id: yearly, start_date: '2024-02-29' });
    await patch(s2.id, { end_date: '2025-03-15' });
    // Rounding per subscription: two quarterly ones and a yearly one, from the 1st.
    const u3 = await user('US-CA');
    await sub(u3.id, { plan_id: quarterly, start_date: '2024-05-01' });
    await sub(u3.id, { plan_id: quarterly, start_date: '2024-05-01' });
    await sub(u3.id, { plan_id: yearly, start_date: '2024-05-01' });
    // Churn, then reactivation.
    const u4 = await user();
    await sub(u4.id, { plan_id: monthly, start_date: '2024-01-01', end_date: '2024-03-31' });
    await sub(u4.id, { plan_id: cheaper, start_date: '2024-07-01' });
    // A free plan is no customer; its first paid plan is new, not a reactivation.
    const u5 = await user();
    await sub(u5.id, { plan_id: free, start_date: '2024-01-01' });
    await sub(u5.id, { plan_id: monthly, start_date: '2024-06-01' });
    // A trial counts nothing until it converts (now).
    const u6 = await user('US-CA');
    const s6 = await sub(u6.id, { plan_id: monthly, start_date: '2024-01-01', status: 'trialing' });
    await patch(s6.id, { status: 'active' });
    // past_due counts; unpaid does not.
    const u7 = await user();
    const s7 = await sub(u7.id, { plan_id: monthly, start_date: '2024-03-01', status: 'past_due' });
    await patch(s7.id, { status: 'unpaid' });
    // A custom price raised now (expansion), and a plan changed to a cheaper one (contraction).
    const u8 = await user('DE');
    const s8 = await sub(u8.id, { plan_cost: '50.00', start_date: '2025-01-15' });
    await patch(s8.id, { plan_cost: '80.00' });
    const u9 = await user('DE');
    const s9 = await sub(u9.id, { plan_id: monthly, start_date: '2025-02-01' });
    await patch(s9.id, { plan_id: cheaper });
    // Canceled now, and a cancellation scheduled for the period's end (still counted).
    const u10 = await user();
    const s10 = await sub(u10.id, { plan_id: monthly, start_date: '2025-04-10' });
    await t.api.post(`/api/v1/subscriptions/${s10.id}/cancel`).send({ at: 'now' }).expect(200);
    const s10b = await sub(u10.id, { plan_id: cheaper, start_date: '2025-04-10' });
    await t.api.post(`/api/v1/subscriptions/${s10b.id}/cancel`).send({ at: 'period_end' }).expect(200);
    // A customer moving region, feature links added and removed.
    const u11 = await user('DE');
    const s11 = await sub(u11.id, { plan_id: monthly, start_date: '2024-09-01' });
    await t.api.patch(`/api/v1/users/${u11.id}`).send({ region: 'FR' }).expect(200);
    await t.api.put(`/api/v1/subscriptions/${s11.id}/features/${f1.id}`).expect(201);
    await t.api.put(`/api/v1/subscriptions/${s11.id}/features/${f2.id}`).expect(201);
    await t.api.delete(`/api/v1/subscriptions/${s11.id}/features/${f2.id}`).expect(204);
    await t.api.put(`/api/v1/subscriptions/${s2.id}/features/${f1.id}`).expect(201);
    await t.api.put(`/api/v1/subscriptions/${s9.id}/features/${f2.id}`).expect(201);
    // A start date back-dated, one in the future, and a deleted subscription.
    const u12 = await user();
    const s12 = await sub(u12.id, { plan_id: monthly, start_date: '2025-06-01' });
    await patch(s12.id, { start_date: '2024-11-20' });
    const nextYear = `${new Date().getUTCFullYear() + 1}-01-01`;
    await sub(u12.id, { plan_id: monthly, start_date: nextYear });
    const gone = await sub(u12.id, { plan_cost: '99.00', start_date: '2024-02-01' });
    await t.api.delete(`/api/v1/subscriptions/${gone.id}`).expect(204);
    // A customer with two subscriptions, one of which ends: a contraction.
    const u13 = await user();
    await sub(u13.id, { plan_id: monthly, start_date: '2024-02-01' });
    await sub(u13.id, { plan_id: cheaper, start_date: '2024-02-01', end_date: '2024-08-31' });
    // Discounts: MRR is net of recurring ones (applied now), not of a once one, and of a coupon
    // for some plans only while the subscription is on one of them (then moved off it).
    const coupon = async (body: Record<string, unknown>) => {
      const res = await t.api.post('/api/v1/coupons').send({ name: 'c', ...body });
      expect(res.status, res.text).toBe(201);
      return (res.body as Schemas['Coupon']).id;
    };
    const u14 = await user('DE');
    await sub(u14.id, {
      plan_id: monthly,
      start_date: '2024-04-01',
      coupon_id: await coupon({ percent_off: '33.33', duration: 'forever' }),
    });
    const s14 = await sub(u14.id, { plan_id: yearly, start_date: '2024-04-01' });
    await t.api
      .post(`/api/v1/subscriptions/${s14.id}/discount`)
      .send({ coupon_id: await coupon({ amount_off: '7.00', duration: 'repeating', duration_in_months: 2 }) })
      .expect(200);
    const u15 = await user();
    await sub(u15.id, {
      plan_id: cheaper,
      start_date: '2024-04-01',
      coupon_id: await coupon({ amount_off: '5.00', duration: 'once' }),
    });
    const s16 = await sub(u15.id, {
      plan_id: monthly,
      start_date: '2024-04-01',
      coupon_id: await coupon({ amount_off: '50.00', duration: 'forever', plan_ids: [monthly] }),
    });
    await patch(s16.id, { plan_id: cheaper });
    // Paused now (counts zero: a churn this month), and one paused and resumed.
    const u17 = await user('DE');
    const s17 = await sub(u17.id, { plan_id: monthly, start_date: '2024-10-01' });
    await t.api.post(`/api/v1/subscriptions/${s17.id}/pause`).expect(200);
    const s18 = await sub(u17.id, { plan_id: cheaper, start_date: '2024-10-01' });
    await t.api.post(`/api/v1/subscriptions/${s18.id}/pause`).expect(200);
    await t.api.post(`/api/v1/subscriptions/${s18.id}/resume`).expect(200);
    // A subscription on a test clock counts nowhere.
    const clock = await t.api
      .post('/api/v1/test-clocks')
      .send({ name: 'sim', frozen_time: '2024-01-01T00:00:00Z' });
    await sub(u13.id, {
      plan_id: monthly,
      start_date: '2024-01-01',
      test_clock_id: (clock.body as Schemas['TestClock']).id,
    });

    const from = '2024-01';
    for (const filter of [
      {},
      { plan_id: monthly },
      { plan_id: cheaper },
      { plan_id: yearly },
      { plan_id: quarterly },
      { plan_id: free },
      { feature_id: f1.id },
      { feature_id: f2.id },
      { region: 'DE' },
      { region: 'FR' },
      { region: 'US-CA' },
      { plan_id: monthly, region: 'DE' },
      { feature_id: f1.id, region: 'FR' },
      { plan_id: cheaper, feature_id: f2.id },
      { plan_id: monthly, feature_id: f1.id, region: 'FR' },
    ]) {
      await expectAgreement(t, filter, from);
    }
    const all = await metrics(t, { from, to: currentMonth() });
    // The edge cases left their marks where expected.
    const month = (m: string) => all.mrr.months.find((x) => x.month === m)!;
    expect(month('2024-01').movements.new).toEqual({ amount: '60.00', customers: 2 });
    expect(month('2024-03').movements.churn.customers).toBeGreaterThanOrEqual(1);
    expect(month('2024-07').movements.reactivation).toEqual({ amount: '12.00', customers: 1 });
    expect(month('2024-05').movements.new.amount).toBe('74.99'); // 33.33 + 33.33 + 8.33
    expect(month(currentMonth()).complete).toBe(false);
    // /analytics reports the same MRR now.
    const analytics = (await t.api.get('/api/v1/analytics')).body as Schemas['Analytics'];
    expect([analytics.mrr, analytics.arr]).toEqual([month(currentMonth()).mrr, month(currentMonth()).arr]);
    await consistent(t);
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('agree after a random concurrent workload, and the consistency check finds nothing', async () => {
    const t = await ctx.newTenant();
    const plans: string[] = [];
    for (const [code, interval, amount] of [
      ['a', 'month', '19.00'],
      ['b', 'month', '49.50'],
      ['c', 'year', '499.00'],
    ] as const) {
      const res = await t.api
        .post('/api/v1/plans')
        .send({ code, name: code, interval, price: { model: 'flat', amount } });
      plans.push((res.body as Schemas['Plan']).id);
    }
    const features = [await createFeature(t), await createFeature(t)];
    const regions = ['DE', 'US-CA', 'GB'];
    const users = await Promise.all(
      Array.from({ length: 12 }, (_, i) => createUser(t, i % 4 === 3 ? {} : { region: regions[i % 3]! })),
    );
    const pick = <T>(list: readonly T[]): T => list[randomInt(list.length)]!;
    const date = () => {
      const d = new Date(Date.UTC(2024, 0, 1) + randomInt(900) * 86_400_000);
      return d.toISOString().slice(0, 10);
    };
    const subs: string[] = [];
    const step = async () => {
      const roll = randomInt(100);
      if (roll < 35 || subs.length < 3) {
        const res = await t.api.post('/api/v1/subscriptions').send({
          user_id: pick(users).id,
          status: pick(['active', 'active', 'trialing', 'past_due']),
          start_date: date(),
          ...(randomInt(3) === 0
            ? { plan_cost: `${randomInt(200)}.${randomInt(100)}` }
            : { plan_id: pick(plans) }),
        });
        if (res.status === 201) subs.push((res.body as Schemas['Subscription']).id);
      } else if (roll < 50) {
        await t.api.patch(`/api/v1/subscriptions/${pick(subs)}`).send({ end_date: date() });
      } else if (roll < 60) {
        await t.api
          .patch(`/api/v1/subscriptions/${pick(subs)}`)
          .send({ status: pick(['active', 'past_due', 'unpaid']) });
      } else if (roll < 68) {
        await t.api.patch(`/api/v1/subscriptions/${pick(subs)}`).send({ plan_id: pick(plans) });
      } else if (roll < 75) {
        await t.api
          .post(`/api/v1/subscriptions/${pick(subs)}/cancel`)
          .send({ at: pick(['now', 'period_end']) });
      } else if (roll < 85) {
        await t.api.put(`/api/v1/subscriptions/${pick(subs)}/features/${pick(features).id}`);
      } else if (roll < 90) {
        await t.api.delete(`/api/v1/subscriptions/${pick(subs)}/features/${pick(features).id}`);
      } else if (roll < 95) {
        await t.api.patch(`/api/v1/users/${pick(users).id}`).send({ region: pick(regions) });
      } else {
        await t.api.delete(`/api/v1/subscriptions/${pick(subs)}`);
      }
    };
    // Six writers at once, with the worker's compaction running meanwhile.
    const compaction = startMrrCompaction(
      { db: ctx.appDb, ownerDb: ctx.db },
      createLogger({ level: 'warn' }),
      20,
    );
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = 0; i < 50; i++) await step();
      }),
    );
    await compaction.stop();
    const filters = [
      {},
      ...plans.map((plan_id) => ({ plan_id })),
      ...features.map((f) => ({ feature_id: f.id })),
      ...regions.map((region) => ({ region })),
      { plan_id: plans[0]!, region: 'DE' },
      { plan_id: plans[1]!, feature_id: features[0]!.id },
    ];
    for (const filter of filters) await expectAgreement(t, filter, '2024-01');
    await consistent(t);
    // Whatever compaction left dirty, reads corrected for; compacted now, they read the same.
    const before = await metrics(t, { from: '2024-01', to: currentMonth() });
    while ((await compactMetrics({ db: ctx.appDb }, t.id, 1000)) > 0);
    expect(await dirty(t.id)).toBe(0);
    const after = await metrics(t, { from: '2024-01', to: currentMonth() });
    expect(after.mrr.months).toEqual(before.mrr.months);
    expect(after.churn.months).toEqual(before.churn.months);
    await consistent(t);
    // Rebuilt from scratch: the same numbers.
    expect((await t.api.post('/api/v1/analytics/rebuild')).body).toEqual({
      consistent: true,
      differences: [],
    });
    const rebuilt = await metrics(t, { from: '2024-01', to: currentMonth() });
    expect(rebuilt.mrr.months).toEqual(before.mrr.months);
    expect(rebuilt.churn.months).toEqual(before.churn.months);
    await consistent(t);
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});

describe('compaction', () => {
  it('counts a changed customer again from the subscriptions that changed, exactly', async () => {
    const t = await ctx.newTenant();
    const plans: string[] = [];
    for (const code of ['small', 'large']) {
      const res = await t.api.post('/api/v1/plans').send({
        code,
        name: code,
        interval: 'month',
        price: { model: 'flat', amount: code === 'small' ? '9.00' : '90.00' },
      });
      plans.push((res.body as Schemas['Plan']).id);
    }
    const features = [await createFeature(t), await createFeature(t)];
    const big = await createUser(t, { region: 'DE' });
    const other = await createUser(t, { region: 'FR' });
    const subs: string[] = [];
    for (let i = 0; i < 24; i++) {
      const res = await t.api.post('/api/v1/subscriptions').send({
        user_id: big.id,
        status: 'active',
        start_date: `2025-${String((i % 12) + 1).padStart(2, '0')}-0${(i % 9) + 1}`,
        ...(i % 3 === 0 ? { plan_cost: `${10 + i}.50` } : { plan_id: plans[i % 2]! }),
      });
      expect(res.status, res.text).toBe(201);
      const id = (res.body as Schemas['Subscription']).id;
      subs.push(id);
      if (i % 4 === 0)
        await t.api.put(`/api/v1/subscriptions/${id}/features/${features[i % 8 === 0 ? 0 : 1]!.id}`);
    }
    await createSubscription(t, { user_id: other.id, start_date: '2025-06-01' });
    while ((await compactMetrics({ db: ctx.appDb }, t.id, 1000)) > 0);

    // Three of the big customer's subscriptions change: a plan, a cancellation, a feature link.
    expect((await t.api.patch(`/api/v1/subscriptions/${subs[1]}`).send({ plan_id: plans[0] })).status).toBe(
      200,
    );
    await t.api.post(`/api/v1/subscriptions/${subs[5]}/cancel`).send({ at: 'now' });
    await t.api.put(`/api/v1/subscriptions/${subs[7]}/features/${features[0]!.id}`);
    const marks = await sql<{ whole: boolean; subscription_id: string }>`
      select d.whole, m.subscription_id from mrr_dirty d
      join mrr_dirty_subscriptions m on m.tenant_id = d.tenant_id and m.user_id = d.user_id
      where d.tenant_id = ${t.id} and d.user_id = ${big.id} order by m.subscription_id`.execute(ctx.db);
    expect(marks.rows).toEqual(
      [subs[1]!, subs[5]!, subs[7]!].sort().map((id) => ({ whole: false, subscription_id: id })),
    );
    const filters: Filter[] = [
      {},
      ...plans.map((plan_id) => ({ plan_id })),
      ...features.map((f) => ({ feature_id: f.id })),
      { region: 'DE' },
      { region: 'FR' },
      { plan_id: plans[1]!, feature_id: features[0]!.id },
    ];
    for (const filter of filters) await expectAgreement(t, filter, '2025-01');
    await consistent(t);

    // A region change moves every dimension of the customer: still exact, then compacted.
    await t.api.patch(`/api/v1/users/${big.id}`).send({ region: 'FR' });
    for (const filter of filters) await expectAgreement(t, filter, '2025-01');
    await consistent(t);
    while ((await compactMetrics({ db: ctx.appDb }, t.id, 1000)) > 0);
    expect(await dirty(t.id)).toBe(0);
    for (const filter of filters) await expectAgreement(t, filter, '2025-01');
    await consistent(t);
  });

  it('keeps reads exact as a waiting customer changes again and again before compaction', async () => {
    // Reads keep each waiting customer's part by its mark's version: a part read before a later
    // change must never be used after it.
    const t = await ctx.newTenant();
    const plan = (
      await t.api.post('/api/v1/plans').send({
        code: 'again',
        name: 'Again',
        interval: 'month',
        price: { model: 'flat', amount: '30.00' },
      })
    ).body as Schemas['Plan'];
    const customer = await createUser(t, { region: 'DE' });
    const first = await createSubscription(t, {
      user_id: customer.id,
      start_date: '2025-03-01',
      plan_cost: '10.00',
    });
    const second = await createSubscription(t, {
      user_id: customer.id,
      start_date: '2025-05-10',
      plan_cost: '20.00',
    });
    while ((await compactMetrics({ db: ctx.appDb }, t.id, 1000)) > 0);
    const filters: Filter[] = [{}, { plan_id: plan.id }, { region: 'DE' }];
    const changes = [
      () => t.api.patch(`/api/v1/subscriptions/${first.id}`).send({ plan_cost: '11.00' }),
      () => t.api.patch(`/api/v1/subscriptions/${first.id}`).send({ plan_cost: '12.50' }),
      () => t.api.patch(`/api/v1/subscriptions/${second.id}`).send({ plan_id: plan.id }),
      () => t.api.patch(`/api/v1/users/${customer.id}`).send({ region: 'FR' }),
      () => t.api.post(`/api/v1/subscriptions/${first.id}/cancel`).send({ at: 'now' }),
    ];
    const seen: string[] = [];
    for (const change of changes) {
      const res = await change();
      expect(res.status, res.text).toBe(200);
      expect(await dirty(t.id)).toBe(1);
      // Twice each: the second read of each filter uses the parts the first one kept.
      for (const filter of [...filters, ...filters]) await expectAgreement(t, filter, '2025-01');
      const all = [];
      for (const filter of filters)
        all.push((await metrics(t, { ...filter, from: '2025-01', to: currentMonth() })).mrr.months);
      seen.push(JSON.stringify(all));
    }
    // Every change moved some filter's numbers, so no read could have passed with another's parts.
    expect(new Set(seen).size).toBe(changes.length);
    await consistent(t);
  });

  it('leaves reads exact while many customers wait, and changes none of the numbers', async () => {
    const t = await ctx.newTenant();
    // 600 customers at once, straight into the tables (a bulk load): each is marked dirty.
    await ctx.db.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(trx);
      await sql`insert into users (name, email) select 'Bulk ' || i, 'bulk-' || i || '@example.com' from generate_series(1, 600) i`.execute(
        trx,
      );
      await sql`insert into subscriptions (user_id, status, plan_cost, start_date)
        select id, 'active', (row_number() over (order by id) % 50) + 0.99, date '2025-01-01' + (row_number() over (order by id))::int
        from users where tenant_id = ${t.id}`.execute(trx);
    });
    expect(await dirty(t.id)).toBe(600);
    // Reads correct for the customers waiting; they do not compact (the worker does).
    const waiting = await expectAgreement(t, {}, '2025-01');
    await consistent(t);
    expect(await dirty(t.id)).toBe(600);
    expect(await compactMetrics({ db: ctx.appDb }, t.id, 1000)).toBe(600);
    expect(await dirty(t.id)).toBe(0);
    const compacted = await expectAgreement(t, {}, '2025-01');
    expect(compacted.mrr.months).toEqual(waiting.mrr.months);
    await consistent(t);
  });

  it('are checked whole while they wait: a change their marks missed is reported', async () => {
    const t = await ctx.newTenant();
    const u = await createUser(t);
    const a = await createSubscription(t, { user_id: u.id, plan_cost: '10.00', start_date: '2025-01-01' });
    const b = await createSubscription(t, { user_id: u.id, plan_cost: '20.00', start_date: '2025-01-01' });
    while ((await compactMetrics({ db: ctx.appDb }, t.id, 1000)) > 0);
    // A change through the API marks the customer, with subscription a only...
    await t.api.patch(`/api/v1/subscriptions/${a.id}`).send({ plan_cost: '15.00' }).expect(200);
    expect(await dirty(t.id)).toBe(1);
    await consistent(t);
    // ...and one behind the triggers' back (a bug the marks would hide) changes b.
    await ctx.db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await sql`update subscription_versions set monthly_amount = 25 where subscription_id = ${b.id}`.execute(
        trx,
      );
    });
    const res = await t.api.get('/api/v1/analytics/consistency').expect(200);
    const report = res.body as Schemas['AnalyticsConsistency'];
    expect(report.consistent).toBe(false);
    expect(report.differences).toContainEqual(
      expect.objectContaining({ aggregate: 'mrr_counted', key: u.id }),
    );
  });
});

describe('subscriptions written without events (as the seed writes them)', () => {
  it('keep their price before a later change through the API, in the API and the recomputation', async () => {
    const t = await ctx.newTenant();
    const [row] = await ctx.db.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(trx);
      const { rows } = await sql<{ id: string }>`
        with u as (insert into users (name, email) values ('Seeded', 'seeded@example.com') returning id)
        insert into subscriptions (user_id, status, plan_cost, start_date)
        select id, 'active', 40.00, date '2025-01-01' from u returning id`.execute(trx);
      return rows;
    });
    const other = await createSubscription(t, { start_date: '2025-03-01' });
    const patched = await t.api.patch(`/api/v1/subscriptions/${row!.id}`).send({ plan_cost: '10.00' });
    expect(patched.status, patched.text).toBe(200);
    await t.api.post(`/api/v1/subscriptions/${other.id}/cancel`).send({ at: 'now' });
    const api = await expectAgreement(t, {}, '2025-01');
    // The seeded price counted until the change: 40.00 in a month before it.
    expect(api.mrr.months.find((m) => m.month === '2025-02')!.mrr).toBe('40.00');
  });
});

describe('the whole-tenant count (rebuild and check)', () => {
  it('reads every input encoded exactly as the engine encodes it, and counts the same on threads', async () => {
    const t = await ctx.newTenant();
    const plan = await t.api
      .post('/api/v1/plans')
      .send({ code: 'p', name: 'p', interval: 'year', price: { model: 'flat', amount: '100.00' } });
    expect(plan.status, plan.text).toBe(201);
    const planId = (plan.body as Schemas['Plan']).id;
    const feature = await createFeature(t);
    const users = [await createUser(t, { region: 'US-CA' }), await createUser(t), await createUser(t)];
    const sub = async (user_id: string, body: Record<string, unknown>) => {
      const res = await t.api.post('/api/v1/subscriptions').send({ user_id, status: 'active', ...body });
      expect(res.status, res.text).toBe(201);
      return (res.body as Schemas['Subscription']).id;
    };
    // The earliest and latest dates the API takes, a cancellation now (microseconds), a plan
    // change and a price change (versions at microseconds), features, a trial and a free one.
    await sub(users[0]!.id, { plan_cost: '12.34', start_date: '0001-01-01', end_date: '9999-12-31' });
    const changed = await sub(users[0]!.id, { plan_cost: '50.00', start_date: '2024-02-29' });
    await t.api.patch(`/api/v1/subscriptions/${changed}`).send({ plan_cost: '99.99' }).expect(200);
    const moved = await sub(users[2]!.id, { plan_cost: '5.00', start_date: '2023-03-03' });
    await t.api.patch(`/api/v1/subscriptions/${moved}`).send({ plan_id: planId }).expect(200);
    await t.api.put(`/api/v1/subscriptions/${changed}/features/${feature.id}`).expect(201);
    const canceled = await sub(users[1]!.id, { plan_cost: '7.00', start_date: '1969-12-31' });
    await t.api.post(`/api/v1/subscriptions/${canceled}/cancel`).send({ at: 'now' }).expect(200);
    await sub(users[1]!.id, { plan_cost: '0.00', start_date: '2025-01-01', status: 'trialing' });
    await sub(users[2]!.id, { plan_id: planId, start_date: '2025-05-05' });

    const { encoded, loaded } = await withTenant(ctx.db, { tenantId: t.id }, async (trx) => {
      const { rows } = await everyInput.execute(trx);
      return {
        encoded: Object.fromEntries(rows.map((r) => [r.user_id, r.input])),
        loaded: await loadCustomers(
          trx,
          users.map((u) => u.id),
        ),
      };
    });
    expect(Object.keys(encoded).sort()).toEqual(users.map((u) => u.id).sort());
    for (const [user, input] of loaded) expect(encoded[user], user).toBe(encodeInput(input));

    const sums = async () =>
      (
        await sql<{ row: string }>`select concat_ws(' ', plan_id, feature_id, region, day, mrr, customers,
          new_amount, reactivation_amount, expansion_amount, contraction_amount, churn_amount, nrr_base, nrr_num) as row
          from mrr_days where tenant_id = ${t.id} order by 1`.execute(ctx.db)
      ).rows.map((r) => r.row);
    await rebuildMrr(ctx.db, t.id, { threads: 1 });
    const inThread = await sums();
    expect(inThread.length).toBeGreaterThan(0);
    const progress: string[] = [];
    const rebuilt = await rebuildMrr(ctx.db, t.id, { threads: 2, progress: (stage) => progress.push(stage) });
    expect(rebuilt).toMatchObject({ customers: 3, subscriptions: 6 });
    expect(progress).toContain('reading');
    expect(progress.at(-1)).toBe('counting');
    expect(await sums()).toEqual(inThread);
    expect(await checkMrr(ctx.db, t.id, { threads: 2 })).toEqual([]);
    // A damaged sum is found by a check counted on threads too.
    await sql`update mrr_days set mrr = mrr + 1 where tenant_id = ${t.id} and region = '*'
      and day = (select min(day) from mrr_days where tenant_id = ${t.id})`.execute(ctx.db);
    expect((await checkMrr(ctx.db, t.id, { threads: 2 })).map((d) => d.aggregate)).toContain('mrr_days');
    await rebuildMrr(ctx.db, t.id, { threads: 1 });

    // A stored input that is not the customer's input now (the sums still count the right one):
    // the check counts the stored inputs and the differing ones apart, so it reports that input
    // and no sum, in a thread and on threads.
    const wrong = users[2]!.id;
    await sql`update mrr_counted set input = json_build_object('r', 'elsewhere', 's', input->'s')
      where tenant_id = ${t.id} and user_id = ${wrong}`.execute(ctx.db);
    for (const threads of [1, 2]) {
      const differences = await checkMrr(ctx.db, t.id, { threads });
      expect(differences.map((d) => `${d.aggregate} ${d.key}`)).toEqual([`mrr_counted ${wrong}`]);
    }
    // A customer whose stored input is gone: the sums still count it, and only the input is reported.
    await rebuildMrr(ctx.db, t.id, { threads: 1 });
    await sql`delete from mrr_counted where tenant_id = ${t.id} and user_id = ${wrong}`.execute(ctx.db);
    const gone = await checkMrr(ctx.db, t.id, { threads: 2 });
    expect(gone).toEqual([
      { aggregate: 'mrr_counted', key: wrong, maintained: 'missing', recomputed: expect.any(String) },
    ]);
    // With a pool of one connection (DB_POOL_SIZE=1), the stored inputs are counted first, on it.
    const one = createDb(ctx.url, { poolSize: 1 });
    try {
      expect(await checkMrr(one, t.id, { threads: 2 })).toEqual(gone);
    } finally {
      await one.destroy();
    }
  });
});

describe('changes now', () => {
  it('show in the current month at once: a new customer, an expansion, a churn', async () => {
    const t = await ctx.newTenant();
    const u = await createUser(t);
    const s = await createSubscription(t, { user_id: u.id, plan_cost: '10.00', start_date: '2025-01-01' });
    const before = (await metrics(t, { from: currentMonth(), to: currentMonth() })).mrr.months[0]!;
    await t.api.patch(`/api/v1/subscriptions/${s.id}`).send({ plan_cost: '25.00' }).expect(200);
    const after = (await metrics(t, { from: currentMonth(), to: currentMonth() })).mrr.months[0]!;
    expect(after.mrr).toBe((Number(before.mrr) + 15).toFixed(2));
    expect(after.movements.expansion).toEqual({
      amount: (Number(before.movements.expansion.amount) + 15).toFixed(2),
      customers: 1,
    });
    await t.api.post(`/api/v1/subscriptions/${s.id}/cancel`).send({ at: 'now' }).expect(200);
    const gone = (await metrics(t, { from: currentMonth(), to: currentMonth() })).mrr.months[0]!;
    expect(gone).toMatchObject({ mrr: '0.00', customers: 0 });
    expect(gone.movements.churn).toEqual({ amount: '-10.00', customers: 1 });
    expect(gone.movements.expansion).toEqual({ amount: '0.00', customers: 0 });
  });
});

describe('GET /api/v1/metrics/mrr and /churn', () => {
  it('default to the last 12 months including the current one', async () => {
    const res = await ctx.api.get('/api/v1/metrics/mrr');
    expect(res.status).toBe(200);
    const body = res.body as Schemas['MrrMetrics'];
    expect(body.months).toHaveLength(12);
    expect(body.to).toBe(currentMonth());
    expect(body.months.at(-1)!.month).toBe(currentMonth());
    expect(body.filters).toEqual({ plan_id: null, feature_id: null, region: null });
  });

  it.each([
    [{ from: '2026-05', to: '2026-04' }, 'from'],
    [{ from: '2000-01', to: '2026-01' }, 'from'],
    [{ to: '2999-01' }, 'to'],
  ])('refuses the window %j with 400 naming %s', async (query, field) => {
    for (const path of ['/api/v1/metrics/mrr', '/api/v1/metrics/churn']) {
      const problem = expectProblem(await ctx.api.get(path).query(query), 400, 'validation-error');
      expect(problem.errors).toEqual([expect.objectContaining({ location: 'query', field })]);
    }
  });

  it('refuses malformed months, ids and regions with 400', async () => {
    for (const query of [{ from: '2026-13' }, { to: '26-01' }, { plan_id: 'nope' }, { region: 'germany' }]) {
      expectProblem(await ctx.api.get('/api/v1/metrics/mrr').query(query), 400, 'validation-error');
    }
  });

  it('answers zeros for a plan with no subscriptions, and needs the analytics scope', async () => {
    const res = await ctx.api
      .get('/api/v1/metrics/churn')
      .query({ plan_id: '0193a6a2-5000-7000-8000-000000000001' });
    expect(res.status).toBe(200);
    expect(
      (res.body as Schemas['ChurnMetrics']).months.every((m) => m.starting_mrr === '0.00' && m.ltv === null),
    ).toBe(true);
    const key = await ctx.api.post('/api/v1/api-keys').send({ name: 'viewer', role: 'viewer' });
    expectProblem(
      await ctx.withKey((key.body as { key: string }).key).get('/api/v1/metrics/mrr'),
      403,
      'forbidden',
    );
  });

  it('answer zeros for the nil id, which names no plan and no feature (not the whole tenant)', async () => {
    const t = await ctx.newTenant();
    const u = await createUser(t);
    const plan = await t.api.post('/api/v1/plans').send({
      code: 'nil-filter',
      name: 'Nil filter',
      interval: 'month',
      price: { model: 'flat', amount: '10.00' },
    });
    expect(plan.status, plan.text).toBe(201);
    const s = await createSubscription(t, {
      user_id: u.id,
      plan_id: (plan.body as Schemas['Plan']).id,
      plan_cost: undefined,
      start_date: '2025-01-01',
    });
    const nil = '00000000-0000-0000-0000-000000000000';
    const month = { from: currentMonth(), to: currentMonth() };
    const whole = await metrics(t, month);
    expect(whole.mrr.months[0]).toMatchObject({ starting_mrr: '10.00', mrr: '10.00', customers: 1 });
    expect(whole.churn.months[0]).toMatchObject({ starting_mrr: '10.00', starting_customers: 1 });
    for (const filter of [{ plan_id: nil }, { feature_id: nil }, { plan_id: s.plan_id!, feature_id: nil }]) {
      const mrr = await t.api.get('/api/v1/metrics/mrr').query({ ...month, ...filter });
      expect(mrr.status, mrr.text).toBe(200);
      expect((mrr.body as Schemas['MrrMetrics']).months[0], JSON.stringify(filter)).toMatchObject({
        starting_mrr: '0.00',
        mrr: '0.00',
        customers: 0,
      });
      const churn = await t.api.get('/api/v1/metrics/churn').query({ ...month, ...filter });
      expect(churn.status, churn.text).toBe(200);
      expect((churn.body as Schemas['ChurnMetrics']).months[0], JSON.stringify(filter)).toMatchObject({
        starting_mrr: '0.00',
        starting_customers: 0,
      });
    }
  });

  it('take a window in the first year of the calendar, the default from not before 0001-01', async () => {
    for (const path of ['/api/v1/metrics/mrr', '/api/v1/metrics/churn']) {
      const res = await ctx.api.get(path).query({ to: '0001-05' });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ from: '0001-01', to: '0001-05' });
    }
  });

  it('take ids in any case and echo them in lower case, as every id is shown', async () => {
    const plan = await ctx.api.post('/api/v1/plans').send({
      code: `echo-${Date.now()}`,
      name: 'Echo',
      interval: 'month',
      price: { model: 'flat', amount: '5.00' },
    });
    expect(plan.status, plan.text).toBe(201);
    const id = (plan.body as Schemas['Plan']).id;
    const feature = '0193a6a2-5000-7000-8000-00000000abcd';
    for (const path of ['/api/v1/metrics/mrr', '/api/v1/metrics/churn']) {
      const lower = await ctx.api.get(path).query({ plan_id: id, feature_id: feature });
      const upper = await ctx.api
        .get(path)
        .query({ plan_id: id.toUpperCase(), feature_id: feature.toUpperCase() });
      expect(upper.status, upper.text).toBe(200);
      expect((upper.body as Schemas['MrrMetrics']).filters).toEqual({
        plan_id: id,
        feature_id: feature,
        region: null,
      });
      expect({ ...(upper.body as object), as_of: null }).toEqual({ ...(lower.body as object), as_of: null });
    }
  });
});
