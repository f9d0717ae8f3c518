// A repeating coupon's months are that many monthly invoices, whatever happens around them
// (money20): periods before its months that are invoiced later (back-billed, or voided and
// invoiced again) are not reduced; a start date moved before any invoice moves its months with
// the first invoice; applied while paused without a resume day, its months count from the
// period it resumes in. Each case counts the invoices it reduced.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';

const ctx = useTestApp();
let t: TestTenant;
let planId: string;

type Subscription = Schemas['Subscription'];
type Invoice = Schemas['Invoice'];

beforeAll(async () => {
  t = await ctx.newTenant();
  const plan = await t.api.post('/api/v1/plans').send({
    code: 'monthly-20',
    name: 'Monthly',
    interval: 'month',
    price: { model: 'flat', amount: '20.00' },
  });
  expect(plan.status, plan.text).toBe(201);
  planId = (plan.body as Schemas['Plan']).id;
});

let tag = 0;
async function repeating(months: number) {
  const res = await t.api
    .post('/api/v1/coupons')
    .send({ name: `Half ${++tag}`, percent_off: '50', duration: 'repeating', duration_in_months: months });
  expect(res.status, res.text).toBe(201);
  return (res.body as Schemas['Coupon']).id;
}

async function repeatingAmount(amount: string, months: number) {
  const res = await t.api
    .post('/api/v1/coupons')
    .send({ name: `Off ${++tag}`, amount_off: amount, duration: 'repeating', duration_in_months: months });
  expect(res.status, res.text).toBe(201);
  return (res.body as Schemas['Coupon']).id;
}

/**
 * A customer on the plan, on a clock at `now`, created with `extra`; the worker's first look at it
 * done, unless `before` (then run by the first advance).
 */
async function subscribed(now: string, extra: Record<string, unknown>, before?: 'before the worker') {
  const clock = (await t.api.post('/api/v1/test-clocks').send({ name: 'months', frozen_time: now }))
    .body as Schemas['TestClock'];
  const user = await createUser(t);
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', plan_id: planId, test_clock_id: clock.id, ...extra });
  expect(res.status, res.text).toBe(201);
  const sub = res.body as Subscription;
  const work = () =>
    performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  if (!before) await work();
  const send = async (method: 'post' | 'patch', path: string, body: Record<string, unknown>) => {
    const answer = await t.api[method](path).send(body);
    expect(answer.status, answer.text).toBeLessThan(300);
    return answer.body as Record<string, unknown>;
  };
  return {
    sub,
    send,
    async advance(to: string) {
      const advanced = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
      expect(advanced.status, advanced.text).toBe(202);
      await work();
    },
    /** Each period invoice not voided, oldest period first: [period_start, its discount or null]. */
    async discounts() {
      const list = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 });
      expect(list.status, list.text).toBe(200);
      return (list.body as Schemas['InvoiceList']).data
        .filter((i) => i.status !== 'void' && i.lines.some((l) => l.type === 'subscription'))
        .map((i) => [i.period_start, i.lines.find((l) => l.type === 'discount')?.amount ?? null])
        .sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
    },
    async backBill(date: string) {
      const draft = (await send('post', `/api/v1/subscriptions/${sub.id}/invoices`, { date })) as Invoice;
      await send('post', `/api/v1/invoices/${draft.id}/finalize`, {});
      return draft;
    },
  };
}

describe('a once coupon', () => {
  it('given with a backdated subscription reduces its first invoice, not an earlier period billed by hand first (import1 #1)', async () => {
    const once = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'Once half', percent_off: '50', duration: 'once' });
    expect(once.status, once.text).toBe(201);
    const s = await subscribed(
      '2026-05-15T00:00:00Z',
      { start_date: '2026-03-01', coupon_id: (once.body as Schemas['Coupon']).id },
      'before the worker',
    );
    await s.backBill('2026-03-10'); // before the worker's first renewal (May)
    await s.advance('2026-05-15T01:00:00Z');
    expect(await s.discounts()).toEqual([
      ['2026-03-01', null],
      ['2026-05-01', '-10.00'],
    ]);
    const after = (await t.api.get(`/api/v1/subscriptions/${s.sub.id}`)).body as Subscription;
    expect(after.discount).toBeNull(); // used up by May's
  });
});

