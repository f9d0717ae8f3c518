// Usage is billed in arrears, on the terms it was recorded under: a period's usage is billed once,
// after the period ended, at the prices of the plan that counted it. Probed from outside: an
// invoice made ahead of its period closed the usage of months not ended, a voided invoice's usage
// was billed again by the period's next invoice, and a change of plan (now or scheduled) billed a
// period's usage at the new plan's prices, or dropped it.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

beforeAll(async () => {
  t = await ctx.newTenant();
});

const tag = () => Math.random().toString(36).slice(2, 10);

async function created<T>(path: string, body: Record<string, unknown>): Promise<T> {
  const res = await t.api.post(path).send(body);
  expect(res.status, res.text).toBe(201);
  return res.body as T;
}

/** A sum metric, a clock at 2026-01-20 and a monthly subscription on it from 2026-01-01. */
async function setUp(
  charges: (code: string) => { a: unknown[]; b?: unknown[] },
  metricBody: Record<string, unknown> = {},
) {
  const metric = await created<Schemas['BillableMetric']>('/api/v1/billable-metrics', {
    code: `q-${tag()}`,
    name: 'Q',
    aggregation: 'sum',
    field: 'n',
    ...metricBody,
  });
  const { a, b } = charges(metric.code);
  const plan = (usage_charges: unknown[]) =>
    created<Schemas['Plan']>('/api/v1/plans', {
      code: `p-${tag()}`,
      name: 'Usage plan',
      interval: 'month',
      price: { model: 'flat', amount: '10.00' },
      usage_charges,
    });
  const planA = await plan(a);
  const planB = b === undefined ? undefined : await plan(b);
  const clock = await created<Schemas['TestClock']>('/api/v1/test-clocks', {
    name: 'terms',
    frozen_time: '2026-01-01T00:00:00Z',
  });
  const user = await createUser(t);
  const sub = await created<Schemas['Subscription']>('/api/v1/subscriptions', {
    user_id: user.id,
    status: 'active',
    plan_id: planA.id,
    start_date: '2026-01-01',
    test_clock_id: clock.id,
  });
  const advance = async (to: string) => {
    const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
    expect(res.status, res.text).toBe(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  };
  await advance('2026-01-20T00:00:00Z');
  const record = async (n: number, at: string) => {
    const res = await t.api.post('/api/v1/usage-events').send({
      event_id: `e-${tag()}`,
      user_id: user.id,
      metric: metric.code,
      timestamp: at,
      properties: { n },
    });
    expect(res.status, res.text).toBe(201);
    return res.body as Schemas['UsageEvent'];
  };
  const usageLines = async (periodStart: string) => {
    const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id });
    const invoices = (res.body as Schemas['InvoiceList']).data.filter(
      (i) => i.period_start === periodStart && i.status !== 'void',
    );
    expect(invoices).toHaveLength(1);
    return invoices[0]!.lines
      .filter((l) => l.type === 'usage')
      .map((l) => [l.period_start, l.usage!.quantity, l.amount]);
  };
  return { metric, planA, planB, sub, advance, record, usageLines };
}

const perUnit = (amount: string) => (metric: string) => ({ metric, model: 'per_unit', amount });

