// Every metric against an independent live recomputation, written here in plain SQL over the
// subscriptions themselves, on a fixture full of edge cases.
import { sql } from 'kysely';
import supertest from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import type { Schemas } from '../../src/contract.js';
import { createDb } from '../../src/database/connection.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createSubscription, createUser } from '../helpers/factories.js';
import { loadTenant, recompute as recomputeMetrics } from '../helpers/mrr-reference.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
const AS_OF = '2026-03-15';

/** The same metrics, straight from subscriptions and users, filtered by tenant by hand. */
async function recompute(tenantId: string, asOf: string, months: number, top: number) {
  const totals = await sql<{ revenue: string; average: string | null; n: number }>`
    select round(coalesce(sum(plan_cost) filter (where status = 'active'), 0), 2)::text as revenue,
           round(avg(plan_cost), 2)::text as average, count(*)::int as n
    from subscriptions where tenant_id = ${tenantId} and test_clock_id is null`.execute(ctx.db);
  const monthly = await sql<{ month: string; revenue: string; subscription_count: number }>`
    select to_char(m, 'YYYY-MM') as month, round(coalesce(sum(s.plan_cost), 0), 2)::text as revenue,
           count(s.id)::int as subscription_count
    from generate_series(date_trunc('month', ${asOf}::date::timestamp) - make_interval(months => ${months - 1}),
                         date_trunc('month', ${asOf}::date::timestamp), interval '1 month') m
    left join subscriptions s on s.tenant_id = ${tenantId} and s.test_clock_id is null
      and s.start_date >= m::date and s.start_date < (m + interval '1 month')::date
    group by m order by m`.execute(ctx.db);
  const users = await sql<Schemas['TopUser']>`
    select u.id, u.name, u.email, round(sum(s.plan_cost), 2)::text as total_value, count(*)::int as subscription_count
    from subscriptions s join users u on u.id = s.user_id
    where s.tenant_id = ${tenantId} and s.test_clock_id is null
    group by u.id, u.name, u.email order by sum(s.plan_cost) desc, u.id limit ${top}`.execute(ctx.db);
  // MRR now, from the independent recomputation of the subscription metrics.
  const month = new Date().toISOString().slice(0, 7);
  const now = recomputeMetrics(await loadTenant(ctx.db, tenantId), {}, month, month, new Date()).mrr[0]!;
  return {
    as_of: asOf,
    mrr: now.mrr,
    arr: now.arr,
    total_recurring_revenue: totals.rows[0]!.revenue,
    average_subscription_cost: totals.rows[0]!.average,
    subscription_count: totals.rows[0]!.n,
    monthly_revenue: monthly.rows,
    top_users: users.rows,
  };
}

const analytics = async (api: TestTenant['api'], query: Record<string, string | number> = {}) => {
  const res = await api.get('/api/v1/analytics').query({ as_of: AS_OF, ...query });
  expect(res.status, String(ctx.unexpectedErrors.at(-1))).toBe(200);
  return res.body as Schemas['Analytics'];
};

beforeAll(async () => {
  t = await ctx.newTenant('Analytics');
  const [ada, bob, cy, dee] = [
    await createUser(t, { name: 'Ada' }),
    await createUser(t, { name: 'Bob' }),
    await createUser(t, { name: 'Cy' }),
    await createUser(t, { name: 'Dee' }),
  ];
  // Month boundaries: the last day of January and the first of February.
  await createSubscription(t, { user_id: ada.id, plan_cost: '10.01', start_date: '2026-01-31' });
  await createSubscription(t, {
    user_id: ada.id,
    plan_cost: '20.00',
    start_date: '2026-02-01',
    status: 'trialing',
  });
  // December of the previous year, and long ago (outside the window).
  await createSubscription(t, { user_id: bob.id, plan_cost: '15.00', start_date: '2025-12-01' });
  await createSubscription(t, {
    user_id: bob.id,
    plan_cost: '15.01',
    start_date: '2020-06-30',
    status: 'past_due',
  });
  // A status change, a price change, a move to another month and back to active, a deletion.
  const changed = await createSubscription(t, {
    user_id: cy.id,
    plan_cost: '99.99',
    start_date: '2026-03-15',
  });
  await t.api.patch(`/api/v1/subscriptions/${changed.id}`).send({ plan_cost: '5.00' }).expect(200);
  await t.api.patch(`/api/v1/subscriptions/${changed.id}`).send({ status: 'canceled' }).expect(200);
  const moved = await createSubscription(t, { user_id: cy.id, plan_cost: '1.00', start_date: '2026-03-01' });
  await t.api
    .patch(`/api/v1/subscriptions/${moved.id}`)
    .send({ start_date: '2026-02-28', status: 'past_due' })
    .expect(200);
  await t.api.patch(`/api/v1/subscriptions/${moved.id}`).send({ status: 'active' }).expect(200);
  const gone = await createSubscription(t, {
    user_id: dee.id,
    plan_cost: '500.00',
    start_date: '2026-03-02',
  });
  await t.api.delete(`/api/v1/subscriptions/${gone.id}`).expect(204);
  // A tie: Dee's total equals Bob's (30.01), ordered by id.
  await createSubscription(t, {
    user_id: dee.id,
    plan_cost: '30.01',
    start_date: '2024-01-01',
    status: 'canceled',
  });
  // A user who had a subscription, lost it, and was deleted.
  const eve = await createUser(t, { name: 'Eve' });
  const eves = await createSubscription(t, { user_id: eve.id, plan_cost: '42.00', start_date: '2026-03-03' });
  await t.api.delete(`/api/v1/subscriptions/${eves.id}`).expect(204);
  await t.api.delete(`/api/v1/users/${eve.id}`).expect(204);
  // A subscription on a test clock is a simulation: it counts nowhere.
  const clock = await t.api
    .post('/api/v1/test-clocks')
    .send({ name: 'sim', frozen_time: '2026-03-01T00:00:00Z' });
  expect(clock.status).toBe(201);
  await createSubscription(t, {
    user_id: dee.id,
    plan_cost: '777.00',
    start_date: '2026-03-01',
    test_clock_id: (clock.body as Schemas['TestClock']).id,
  });
  // Another tenant's data must not count.
  await createSubscription(ctx, { plan_cost: '1000.00', start_date: '2026-03-05' });
});