describe('a repeating coupon', () => {
  it('given with a backdated subscription reduces its months, not the earlier periods billed by hand', async () => {
    const s = await subscribed('2026-05-15T00:00:00Z', {
      start_date: '2026-03-01',
      coupon_id: await repeating(3),
    });
    expect(s.sub.discount).toMatchObject({ end: '2026-08-01T00:00:00.000Z' });
    await s.backBill('2026-03-10');
    await s.backBill('2026-04-10');
    await s.advance('2026-08-02T00:00:00Z');
    expect(await s.discounts()).toEqual([
      ['2026-03-01', null],
      ['2026-04-01', null],
      ['2026-05-01', '-10.00'],
      ['2026-06-01', '-10.00'],
      ['2026-07-01', '-10.00'],
      ['2026-08-01', null],
    ]);
  });

  it('applied mid-period does not reduce that period invoiced again after a void', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', { start_date: '2026-01-01' });
    await s.advance('2026-01-15T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, { coupon_id: await repeating(1) });
    await s.advance('2026-02-02T00:00:00Z');
    const list = await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id });
    const january = (list.body as Schemas['InvoiceList']).data.find((i) => i.period_start === '2026-01-01')!;
    await s.send('post', `/api/v1/invoices/${january.id}/void`, {});
    await s.backBill('2026-01-10');
    await s.advance('2026-03-02T00:00:00Z');
    expect(await s.discounts()).toEqual([
      ['2026-01-01', null],
      ['2026-02-01', '-10.00'],
      ['2026-03-01', null],
    ]);
  });

  it('reduces one of its months invoiced again after a void once a renewal removed it (retest5 #3)', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', {
      start_date: '2026-01-01',
      coupon_id: await repeating(3),
    });
    await s.advance('2026-04-05T00:00:00Z');
    const removed = await t.api.get(`/api/v1/subscriptions/${s.sub.id}`);
    expect((removed.body as Subscription).discount).toBeNull();
    const list = await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id });
    const march = (list.body as Schemas['InvoiceList']).data.find((i) => i.period_start === '2026-03-01')!;
    await s.send('post', `/api/v1/invoices/${march.id}/void`, {});
    const again = await s.backBill('2026-03-10');
    expect(again.lines.find((l) => l.type === 'discount')?.amount).toBe('-10.00');
    // Not a month of it: April, voided and invoiced again, stays at full price.
    const april = (list.body as Schemas['InvoiceList']).data.find((i) => i.period_start === '2026-04-01')!;
    await s.send('post', `/api/v1/invoices/${april.id}/void`, {});
    await s.backBill('2026-04-10');
    expect(await s.discounts()).toEqual([
      ['2026-01-01', '-10.00'],
      ['2026-02-01', '-10.00'],
      ['2026-03-01', '-10.00'],
      ['2026-04-01', null],
    ]);
  });

  it('removed by hand before its end reduces none of its months invoiced again after a void', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', {
      start_date: '2026-01-01',
      coupon_id: await repeating(3),
    });
    await s.advance('2026-02-15T00:00:00Z');
    const removed = await t.api.delete(`/api/v1/subscriptions/${s.sub.id}/discount`);
    expect(removed.status, removed.text).toBe(200);
    const list = await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id });
    const february = (list.body as Schemas['InvoiceList']).data.find((i) => i.period_start === '2026-02-01')!;
    expect(february.lines.find((l) => l.type === 'discount')?.amount).toBe('-10.00');
    await s.send('post', `/api/v1/invoices/${february.id}/void`, {});
    const again = await s.backBill('2026-02-10');
    expect(again.lines.some((l) => l.type === 'discount')).toBe(false);
  });

  for (const [moved, expected] of [
    [
      '2026-04-15',
      [
        ['2026-04-15', '-10.00'],
        ['2026-05-15', '-10.00'],
        ['2026-06-15', '-10.00'],
        ['2026-07-15', null],
      ],
    ],
    [
      '2026-02-01',
      [
        ['2026-02-01', '-10.00'],
        ['2026-03-01', '-10.00'],
        ['2026-04-01', '-10.00'],
        ['2026-05-01', null],
      ],
    ],
  ] as const) {
    it(`given with a future subscription moves with its start (to ${moved}) before any invoice`, async () => {
      const s = await subscribed('2026-01-01T00:00:00Z', {
        start_date: '2026-03-01',
        coupon_id: await repeating(3),
      });
      expect(s.sub.discount).toMatchObject({ end: '2026-06-01T00:00:00.000Z' });
      const patched = (await s.send('patch', `/api/v1/subscriptions/${s.sub.id}`, {
        start_date: moved,
      })) as Subscription;
      const end = `${expected[3][0]}T00:00:00.000Z`;
      expect(patched.discount).toMatchObject({ end });
      await s.advance(`${expected[3][0]}T01:00:00Z`);
      expect(await s.discounts()).toEqual(expected);
    });
  }

  it('applied while paused without a resume day neither reduces nor runs out on the usage invoices of the pause', async () => {
    const metric = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code: `calls-${++tag}`, name: 'Calls', aggregation: 'count' });
    expect(metric.status, metric.text).toBe(201);
    const plan = await t.api.post('/api/v1/plans').send({
      code: `usage-${tag}`,
      name: 'With usage',
      interval: 'month',
      price: { model: 'flat', amount: '20.00' },
      usage_charges: [
        { metric: (metric.body as Schemas['BillableMetric']).code, model: 'per_unit', amount: '50.00' },
      ],
    });
    expect(plan.status, plan.text).toBe(201);
    const s = await subscribed('2026-01-01T00:00:00Z', {
      start_date: '2026-01-01',
      plan_id: (plan.body as Schemas['Plan']).id,
    });
    const call = async (at: string) => {
      await s.advance(at);
      const res = await t.api.post('/api/v1/usage-events').send({
        event_id: `call-${++tag}`,
        user_id: s.sub.user_id,
        metric: (metric.body as Schemas['BillableMetric']).code,
        timestamp: at,
      });
      expect(res.status, res.text).toBe(201);
    };
    await s.advance('2026-02-10T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/pause`, {});
    await s.advance('2026-03-05T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, { coupon_id: await repeating(2) });
    // Usage while paused is billed by the renewals of April and May: at full price, and the
    // discount stays for the months after the resume.
    await call('2026-03-20T00:00:00Z');
    await call('2026-04-20T00:00:00Z');
    await s.advance('2026-05-02T00:00:00Z');
    const list = async () =>
      (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id, limit: 100 }))
          .body as Schemas['InvoiceList']
      ).data;
    const usageOnly = (await list()).filter((i) => ['2026-04-01', '2026-05-01'].includes(i.period_start));
    // (The pause's credit of February's days is taken by April's.)
    expect(usageOnly.map((i) => [i.period_start, i.lines.map((l) => [l.type, l.amount])])).toEqual([
      ['2026-05-01', [['usage', '50.00']]],
      [
        '2026-04-01',
        [
          ['usage', '50.00'],
          ['proration', '-13.57'],
        ],
      ],
    ]);
    // April's usage invoice voided, April is not invoiced again by hand at its price: it was paused.
    const april = usageOnly.find((i) => i.period_start === '2026-04-01')!;
    await s.send('post', `/api/v1/invoices/${april.id}/void`, {});
    const byHand = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/invoices`)
      .send({ date: '2026-04-10' });
    expect(byHand.status, byHand.text).toBe(422);
    const resumed = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/resume`, {})) as Subscription;
    expect(resumed.discount).toMatchObject({ end: '2026-07-01T00:00:00.000Z' });
    await s.advance('2026-07-02T00:00:00Z');
    const reduced = (await list())
      .filter((i) => i.lines.some((l) => l.type === 'discount'))
      .map((i) => i.period_start)
      .sort();
    expect(reduced).toEqual(['2026-05-02', '2026-06-01']);
  });

  it('applied during a short pause inside a period invoiced before it keeps its months after that period', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', { start_date: '2026-01-01' });
    await s.advance('2026-03-10T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/pause`, {});
    await s.advance('2026-03-12T00:00:00Z');
    const applied = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, {
      coupon_id: await repeating(2),
    })) as Subscription;
    expect(applied.discount).toMatchObject({ end: '2026-06-01T00:00:00.000Z' });
    await s.advance('2026-03-15T00:00:00Z');
    const resumed = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/resume`, {})) as Subscription;
    expect(resumed.discount).toMatchObject({ end: '2026-06-01T00:00:00.000Z' });
    await s.advance('2026-06-02T00:00:00Z');
    expect((await s.discounts()).filter(([, discount]) => discount !== null).map(([start]) => start)).toEqual(
      ['2026-04-01', '2026-05-01'],
    );
  });

  it('applied while paused until a day, then resumed early by hand, counts from the period it resumes in (retest6)', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', { start_date: '2026-01-01' });
    await s.advance('2026-02-10T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/pause`, { resumes_at: '2026-08-15' });
    await s.advance('2026-03-05T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, { coupon_id: await repeating(2) });
    await s.advance('2026-04-10T00:00:00Z');
    const resumed = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/resume`, {})) as Subscription;
    expect(resumed.discount).toMatchObject({ end: '2026-06-01T00:00:00.000Z' });
    await s.advance('2026-07-02T00:00:00Z');
    const list = await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id, limit: 100 });
    const reduced = (list.body as Schemas['InvoiceList']).data
      .filter((i) => i.lines.some((l) => l.type === 'discount'))
      .map((i) => i.period_start)
      .sort();
    // April's rest (with the pause's credit, in May's invoice or the resume's) and May: 2 months.
    expect(reduced.length).toBeLessThanOrEqual(2);
    expect(reduced.every((start) => start < '2026-06-01')).toBe(true);
    expect((await s.discounts()).find(([start]) => start === '2026-06-01')).toEqual(['2026-06-01', null]);
  });

  it('applied before a pause, its months not begun, counts them from the resume (retest6)', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', { start_date: '2026-01-01' });
    await s.advance('2026-02-05T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, { coupon_id: await repeating(2) });
    await s.advance('2026-02-10T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/pause`, {});
    await s.advance('2026-05-01T00:00:00Z');
    const resumed = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/resume`, {})) as Subscription;
    expect(resumed.discount).toMatchObject({ end: '2026-07-01T00:00:00.000Z' });
    await s.advance('2026-07-02T00:00:00Z');
    expect((await s.discounts()).filter(([, discount]) => discount !== null).map(([start]) => start)).toEqual(
      ['2026-05-01', '2026-06-01'],
    );
  });

  it('applied while paused without a resume day counts its months from the period it resumes in', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', { start_date: '2026-01-01' });
    await s.advance('2026-02-10T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/pause`, {});
    await s.advance('2026-03-05T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, { coupon_id: await repeating(2) });
    await s.advance('2026-06-15T00:00:00Z');
    const resumed = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/resume`, {})) as Subscription;
    expect(resumed.discount).toMatchObject({ end: '2026-08-01T00:00:00.000Z' });
    await s.advance('2026-08-02T00:00:00Z');
    // June's days from the resume are charged (10.67) with July's invoice, since the pause's
    // credit of February's days (13.57) left the resume nothing to invoice: both months reduced,
    // half of 30.67 (half up), and August at full price.
    expect(await s.discounts()).toEqual([
      ['2026-01-01', null],
      ['2026-02-01', null],
      ['2026-07-01', '-15.34'],
      ['2026-08-01', null],
    ]);
  });

  it('of a fixed amount, applied while paused and resumed mid-period, counts its months from the next period (retest5 #6)', async () => {
    const s = await subscribed('2026-01-01T00:00:00Z', { start_date: '2026-01-01' });
    await s.advance('2026-02-10T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/pause`, {});
    await s.advance('2026-03-05T00:00:00Z');
    await s.send('post', `/api/v1/subscriptions/${s.sub.id}/discount`, {
      coupon_id: await repeatingAmount('10.00', 2),
    });
    await s.advance('2026-06-15T00:00:00Z');
    const resumed = (await s.send('post', `/api/v1/subscriptions/${s.sub.id}/resume`, {})) as Subscription;
    // The rest of June is billed with a percentage only: a fixed amount is one per period invoice.
    expect(resumed.discount).toMatchObject({ end: '2026-09-01T00:00:00.000Z' });
    await s.advance('2026-09-02T00:00:00Z');
    expect(await s.discounts()).toEqual([
      ['2026-01-01', null],
      ['2026-02-01', null],
      ['2026-07-01', '-10.00'],
      ['2026-08-01', '-10.00'],
      ['2026-09-01', null],
    ]);
  });
});
