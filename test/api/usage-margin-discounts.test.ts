// The usage margin report counts a usage line's revenue after its share of the invoice's discount
// (discount_share), and splits a credit note of the whole invoice on what each line billed after
// it. Counted before the discount, a customer on a 100% coupon looked profitable, and a 1.00 note
// of a 90%-discounted invoice took 5.00 of usage revenue away (helper-metrics2 F1).
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';

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

/**
 * A customer on 10.00 a month plus 0.10 a call, with `percentOff` off forever, who makes `calls`
 * calls in January that cost the tenant `costEach` each; billed on February 1st. Its own tenant,
 * so that the report holds only it.
 */
async function januaryOf(percentOff: string, calls: number, costEach: string) {
  t = await ctx.newTenant();
  const metric = await created<Schemas['BillableMetric']>('/api/v1/billable-metrics', {
    code: `calls-${tag()}`,
    name: 'Calls',
    aggregation: 'count',
  });
  const plan = await created<Schemas['Plan']>('/api/v1/plans', {
    code: `p-${tag()}`,
    name: 'Calls plan',
    interval: 'month',
    price: { model: 'flat', amount: '10.00' },
    usage_charges: [{ metric: metric.code, model: 'per_unit', amount: '0.10' }],
  });
  const coupon = await created<Schemas['Coupon']>('/api/v1/coupons', {
    name: `${percentOff}% off`,
    percent_off: percentOff,
    duration: 'forever',
  });
  const clock = await created<Schemas['TestClock']>('/api/v1/test-clocks', {
    name: 'margin',
    frozen_time: '2026-01-01T00:00:00Z',
  });
  const user = await createUser(t);
  const sub = await created<Schemas['Subscription']>('/api/v1/subscriptions', {
    user_id: user.id,
    status: 'active',
    plan_id: plan.id,
    start_date: '2026-01-01',
    test_clock_id: clock.id,
    coupon_id: coupon.id,
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
  const events = Array.from({ length: calls }, (_, i) => ({
    event_id: `e-${tag()}-${i}`,
    user_id: user.id,
    metric: metric.code,
    timestamp: '2026-01-15T00:00:00Z',
    cost: costEach,
  }));
  const batch = await t.api.post('/api/v1/usage-events/batch').send({ events });
  expect(batch.status).toBe(200);
  expect((batch.body as { created: number }).created).toBe(calls);
  await advance('2026-02-01T12:00:00Z');
  const invoices = (
    (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
  ).data;
  const february = invoices.find((i) => i.period_start === '2026-02-01')!;
  const report = async () => {
    const res = await t.api
      .get('/api/v1/reports/usage-margin')
      .query({ from: '2026-01-01', to: '2026-02-01', group_by: 'user' });
    expect(res.status, res.text).toBe(200);
    return res.body as Schemas['UsageMarginReport'];
  };
  return { february, report };
}

describe('usage margin with discounts', () => {
  it('counts no revenue for usage a 100% coupon took to nothing: its customer is a loss leader', async () => {
    const { february, report } = await januaryOf('100', 100, '0.10');
    // 10.00 of price and 10.00 of usage, all of it taken by the discount: half of it the usage's.
    expect(february.subtotal).toBe('0.00');
    const usage = february.lines.find((l) => l.type === 'usage')!;
    expect([usage.amount, usage.discount_share]).toEqual(['10.00', '10.00']);
    const margin = await report();
    expect(margin.totals).toMatchObject({ revenue: '0.0000', cost: '10.0000', margin: '-10.0000' });
    expect(margin.loss_leader_count).toBe(1);
  });

  it('splits a note of the whole invoice on what each line billed after the discount', async () => {
    const { february, report } = await januaryOf('90', 100, '0.01');
    // 10.00 + 10.00 less 90% (18.00, 9.00 of it the usage's): 2.00, of which the usage is 1.00.
    expect(february.subtotal).toBe('2.00');
    expect(february.lines.find((l) => l.type === 'usage')!.discount_share).toBe('9.00');
    expect((await report()).totals).toMatchObject({ revenue: '1.0000', cost: '1.0000' });
    // A 1.00 note of the invoice as a whole: half of it is the usage's (1.00 of the 2.00).
    const note = await t.api
      .post(`/api/v1/invoices/${february.id}/credit-notes`)
      .send({ reason: 'goodwill', amount: '1.00' });
    expect(note.status, note.text).toBe(201);
    expect((await report()).totals).toMatchObject({ revenue: '0.5000', margin: '-0.5000' });
    // The rest of it: no usage revenue is left, and never less than none.
    const rest = await t.api
      .post(`/api/v1/invoices/${february.id}/credit-notes`)
      .send({ reason: 'goodwill', amount: '1.00' });
    expect(rest.status, rest.text).toBe(201);
    expect((await report()).totals).toMatchObject({ revenue: '0.0000', margin: '-1.0000' });
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