describe('GET /api/v1/analytics', () => {
  it('equals a live recomputation, metric for metric, with the default window', async () => {
    const body = await analytics(t.api);
    expect(body).toEqual(await recompute(t.id, AS_OF, 12, 5));
    expect(body.monthly_revenue).toHaveLength(12);
    expect(body.monthly_revenue.at(-1)).toEqual({ month: '2026-03', revenue: '5.00', subscription_count: 1 });
    expect(body.monthly_revenue.find((m) => m.month === '2026-02')).toEqual({
      month: '2026-02',
      revenue: '21.00',
      subscription_count: 2,
    });
    expect(body.monthly_revenue.find((m) => m.month === '2025-11')).toEqual({
      month: '2025-11',
      revenue: '0.00',
      subscription_count: 0,
    });
    expect(body.total_recurring_revenue).toBe('26.01'); // 10.01 + 15.00 + 1.00
    expect(body.top_users.map((u) => u.name).slice(0, 1)).toEqual(['Ada']);
  });

  it('honours months, top and as_of, and still equals the recomputation', async () => {
    for (const [months, top, asOf] of [
      [1, 1, '2026-02-01'],
      [30, 100, '2026-01-31'],
      [120, 2, '2030-12-31'],
    ] as const) {
      const body = await analytics(t.api, { months, top, as_of: asOf });
      expect(body).toEqual(await recompute(t.id, asOf, months, top));
    }
  });

  it('answers in the same months whatever the session time zone', async () => {
    const url = new URL(ctx.url);
    url.searchParams.set('options', '-c TimeZone=Pacific/Kiritimati');
    const db = createDb(url.toString(), { poolSize: 1, asAppRole: true });
    try {
      const app = createApp({ db, validateResponses: true });
      const res = await supertest(app)
        .get(`/api/v1/analytics?as_of=${AS_OF}`)
        .set('Authorization', `Bearer ${t.key}`);
      expect(res.body).toEqual(await analytics(t.api));
    } finally {
      await db.destroy();
    }
  });

  it('reflects a write in the very next response', async () => {
    const before = await analytics(t.api);
    const s = await createSubscription(t, { plan_cost: '0.99', start_date: '2026-03-10' });
    const after = await analytics(t.api);
    expect(after.subscription_count).toBe(before.subscription_count + 1);
    expect(after.monthly_revenue.at(-1)?.subscription_count).toBe(
      before.monthly_revenue.at(-1)!.subscription_count + 1,
    );
    await t.api.delete(`/api/v1/subscriptions/${s.id}`).expect(204);
    expect(await analytics(t.api)).toEqual(before);
  });

  it('gives zeros and a null average to a tenant with no subscriptions', async () => {
    const empty = await ctx.newTenant();
    const body = await analytics(empty.api, { months: 2 });
    expect(body).toEqual({
      as_of: AS_OF,
      mrr: '0.00',
      arr: '0.00',
      total_recurring_revenue: '0.00',
      average_subscription_cost: null,
      subscription_count: 0,
      monthly_revenue: [
        { month: '2026-02', revenue: '0.00', subscription_count: 0 },
        { month: '2026-03', revenue: '0.00', subscription_count: 0 },
      ],
      top_users: [],
    });
  });

  it('rejects out-of-range parameters with 400 and a key without the analytics scope with 403', async () => {
    expectProblem(await t.api.get('/api/v1/analytics?months=0'), 400, 'validation-error');
    expectProblem(await t.api.get('/api/v1/analytics?top=101'), 400, 'validation-error');
    expectProblem(await t.api.get('/api/v1/analytics?as_of=2026-02-30'), 400, 'validation-error');
    const editor = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const key = (editor.body as Schemas['ApiKeyWithSecret']).key;
    expectProblem(await ctx.withKey(key).get('/api/v1/analytics'), 403, 'forbidden');
    expectProblem(await ctx.withKey(key).get('/api/v1/analytics/consistency'), 403, 'forbidden');
  });
});