describe('an invoice ahead of its period', () => {
  it('is refused while the usage it bills is being recorded, which stays open and is billed after', async () => {
    const { sub, advance, record, usageLines } = await setUp((m) => ({ a: [perUnit('1.00')(m)] }));
    await record(5, '2026-01-19T00:00:00Z');
    const before = await fingerprint(ctx.db);
    for (const date of ['2026-02-05', '2026-06-15']) {
      const early = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({ date });
      expect(expectProblem(early, 422, 'unprocessable').errors).toEqual([
        expect.objectContaining({ field: '/date' }),
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // January's usage is still open: recorded, and billed by February's invoice.
    await record(7, '2026-01-19T12:00:00Z');
    const usage = await t.api.get(`/api/v1/subscriptions/${sub.id}/usage`);
    expect(usage.body).toMatchObject({ period_start: '2026-01-01', invoiced: false, amount: '12.00' });
    await advance('2026-02-02T00:00:00Z');
    expect(await usageLines('2026-02-01')).toEqual([['2026-01-01', '12', '12.00']]);
    // The current period (started) is invoiced as before: the same invoice the renewal made.
    const current = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({ date: '2026-02-15' });
    expect(current.status, current.text).toBe(200);
  });
});

describe('a voided invoice', () => {
  it("forgives the usage it billed: the period's new invoice bills the price, not that usage again", async () => {
    const { sub, advance, record, usageLines } = await setUp((m) => ({ a: [perUnit('1.00')(m)] }));
    await record(5, '2026-01-10T00:00:00Z');
    await advance('2026-02-02T00:00:00Z');
    expect(await usageLines('2026-02-01')).toEqual([['2026-01-01', '5', '5.00']]);
    const list = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id });
    const feb = (list.body as Schemas['InvoiceList']).data.find((i) => i.period_start === '2026-02-01')!;
    expect((await t.api.post(`/api/v1/invoices/${feb.id}/void`).send({})).status).toBe(200);
    const again = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({ date: '2026-02-05' });
    expect(again.status, again.text).toBe(201);
    const invoice = again.body as Schemas['Invoice'];
    expect(invoice.lines.map((l) => [l.type, l.amount])).toEqual([['subscription', '10.00']]);
    expect(invoice.subtotal).toBe('10.00');
  });
});

describe('a change of plan', () => {
  it('is refused mid-period when it would bill the usage counted so far on other charges, writing nothing', async () => {
    const { sub, planA, record } = await setUp((m) => ({ a: [perUnit('1.00')(m)] }));
    await record(5, '2026-01-10T00:00:00Z');
    const plan = (usage_charges: unknown[]) =>
      created<Schemas['Plan']>('/api/v1/plans', {
        code: `p-${tag()}`,
        name: 'Other',
        interval: 'month',
        price: { model: 'flat', amount: '20.00' },
        usage_charges,
      });
    const metricOf = planA.usage_charges[0]!.metric;
    const repriced = await plan([perUnit('3.00')(metricOf)]);
    const without = await plan([]);
    const before = await fingerprint(ctx.db);
    for (const target of [repriced, without]) {
      for (const path of [
        `/api/v1/subscriptions/${sub.id}`,
        `/api/v1/subscriptions/${sub.id}/preview-change`,
      ]) {
        const res = await (path.endsWith('preview-change') ? t.api.post(path) : t.api.patch(path)).send({
          plan_id: target.id,
        });
        const problem = expectProblem(res, 422, 'unprocessable');
        expect(problem.detail).toContain(metricOf);
        expect(problem.errors).toEqual([expect.objectContaining({ field: '/plan_id' })]);
      }
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // The same charges, and one more: the usage counted so far is billed as it would have been.
    const other = await created<Schemas['BillableMetric']>('/api/v1/billable-metrics', {
      code: `o-${tag()}`,
      name: 'O',
      aggregation: 'count',
    });
    const superset = await plan([perUnit('1.00')(metricOf), perUnit('2.00')(other.code)]);
    const res = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: superset.id });
    expect(res.status, res.text).toBe(200);
    const usage = await t.api.get(`/api/v1/subscriptions/${sub.id}/usage`);
    expect((usage.body as Schemas['SubscriptionUsage']).charges.map((c) => [c.quantity, c.amount])).toEqual([
      ['5', '5.00'],
      ['0', '0.00'],
    ]);
  });

  it("scheduled for the period's end bills the period's usage at the old plan's prices", async () => {
    for (const b of [(m: string) => [perUnit('3.00')(m)], () => []]) {
      const { sub, planB, advance, record, usageLines } = await setUp((m) => ({
        a: [perUnit('1.00')(m)],
        b: b(m),
      }));
      await record(5, '2026-01-10T00:00:00Z');
      const scheduled = await t.api
        .post(`/api/v1/subscriptions/${sub.id}/scheduled-change`)
        .send({ plan_id: planB!.id });
      expect(scheduled.status, scheduled.text).toBe(200);
      await advance('2026-02-02T00:00:00Z');
      const current = await t.api.get(`/api/v1/subscriptions/${sub.id}`);
      expect((current.body as Schemas['Subscription']).plan_id).toBe(planB!.id);
      // January's 5 units, at plan A's 1.00.
      expect(await usageLines('2026-02-01')).toEqual([['2026-01-01', '5', '5.00']]);
      // And the period's usage reads as billed, not as plan B would price it.
      const january = await t.api
        .get(`/api/v1/subscriptions/${sub.id}/usage`)
        .query({ period_start: '2026-01-01' });
      expect(january.status, january.text).toBe(200);
      const read = january.body as Schemas['SubscriptionUsage'];
      expect([read.invoiced, read.amount]).toEqual([true, '5.00']);
      expect(read.charges.map((c) => [c.aggregation, c.quantity, c.billable_quantity, c.amount])).toEqual([
        ['sum', '5', '5', '5.00'],
      ]);
    }
  });
});

