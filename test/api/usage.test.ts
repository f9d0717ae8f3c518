// Usage-based billing through the API: billable metrics, events recorded exactly once, usage
// charges on plans, the usage now, and the usage invoiced in arrears by renewals on a test clock.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import { anniversary } from '../../src/billing/periods.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { holdLocks, waitForLockWaiters } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

beforeAll(async () => {
  t = await ctx.newTenant();
});

const tag = () => Math.random().toString(36).slice(2, 10);

async function metric(body: Partial<Schemas['BillableMetricCreate']> = {}) {
  const res = await t.api
    .post('/api/v1/billable-metrics')
    .send({ code: `m-${tag()}`, name: 'A metric', aggregation: 'count', ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['BillableMetric'];
}

async function plan(usage_charges: unknown[], price = { model: 'flat', amount: '10.00' }) {
  const res = await t.api
    .post('/api/v1/plans')
    .send({ code: `p-${tag()}`, name: 'Usage plan', interval: 'month', price, usage_charges });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Plan'];
}

async function subscribe(planId: string, extra: Record<string, unknown> = {}) {
  const user = await createUser(t);
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', plan_id: planId, start_date: '2026-01-01', ...extra });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

/**
 * A test clock frozen in January 2026, for a subscription from 2026-01-01 whose January usage is
 * billed (in real time it started two or more periods ago: January's usage is never billed, and
 * refused).
 */
async function januaryClock(): Promise<{ test_clock_id: string }> {
  const res = await t.api
    .post('/api/v1/test-clocks')
    .send({ name: 'january', frozen_time: '2026-01-20T00:00:00Z' });
  expect(res.status, res.text).toBe(201);
  return { test_clock_id: (res.body as Schemas['TestClock']).id };
}

const send = (event: Record<string, unknown>) => t.api.post('/api/v1/usage-events').send(event);
const batch = (events: Array<Record<string, unknown>>) =>
  t.api.post('/api/v1/usage-events/batch').send({ events });
const usageOf = async (id: string, query: Record<string, string> = {}) => {
  const res = await t.api.get(`/api/v1/subscriptions/${id}/usage`).query(query);
  expect(res.status, res.text).toBe(200);
  return res.body as Schemas['SubscriptionUsage'];
};

describe('billable metrics', () => {
  it('creates, reads, lists, renames, archives and deletes a metric', async () => {
    const m = await metric({
      aggregation: 'sum',
      field: 'tokens',
      group_by: 'model',
      filters: { region: ['eu'] },
    });
    expect(m).toMatchObject({
      aggregation: 'sum',
      field: 'tokens',
      group_by: 'model',
      archived: false,
      version: 1,
    });
    expect((await t.api.get(`/api/v1/billable-metrics/${m.id}`)).body).toEqual(m);
    const listed = (await t.api.get('/api/v1/billable-metrics').query({ code: m.code }))
      .body as Schemas['BillableMetricList'];
    expect(listed.data.map((x) => x.id)).toEqual([m.id]);
    const archived = await t.api
      .patch(`/api/v1/billable-metrics/${m.id}`)
      .send({ archived: true, name: 'Tokens' });
    expect(archived.body).toMatchObject({ archived: true, name: 'Tokens', version: 2 });
    // Archived by that update: at its time.
    const { archived_at, updated_at } = archived.body as Schemas['BillableMetric'];
    expect(archived_at).toBe(updated_at);
    expect((await t.api.delete(`/api/v1/billable-metrics/${m.id}`)).status).toBe(204);
    expectProblem(await t.api.get(`/api/v1/billable-metrics/${m.id}`), 404, 'not-found');
  });

  it('refuses a field for count and none for sum, with 422, writing nothing', async () => {
    const before = await fingerprint(ctx.db);
    const a = expectProblem(
      await t.api
        .post('/api/v1/billable-metrics')
        .send({ code: 'x1', name: 'x', aggregation: 'count', field: 'f' }),
      422,
      'unprocessable',
    );
    expect(a.errors).toEqual([expect.objectContaining({ field: '/field' })]);
    expectProblem(
      await t.api.post('/api/v1/billable-metrics').send({ code: 'x2', name: 'x', aggregation: 'sum' }),
      422,
      'unprocessable',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('refuses to delete a metric that was used (409) and keeps it', async () => {
    const m = await metric();
    await plan([{ metric: m.code, model: 'per_unit', amount: '1' }]);
    expectProblem(await t.api.delete(`/api/v1/billable-metrics/${m.id}`), 409, 'conflict');
    // Named only by a hold's capture (for its margin): used too, and the answer says so.
    const named = await metric();
    const user = await createUser(t);
    const wallet = (await t.api.post('/api/v1/wallets').send({ user_id: user.id, name: 'credits' }))
      .body as Schemas['Wallet'];
    expect((await t.api.post(`/api/v1/wallets/${wallet.id}/grants`).send({ credits: '10' })).status).toBe(
      201,
    );
    const hold = (
      await t.api.post(`/api/v1/wallets/${wallet.id}/holds`).send({ credits: '2', expires_in: 300 })
    ).body as Schemas['Hold'];
    const captured = await t.api
      .post(`/api/v1/holds/${hold.id}/capture`)
      .send({ credits: '1', metric: named.code });
    expect(captured.status, captured.text).toBe(200);
    const refused = expectProblem(
      await t.api.delete(`/api/v1/billable-metrics/${named.id}`),
      409,
      'conflict',
    );
    expect(refused.detail).toContain('is named by a wallet hold');
    expect((await t.api.get(`/api/v1/billable-metrics/${named.id}`)).status).toBe(200);
  });

  it('refuses to delete a metric a plan charged once, after the plan dropped the charge (retest11 #1)', async () => {
    // Its invoices' usage lines and the margin report still name it.
    const once = await metric();
    const p = await plan([{ metric: once.code, model: 'per_unit', amount: '1' }]);
    const dropped = await t.api.patch(`/api/v1/plans/${p.id}`).send({ usage_charges: [] });
    expect(dropped.status, dropped.text).toBe(200);
    const refused = expectProblem(await t.api.delete(`/api/v1/billable-metrics/${once.id}`), 409, 'conflict');
    expect(refused.detail).toContain('was charged by a plan');
    expect((await t.api.get(`/api/v1/billable-metrics/${once.id}`)).status).toBe(200);
    // Added by a PATCH, then dropped: the same.
    const later = await metric();
    const q = await plan([]);
    for (const usage_charges of [[{ metric: later.code, model: 'per_unit', amount: '1' }], []])
      expect((await t.api.patch(`/api/v1/plans/${q.id}`).send({ usage_charges })).status).toBe(200);
    expectProblem(await t.api.delete(`/api/v1/billable-metrics/${later.id}`), 409, 'conflict');
    // Never charged: deleted.
    expect((await t.api.delete(`/api/v1/billable-metrics/${(await metric()).id}`)).status).toBe(204);
  });
  it('lets a plan write and a delete of its metric at the same time never both win (retest9 #1)', async () => {
    // The delete, not committed yet: the plan's read of the metric waits for it, then misses it.
    const doomed = await metric();
    const deleting = await holdLocks(
      ctx.db,
      sql`delete from billable_metrics where tenant_id = ${t.id} and id = ${doomed.id}`,
    );
    const created = t.api
      .post('/api/v1/plans')
      .send({
        code: `p-${tag()}`,
        name: 'Usage plan',
        interval: 'month',
        price: { model: 'flat', amount: '10.00' },
        usage_charges: [{ metric: doomed.code, model: 'per_unit', amount: '0.01' }],
      })
      .then((r) => r);
    await waitForLockWaiters(ctx.db);
    await deleting.release();
    const refused = expectProblem(await created, 422, 'unprocessable');
    expect(refused.errors).toEqual([
      expect.objectContaining({
        field: '/usage_charges/0/metric',
        message: `no billable metric has the code ${doomed.code}`,
      }),
    ]);
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});

describe('usage charges on plans', () => {
  it('refuses unknown or archived metrics, dimensions without group_by, duplicates and bad prices, naming each', async () => {
    const plain = await metric();
    const archived = await metric();
    await t.api.patch(`/api/v1/billable-metrics/${archived.id}`).send({ archived: true });
    const before = await fingerprint(ctx.db);
    const res = await t.api.post('/api/v1/plans').send({
      code: `p-${tag()}`,
      name: 'Bad charges',
      interval: 'month',
      price: { model: 'flat', amount: '1' },
      usage_charges: [
        { metric: 'no-such-metric', model: 'per_unit', amount: '1' },
        { metric: archived.code, model: 'per_unit', amount: '1' },
        { metric: plain.code, dimension_value: 'x', model: 'per_unit', amount: '1' },
        { metric: plain.code, model: 'package', amount: '1' },
        { metric: plain.code, model: 'per_unit', amount: '1' },
        { metric: plain.code, model: 'per_unit', amount: '2' },
      ],
    });
    const problem = expectProblem(res, 422, 'unprocessable');
    expect(problem.errors?.map((e) => e.field)).toEqual([
      '/usage_charges/0/metric',
      '/usage_charges/1/metric',
      '/usage_charges/2/dimension_value',
      '/usage_charges/3/package_size',
      // 3, 4 and 5 all charge the metric's events at large: each after the first is a duplicate.
      '/usage_charges/4/dimension_value',
      '/usage_charges/5/dimension_value',
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('refuses a charge whose first unit past the free ones bills more than a period may (retest9 #6)', async () => {
    const calls = await metric();
    const seats = await metric();
    const tokens = await metric({ aggregation: 'sum', field: 'tokens' });
    const before = await fingerprint(ctx.db);
    const res = await t.api.post('/api/v1/plans').send({
      code: `p-${tag()}`,
      name: 'Too dear',
      interval: 'month',
      price: { model: 'flat', amount: '10.00' },
      usage_charges: [
        { metric: calls.code, model: 'per_unit', amount: '9999999999.995' },
        {
          metric: seats.code,
          model: 'package',
          amount: '9999999999.9999',
          package_size: 1,
        },
        {
          metric: tokens.code,
          model: 'graduated',
          tiers: [{ up_to: null, unit_amount: '0', flat_amount: '9999999999.995' }],
        },
      ],
    });
    const problem = expectProblem(res, 422, 'unprocessable');
    expect(problem.errors).toEqual([
      expect.objectContaining({
        field: '/usage_charges/0/amount',
        message:
          'the first event past the free units bills 10000000000.00 a period, over the most a charge bills, 9999999999.99',
      }),
      expect.objectContaining({ field: '/usage_charges/1/amount' }),
      expect.objectContaining({ field: '/usage_charges/2/tiers/0' }),
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    // A millionth of a summed quantity at that price bills a cent: usable, so kept; and so is
    // a unit at the most a charge bills.
    await plan([
      { metric: tokens.code, model: 'per_unit', amount: '9999999999.995' },
      { metric: calls.code, model: 'per_unit', amount: '9999999999.99' },
    ]);
    // Past half a free unit, one event bills half a unit: usable (retest11 #5). Past 1.5, two
    // events bill half a unit too; past 1, the first bills a whole one, over the limit.
    await plan([{ metric: calls.code, model: 'per_unit', amount: '9999999999.9999', free_units: '0.5' }]);
    await plan([{ metric: calls.code, model: 'per_unit', amount: '9999999999.9999', free_units: '1.5' }]);
    const whole = await t.api.post('/api/v1/plans').send({
      code: `p-${tag()}`,
      name: 'Too dear',
      interval: 'month',
      price: { model: 'flat', amount: '10.00' },
      usage_charges: [{ metric: calls.code, model: 'per_unit', amount: '9999999999.9999', free_units: '1' }],
    });
    expect(expectProblem(whole, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/usage_charges/0/amount' }),
    ]);
  });

  it('answers 412 to a stale If-Match on a metric, and 422 for a day that starts no period', async () => {
    const m = await metric();
    expectProblem(
      await t.api.patch(`/api/v1/billable-metrics/${m.id}`).set('If-Match', '"9"').send({ name: 'x' }),
      412,
      'precondition-failed',
    );
    const p = await plan([{ metric: m.code, model: 'per_unit', amount: '1' }]);
    const sub = await subscribe(p.id, await januaryClock());
    const bad = await t.api
      .get(`/api/v1/subscriptions/${sub.id}/usage`)
      .query({ period_start: '2026-01-15' });
    expect(expectProblem(bad, 422, 'unprocessable').detail).toContain('2026-01-01');
    const before = await t.api
      .get(`/api/v1/subscriptions/${sub.id}/usage`)
      .query({ period_start: '2025-12-01' });
    expectProblem(before, 422, 'unprocessable');
    expect((await usageOf(sub.id, { period_start: '2026-01-01' })).period_end).toBe('2026-02-01');
  });
});

describe('usage events', () => {
  it('counts an event once, however often it is sent, and says which were duplicates', async () => {
    const m = await metric({ aggregation: 'sum', field: 'n' });
    const p = await plan([{ metric: m.code, model: 'per_unit', amount: '0.5' }]);
    const sub = await subscribe(p.id);
    const event = { event_id: `e-${tag()}`, user_id: sub.user_id, metric: m.code, properties: { n: 3 } };
    const first = await send(event);
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({ subscription_id: sub.id, value: '3', counted: true });
    const again = await send({ ...event, properties: { n: 100 } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const b = await batch([
      event,
      { ...event, event_id: `e-${tag()}` },
      { ...event, event_id: 'same' },
      { ...event, event_id: 'same' },
    ]);
    expect(b.status, b.text).toBe(200);
    expect((b.body as Schemas['UsageEventBatchResult']).data.map((d) => d.status)).toEqual([
      'duplicate',
      'created',
      'created',
      'duplicate',
    ]);
    expect(b.body).toMatchObject({ created: 2, duplicates: 2 });
    const now = await usageOf(sub.id);
    expect(now.charges).toEqual([expect.objectContaining({ quantity: '9', amount: '4.50' })]);
  });

  it('refuses a batch with any bad event, naming its index, and records none of it', async () => {
    const m = await metric({ aggregation: 'sum', field: 'n' });
    const p = await plan([{ metric: m.code, model: 'per_unit', amount: '1' }]);
    const sub = await subscribe(p.id);
    const before = await fingerprint(ctx.db);
    const good = { event_id: `ok-${tag()}`, user_id: sub.user_id, metric: m.code, properties: { n: 1 } };
    const res = await batch([
      good,
      { ...good, event_id: `a-${tag()}`, metric: 'no-such-metric' },
      { ...good, event_id: `b-${tag()}`, properties: { n: -1 } },
      { ...good, event_id: `c-${tag()}`, timestamp: new Date(Date.now() + 3_600_000).toISOString() },
      { ...good, event_id: `d-${tag()}`, user_id: '0193a6a2-0000-7000-8000-000000000000' },
    ]);
    const problem = expectProblem(res, 422, 'unprocessable');
    expect(problem.errors?.map((e) => e.field)).toEqual([
      '/events/1/metric',
      '/events/2/properties/n',
      '/events/3/timestamp',
      '/events/4/user_id',
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('reads only the properties an event carries, whatever their names (constructor, __proto__)', async () => {
    const names = ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__'];
    const grouped = await Promise.all(names.map((group_by) => metric({ group_by })));
    const summed = await Promise.all(names.map((field) => metric({ aggregation: 'sum', field })));
    const unique = await metric({ aggregation: 'unique_count', field: '__proto__' });
    const filtered = await metric({ filters: { __proto__: ['{}'], constructor: ['x'] } });
    const all = [...grouped, ...summed, unique, filtered];
    const p = await plan(all.map((m) => ({ metric: m.code, model: 'per_unit', amount: '1' })));
    const sub = await subscribe(p.id);
    const event = (m: Schemas['BillableMetric'], properties: Record<string, unknown>) => ({
      event_id: `e-${tag()}`,
      user_id: sub.user_id,
      metric: m.code,
      properties,
    });
    // Without the property: no dimension value; a field it lacks is required (422, named).
    for (const m of grouped) {
      const res = await send(event(m, { tokens: 1 }));
      expect(res.status, `${m.group_by}: ${res.text}`).toBe(201);
      expect(res.body).toMatchObject({ dimension_value: null, counted: true });
    }
    const missing = await batch([...summed, unique].map((m) => event(m, { tokens: 1 })));
    const problem = expectProblem(missing, 422, 'unprocessable');
    expect(problem.errors?.map((e) => [e.field, e.message])).toEqual(
      [...summed, unique].map((m, i) => [
        `/events/${i}/properties/${m.field}`,
        `is required by the metric ${m.code} (${m.aggregation})`,
      ]),
    );
    const unmatched = await send(event(filtered, { tokens: 1 }));
    expect(unmatched.status, unmatched.text).toBe(201);
    expect(unmatched.body).toMatchObject({ counted: false });
    // With it, as any other property.
    const carried = await send(event(grouped[0]!, { constructor: 'big' }));
    expect(carried.body).toMatchObject({ dimension_value: 'big', counted: true });
    const own = JSON.parse('{"__proto__": "7"}') as Record<string, unknown>;
    const summedOwn = await send(event(summed[4]!, own));
    expect(summedOwn.status, summedOwn.text).toBe(201);
    expect(summedOwn.body).toMatchObject({ value: '7', counted: true });
  });

  it('refuses a value counted by (unique_count, group_by) over 1,000 bytes, which the totals cannot index', async () => {
    const m = await metric({ aggregation: 'unique_count', field: 'who', group_by: 'model' });
    const p = await plan([{ metric: m.code, model: 'per_unit', amount: '1.00' }]);
    const sub = await subscribe(p.id, await januaryClock());
    // 1,000 characters of 4 bytes each: accepted as a property, too long to count by.
    const wide = (n: number) =>
      Array.from({ length: n }, (_, i) => String.fromCodePoint(0x1f300 + i)).join('');
    const send = (id: string, properties: Record<string, string>) =>
      t.api.post('/api/v1/usage-events').send({
        event_id: `${sub.id}-${id}`,
        user_id: sub.user_id,
        metric: m.code,
        timestamp: '2026-01-10T00:00:00Z',
        properties,
      });
    const before = await fingerprint(ctx.db);
    for (const [field, properties] of [
      ['/properties/who', { who: wide(1000), model: 'a' }],
      ['/properties/model', { who: 'x', model: wide(251) }],
    ] as const) {
      const problem = expectProblem(await send(field, properties), 422, 'unprocessable');
      expect(problem.errors).toEqual([
        { location: 'body', field, message: expect.stringContaining('over 1,000 bytes') as string },
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // 250 characters of 4 bytes: 1,000 bytes, counted.
    const taken = await send('fits', { who: wide(250), model: wide(250) });
    expect(taken.status, taken.text).toBe(201);
    expect((taken.body as Schemas['UsageEvent']).counted).toBe(true);
  });

  it('refuses usage that would bill a charge more than 9999999999.99 a period, writing nothing', async () => {
    const m = await metric({ aggregation: 'sum', field: 'n' });
    const p = await plan([{ metric: m.code, model: 'per_unit', amount: '1000000000.00' }]);
    const sub = await subscribe(p.id);
    expect(
      (await send({ event_id: `fits-${tag()}`, user_id: sub.user_id, metric: m.code, properties: { n: 9 } }))
        .status,
    ).toBe(201);
    const before = await fingerprint(ctx.db);
    // Monthly from 2026-01-01: the current period starts on this month's first day.
    const period = `${new Date().toISOString().slice(0, 7)}-01`;
    const message = `the usage of the period starting ${period} would bill more than 9999999999.99 for one charge of the plan, the most a charge bills a period`;
    const one = expectProblem(
      await send({ event_id: `over-${tag()}`, user_id: sub.user_id, metric: m.code, properties: { n: 1 } }),
      422,
      'unprocessable',
    );
    expect(one.detail).toBe(`The event breaks a rule; it was not recorded: ${message}.`);
    expect(one.errors).toEqual([{ location: 'body', field: '', message }]);
    const many = expectProblem(
      await batch([
        { event_id: `over-${tag()}`, user_id: sub.user_id, metric: m.code, properties: { n: 1 } },
      ]),
      422,
      'unprocessable',
    );
    expect(many.errors).toEqual([{ location: 'body', field: '/events/0', message }]);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('lists events by customer, metric and time, and reads one', async () => {
    const m = await metric();
    const p = await plan([{ metric: m.code, model: 'per_unit', amount: '1' }]);
    const sub = await subscribe(p.id, await januaryClock());
    const ids = [];
    for (const hour of [1, 2, 3]) {
      const res = await send({
        event_id: `l-${tag()}`,
        user_id: sub.user_id,
        metric: m.code,
        timestamp: `2026-01-05T0${hour}:00:00Z`,
      });
      expect(res.status, res.text).toBe(201);
      ids.push((res.body as Schemas['UsageEvent']).id);
    }
    const page = (
      await t.api
        .get('/api/v1/usage-events')
        .query({ user_id: sub.user_id, metric: m.code, from: '2026-01-05T02:00:00Z', limit: 1 })
    ).body as Schemas['UsageEventList'];
    expect(page.data.map((e) => e.id)).toEqual([ids[2]]);
    const next = (
      await t.api.get('/api/v1/usage-events').query({
        user_id: sub.user_id,
        metric: m.code,
        from: '2026-01-05T02:00:00Z',
        cursor: page.next_cursor,
      })
    ).body as Schemas['UsageEventList'];
    expect(next.data.map((e) => e.id)).toEqual([ids[1]]);
    expect((await t.api.get(`/api/v1/usage-events/${ids[0]}`)).body).toMatchObject({
      id: ids[0],
      metric: m.code,
    });
  });

  it("lists one subscription's events among its customer's others", async () => {
    const [a, b] = [await metric(), await metric()];
    const clock = await januaryClock();
    const first = await subscribe(
      (await plan([{ metric: a.code, model: 'per_unit', amount: '1' }])).id,
      clock,
    );
    const res = await t.api.post('/api/v1/subscriptions').send({
      user_id: first.user_id,
      status: 'active',
      plan_id: (await plan([{ metric: b.code, model: 'per_unit', amount: '1' }])).id,
      start_date: '2026-01-01',
      ...clock,
    });
    expect(res.status, res.text).toBe(201);
    const second = res.body as Schemas['Subscription'];
    const sent = await batch(
      [a, b, a, b, b].map((m, i) => ({
        event_id: `s-${tag()}-${i}`,
        user_id: first.user_id,
        metric: m.code,
        timestamp: `2026-01-05T0${i}:00:00Z`,
      })),
    );
    expect(sent.status, sent.text).toBe(200);
    const ids = (sent.body as Schemas['UsageEventBatchResult']).data.map((r) => r.event.id);
    const list = async (query: Record<string, string | number>) => {
      const page = await t.api.get('/api/v1/usage-events').query(query);
      expect(page.status, page.text).toBe(200);
      return (page.body as Schemas['UsageEventList']).data.map((e) => e.id);
    };
    // Newest first by id; the ids of one batch share their millisecond, so compared as sets here.
    const sorted = (list: string[]) => [...list].sort();
    expect(sorted(await list({ subscription_id: second.id }))).toEqual(sorted([ids[1]!, ids[3]!, ids[4]!]));
    const both = sorted([ids[0]!, ids[2]!]);
    expect(await list({ subscription_id: first.id, user_id: first.user_id })).toEqual([...both].reverse());
    expect(await list({ subscription_id: first.id, limit: 1 })).toEqual([both[1]]);
    // Another customer's filter, or a subscription that does not exist: nothing.
    const stranger = await subscribe((await plan([])).id);
    expect(await list({ subscription_id: first.id, user_id: stranger.user_id })).toEqual([]);
    expect(await list({ subscription_id: stranger.id })).toEqual([]);
    expect(await list({ subscription_id: '01900000-0000-7000-8000-000000000000' })).toEqual([]);
  });
});

describe('usage billed in arrears on a test clock', () => {
  it('bills each period its exact usage, one invoice per period, and refuses late events', async () => {
    const clockRes = await t.api
      .post('/api/v1/test-clocks')
      .send({ name: 'usage', frozen_time: '2026-01-01T00:00:00Z' });
    const clock = clockRes.body as Schemas['TestClock'];
    const tokens = await metric({ aggregation: 'sum', field: 'tokens', group_by: 'model' });
    const users = await metric({ aggregation: 'unique_count', field: 'user' });
    const p = await plan([
      { metric: tokens.code, dimension_value: 'advanced', model: 'per_unit', amount: '0.002' },
      { metric: tokens.code, dimension_value: 'cheap', model: 'package', amount: '1', package_size: 1000 },
      {
        metric: users.code,
        model: 'graduated',
        tiers: [
          { up_to: 2, unit_amount: '0', flat_amount: '0' },
          { up_to: null, unit_amount: '5', flat_amount: '0' },
        ],
      },
    ]);
    const sub = await subscribe(p.id, { test_clock_id: clock.id });
    const ev = (n: number, props: Record<string, unknown>, metricCode: string, at: string) => ({
      event_id: `c-${n}-${tag()}`,
      user_id: sub.user_id,
      metric: metricCode,
      timestamp: at,
      properties: props,
    });
    const january = await batch([
      ev(1, { tokens: 1500, model: 'advanced' }, tokens.code, '2026-01-02T00:00:00Z'),
      ev(2, { tokens: 1001, model: 'cheap' }, tokens.code, '2026-01-03T00:00:00Z'),
      ev(3, { user: 'a' }, users.code, '2026-01-01T00:00:00Z'),
      ev(4, { user: 'b' }, users.code, '2026-01-01T00:00:00Z'),
      ev(5, { user: 'a' }, users.code, '2026-01-01T00:00:00Z'),
      ev(6, { user: 'c' }, users.code, '2026-01-01T00:00:00Z'),
    ]);
    // Ahead of the clock's time (2026-01-01T00:00): refused.
    expectProblem(january, 422, 'unprocessable');
    const advance = async (to: string) => {
      expect(
        (await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to })).status,
      ).toBe(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-20T00:00:00Z');
    const recorded = await batch([
      ev(1, { tokens: 1500, model: 'advanced' }, tokens.code, '2026-01-02T00:00:00Z'),
      ev(2, { tokens: 1001, model: 'cheap' }, tokens.code, '2026-01-03T00:00:00Z'),
      ev(3, { user: 'a' }, users.code, '2026-01-04T00:00:00Z'),
      ev(4, { user: 'b' }, users.code, '2026-01-05T00:00:00Z'),
      ev(5, { user: 'a' }, users.code, '2026-01-06T00:00:00Z'),
      ev(6, { user: 'c' }, users.code, '2026-01-07T00:00:00Z'),
    ]);
    expect(recorded.status, recorded.text).toBe(200);
    const now = await usageOf(sub.id);
    expect(now).toMatchObject({
      period_start: '2026-01-01',
      period_end: '2026-02-01',
      invoiced: false,
      amount: '10.00',
    });
    expect(now.charges.map((c) => [c.quantity, c.amount])).toEqual([
      ['1500', '3.00'],
      ['1001', '2.00'],
      ['3', '5.00'],
    ]);

    await advance('2026-02-10T00:00:00Z');
    const late = await send(ev(7, { user: 'z' }, users.code, '2026-01-30T00:00:00Z'));
    expect(expectProblem(late, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/timestamp', message: expect.stringContaining('invoiced already') }),
    ]);
    expect((await usageOf(sub.id, { period_start: '2026-01-01' })).invoiced).toBe(true);
    const invoices = (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
      .body as Schemas['InvoiceList'];
    const feb = invoices.data.find((i) => i.period_start === '2026-02-01')!;
    expect(feb.lines.map((l) => [l.type, l.period_start, l.amount])).toEqual([
      ['subscription', '2026-02-01', '10.00'],
      ['usage', '2026-01-01', '3.00'],
      ['usage', '2026-01-01', '2.00'],
      ['usage', '2026-01-01', '5.00'],
    ]);
    expect(feb.subtotal).toBe('20.00');
    expect(invoices.data.filter((i) => i.period_start === '2026-01-01')[0]!.lines).toHaveLength(1);
  });
});

describe('a year of usage on a test clock', () => {
  it('issues one invoice a month, each with the exact usage of the month before', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'year', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const calls = await metric();
    const p = await plan([{ metric: calls.code, model: 'per_unit', amount: '0.01', free_units: '2' }]);
    const sub = await subscribe(p.id, { test_clock_id: clock.id });
    const advance = async (to: string) => {
      const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
      expect(res.status, res.text).toBe(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    // Month m (1..12) gets m * 3 events, sent mid-month in simulated time (no timestamp: the clock's now).
    const sent = new Map<string, number>();
    for (let m = 1; m <= 12; m++) {
      const month = `2026-${String(m).padStart(2, '0')}`;
      await advance(`${month}-15T12:00:00Z`);
      const events = Array.from({ length: m * 3 }, (_, k) => ({
        event_id: `year-${tag()}-${month}-${k}`,
        user_id: sub.user_id,
        metric: calls.code,
      }));
      const res = await batch(events);
      expect(res.status, res.text).toBe(200);
      expect((res.body as Schemas['UsageEventBatchResult']).data[0]!.event.timestamp).toBe(
        `${month}-15T12:00:00.000Z`,
      );
      sent.set(`${month}-01`, m * 3);
    }
    await advance('2027-01-02T00:00:00Z');
    const invoices = (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 }))
      .body as Schemas['InvoiceList'];
    const byPeriod = new Map(invoices.data.map((i) => [i.period_start, i]));
    expect(byPeriod.size).toBe(13); // 2026-01 … 2027-01, one each
    for (const [periodStart, count] of sent) {
      const next = anniversary(periodStart, 'month', 1, 1);
      const lines = byPeriod.get(next)!.lines.filter((l) => l.type === 'usage');
      expect(lines.map((l) => [l.period_start, l.usage!.quantity, l.amount])).toEqual([
        [periodStart, String(count), (Math.max(0, count - 2) / 100).toFixed(2)],
      ]);
    }
    expect(byPeriod.get('2026-01-01')!.lines.filter((l) => l.type === 'usage')).toEqual([]);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