describe('GET /api/v1/analytics for a large tenant', () => {
  it('answers sums past the largest plan_cost exactly, and counts past 2^31', async () => {
    const big = await ctx.newTenant();
    const user = await createUser(big);
    for (const start_date of ['2026-03-01', '2026-03-02']) {
      await createSubscription(big, { user_id: user.id, plan_cost: '9999999999.99', start_date });
    }
    const body = await analytics(big.api, { months: 1 });
    expect(body.total_recurring_revenue).toBe('19999999999.98');
    expect(body.average_subscription_cost).toBe('9999999999.99');
    expect(body.monthly_revenue).toEqual([
      { month: '2026-03', revenue: '19999999999.98', subscription_count: 2 },
    ]);
    expect(body.top_users[0]).toMatchObject({ total_value: '19999999999.98', subscription_count: 2 });

    // Three billion canceled subscriptions in one month: too many to insert, so the maintained
    // aggregate is grown directly, as that many writes would have left it.
    await sql`insert into subscription_rollups
      (tenant_id, month, status, shard, subscription_count, plan_cost_total)
      values (${big.id}, '2026-02-01', 'canceled', 0, 3000000000, 29999999999970000000.00)`.execute(ctx.db);
    const huge = await analytics(big.api, { months: 2 });
    expect(huge.subscription_count).toBe(3_000_000_002);
    expect(huge.monthly_revenue[0]).toEqual({
      month: '2026-02',
      revenue: '29999999999970000000.00',
      subscription_count: 3_000_000_000,
    });
    expect(huge.total_recurring_revenue).toBe('19999999999.98'); // canceled ones are not recurring
  });
});

describe('GET /api/v1/analytics/consistency and POST /api/v1/analytics/rebuild', () => {
  it('finds no difference after ordinary writes', async () => {
    const res = await t.api.get('/api/v1/analytics/consistency');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ consistent: true, differences: [] });
  });

  it('finds a corrupted aggregate and rebuilds it exactly', async () => {
    await ctx.db
      .updateTable('user_totals')
      .set({ total_value: sql`total_value + 1` })
      .where('tenant_id', '=', t.id)
      .execute();
    const broken = (await t.api.get('/api/v1/analytics/consistency')).body as Schemas['AnalyticsConsistency'];
    expect(broken.consistent).toBe(false);
    expect(broken.differences[0]?.aggregate).toBe('user_totals');

    const rebuilt = await t.api.post('/api/v1/analytics/rebuild');
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.body).toEqual({ consistent: true, differences: [] });
    expect(await analytics(t.api)).toEqual(await recompute(t.id, AS_OF, 12, 5));
  });

  it('rebuilds without waiting for a writer, and counts its write once it commits', async () => {
    const [ada, bob] = await Promise.all([
      createUser(t, { name: 'Writer' }),
      createUser(t, { name: 'Other' }),
    ]);
    await createSubscription(t, { user_id: bob.id, plan_cost: '3.00', start_date: '2026-01-10' });
    await ctx.db
      .updateTable('user_totals')
      .set({ total_value: sql`total_value + 7` })
      .where('tenant_id', '=', t.id)
      .where('user_id', '=', bob.id)
      .execute();
    await ctx.db.connection().execute(async (writer) => {
      await sql`begin`.execute(writer);
      await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(writer);
      await sql`insert into subscriptions (user_id, status, plan_cost, start_date)
        values (${ada.id}, 'active', 12.34, '2026-02-03')`.execute(writer);
      // The writer holds its rows (and its aggregate rows) while the rebuild runs to its end.
      const rebuilt = await t.api.post('/api/v1/analytics/rebuild');
      expect(rebuilt.status).toBe(200);
      expect(rebuilt.body).toEqual({ consistent: true, differences: [] });
      await sql`commit`.execute(writer);
    });
    expect((await t.api.get('/api/v1/analytics/consistency')).body).toEqual({
      consistent: true,
      differences: [],
    });
    expect(await analytics(t.api)).toEqual(await recompute(t.id, AS_OF, 12, 5));
  });

  it('answers rebuilds asked for at once with one run, holding no connection each (retest8 #4)', async () => {
    // Ten at once on a pool of four: each used to hold a connection while waiting for the
    // tenant's lock, which the running one then could not get (503, and every tenant slowed).
    const results = await Promise.all(
      Array.from({ length: 10 }, () => t.api.post('/api/v1/analytics/rebuild').then((res) => res)),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200));
    for (const r of results) expect(r.body).toEqual({ consistent: true, differences: [] });
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('takes an Idempotency-Key: a retry gets the first reply, marked replayed', async () => {
    const key = `rebuild-${Date.now()}`;
    const first = await t.api.post('/api/v1/analytics/rebuild').set('Idempotency-Key', key);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({ consistent: true, differences: [] });
    const retry = await t.api.post('/api/v1/analytics/rebuild').set('Idempotency-Key', key);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers['idempotent-replayed']).toBe('true');
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