describe('an event a few minutes ahead of a scheduled change of plan', () => {
  it("counts by the plan in force at its time: the one the change makes from the period's start", async () => {
    // N charges no usage, A charges it: moving onto A at February's start counts the event of
    // 00:02 recorded at 23:58, for February; moving off A leaves it uncounted.
    for (const [from, to, counted] of [
      [() => [], (m: string) => [perUnit('1.00')(m)], true],
      [(m: string) => [perUnit('1.00')(m)], () => [], false],
    ] as const) {
      const { sub, planB, advance, record, usageLines } = await setUp((m) => ({ a: from(m), b: to(m) }));
      const scheduled = await t.api
        .post(`/api/v1/subscriptions/${sub.id}/scheduled-change`)
        .send({ plan_id: planB!.id });
      expect(scheduled.status, scheduled.text).toBe(200);
      await advance('2026-01-31T23:58:00Z');
      const early = await record(10, '2026-02-01T00:02:00Z');
      expect([early.counted, early.period_start]).toEqual(counted ? [true, '2026-02-01'] : [false, null]);
      await advance('2026-03-02T00:00:00Z');
      expect(await usageLines('2026-03-01')).toEqual(counted ? [['2026-02-01', '10', '10.00']] : []);
    }
  });
});

describe('a usage charge with a minimum', () => {
  it('bills it for a period paused on every day: a pause stops the price, not the charge', async () => {
    const { sub, advance, usageLines } = await setUp((m) => ({
      a: [{ ...perUnit('1.00')(m), minimum_amount: '0.75' }],
    }));
    const paused = await t.api
      .post(`/api/v1/subscriptions/${sub.id}/pause`)
      .send({ resumes_at: '2026-03-01' });
    expect(paused.status, paused.text).toBe(200);
    await advance('2026-03-02T00:00:00Z');
    // February, paused throughout with no event, on March's invoice: the minimum.
    expect(await usageLines('2026-03-01')).toEqual([['2026-02-01', '0', '0.75']]);
  });
});

describe("a plan's usage charges changed", () => {
  it('are refused when they would bill a period not invoiced yet past what a line carries, writing nothing', async () => {
    const { planA, sub, advance, record, usageLines } = await setUp((m) => ({ a: [perUnit('1.00')(m)] }));
    const metric = planA.usage_charges[0]!.metric;
    await record(9_999_999_999, '2026-01-10T00:00:00Z');
    const before = await fingerprint(ctx.db);
    for (const amount of ['2.00', '9999999999']) {
      const res = await t.api
        .patch(`/api/v1/plans/${planA.id}`)
        .send({ usage_charges: [perUnit(amount)(metric)] });
      const problem = expectProblem(res, 422, 'unprocessable');
      expect(problem.errors).toEqual([
        expect.objectContaining({ field: '/usage_charges/0', message: expect.stringContaining(sub.id) }),
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // A price that keeps the period within the limit is taken, and the renewal bills it.
    const cheaper = await t.api
      .patch(`/api/v1/plans/${planA.id}`)
      .send({ usage_charges: [perUnit('0.50')(metric)] });
    expect(cheaper.status, cheaper.text).toBe(200);
    await advance('2026-02-02T00:00:00Z');
    expect(await usageLines('2026-02-01')).toEqual([['2026-01-01', '9999999999', '4999999999.50']]);
  });
});

describe('a subscription moved to a plan that adds a charge', () => {
  it('is refused when the charge would bill its period not invoiced yet past what a line carries', async () => {
    // Plan A charges one dimension of the metric; its other dimensions' usage is counted all the same.
    const cheap = (m: string) => ({ ...perUnit('1.00')(m), dimension_value: 'cheap' });
    const advanced = (amount: string) => (m: string) => ({
      ...perUnit(amount)(m),
      dimension_value: 'advanced',
    });
    const { metric, planB, sub, advance, usageLines } = await setUp(
      (m) => ({ a: [cheap(m)], b: [cheap(m), advanced('2.00')(m)] }),
      { group_by: 'model' },
    );
    const recorded = await t.api.post('/api/v1/usage-events').send({
      event_id: `e-${tag()}`,
      user_id: sub.user_id,
      metric: metric.code,
      timestamp: '2026-01-10T00:00:00Z',
      properties: { n: 9_999_999_999, model: 'advanced' },
    });
    expect(recorded.status, recorded.text).toBe(201);
    const before = await fingerprint(ctx.db);
    const moved = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: planB!.id });
    const problem = expectProblem(moved, 422, 'unprocessable');
    expect(problem.errors).toEqual([
      expect.objectContaining({ field: '/plan_id', message: expect.stringContaining('9999999999.99') }),
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    // At a price that keeps the period within the limit, the move is taken and the period billed so.
    const repriced = await t.api
      .patch(`/api/v1/plans/${planB!.id}`)
      .send({ usage_charges: [cheap(metric.code), advanced('0.50')(metric.code)] });
    expect(repriced.status, repriced.text).toBe(200);
    const again = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: planB!.id });
    expect(again.status, again.text).toBe(200);
    await advance('2026-02-02T00:00:00Z');
    expect(await usageLines('2026-02-01')).toContainEqual(['2026-01-01', '9999999999', '4999999999.50']);
  });
});

describe('a period invoiced while its plan charged no usage', () => {
  it('is closed all the same: a charge added later refuses late events for it instead of never billing them', async () => {
    const { metric, planA, sub, advance } = await setUp(() => ({ a: [] }));
    await advance('2026-02-02T00:00:00Z');
    const added = await t.api
      .patch(`/api/v1/plans/${planA.id}`)
      .send({ usage_charges: [perUnit('100.00')(metric.code)] });
    expect(added.status, added.text).toBe(200);
    const before = await fingerprint(ctx.db);
    const late = await t.api.post('/api/v1/usage-events').send({
      event_id: `e-${tag()}`,
      user_id: sub.user_id,
      metric: metric.code,
      timestamp: '2026-01-15T00:00:00Z',
      properties: { n: 1 },
    });
    expect(expectProblem(late, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/timestamp', message: expect.stringContaining('invoiced already') }),
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    const january = await t.api
      .get(`/api/v1/subscriptions/${sub.id}/usage`)
      .query({ period_start: '2026-01-01' });
    expect(january.body).toMatchObject({ invoiced: true, amount: '0.00', charges: [] });
  });
});

describe("an event recorded while its plan's charges change", () => {
  it('waits for the change and is checked against the new prices (the cap held against both)', async () => {
    const { metric, planA, sub } = await setUp((m) => ({ a: [perUnit('1.00')(m)] }));
    let answered = false;
    let event: Promise<{ status: number; text: string; body: unknown }> | undefined;
    await ctx.db.transaction().execute(async (trx) => {
      // What a PATCH of the plan holds while it checks the open periods and writes the charges.
      await sql`select id from plans where id = ${planA.id} for update`.execute(trx);
      event = t.api
        .post('/api/v1/usage-events')
        .send({
          event_id: `e-${tag()}`,
          user_id: sub.user_id,
          metric: metric.code,
          timestamp: '2026-01-10T00:00:00Z',
          properties: { n: 2 },
        })
        .then((res) => {
          answered = true;
          return res;
        });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(answered).toBe(false);
      await sql`update plans set usage_charges = jsonb_set(usage_charges, '{0,amount}', '"9999999999"')
        where id = ${planA.id}`.execute(trx);
    });
    const res = await event!;
    expect(res.status, res.text).toBe(422);
    expect(res.text).toContain('9999999999.99');
  });
});

describe('an event naming a subscription whose plan does not charge its metric', () => {
  it('is kept uncounted, and a charge added to the plan later does not bill it', async () => {
    const { metric, planA, sub, advance, usageLines } = await setUp(() => ({ a: [] }));
    const res = await t.api.post('/api/v1/usage-events').send({
      event_id: `e-${tag()}`,
      user_id: sub.user_id,
      subscription_id: sub.id,
      metric: metric.code,
      timestamp: '2026-01-10T00:00:00Z',
      properties: { n: 7 },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ subscription_id: null, counted: false, period_start: null });
    const added = await t.api
      .patch(`/api/v1/plans/${planA.id}`)
      .send({ usage_charges: [perUnit('1.00')(metric.code)] });
    expect(added.status, added.text).toBe(200);
    const usage = await t.api.get(`/api/v1/subscriptions/${sub.id}/usage`);
    expect((usage.body as Schemas['SubscriptionUsage']).amount).toBe('0.00');
    await advance('2026-02-02T00:00:00Z');
    expect(await usageLines('2026-02-01')).toEqual([['2026-01-01', '0', '0.00']]);
  });
});
