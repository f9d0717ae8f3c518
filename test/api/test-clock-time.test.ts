// A subscription on a test clock lives in the clock's time: its current period, its cancellation,
// the default date of its invoices and the time of its events all come from the clock, never
// from the wall clock. And the edges of a billing schedule: cancellations at the end of
// multi-month periods, start dates moved past the next renewal, invoices after the end.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { simulatedGateway } from '../../src/billing/gateway.js';
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

const work = (clockId?: string) =>
  performDueWork(
    { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
    clockId ? { tenantId: t.id, clockId } : { tenantId: t.id },
  );

async function plan(interval: 'month' | 'year', interval_count = 1, amount = '30.00') {
  const code = `p-${interval}-${interval_count}-${Math.random().toString(36).slice(2, 8)}`;
  const res = await t.api
    .post('/api/v1/plans')
    .send({ code, name: code, interval, interval_count, price: { model: 'flat', amount } });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Plan'];
}

async function clock(at: string) {
  const res = await t.api.post('/api/v1/test-clocks').send({ name: 'clock', frozen_time: at });
  expect(res.status, res.text).toBe(201);
  const id = (res.body as Schemas['TestClock']).id;
  return {
    id,
    async advance(to: string) {
      const advanced = await t.api.post(`/api/v1/test-clocks/${id}/advance`).send({ frozen_time: to });
      expect(advanced.status, advanced.text).toBe(202);
      await work(id);
      const after = await t.api.get(`/api/v1/test-clocks/${id}`);
      expect((after.body as Schemas['TestClock']).status).toBe('ready');
    },
  };
}

async function subscribe(body: Record<string, unknown>) {
  const user = await createUser(t);
  const res = await t.api.post('/api/v1/subscriptions').send({ user_id: user.id, status: 'active', ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

const get = async (id: string) =>
  (await t.api.get(`/api/v1/subscriptions/${id}`)).body as Schemas['Subscription'];
const invoicesOf = async (id: string) =>
  (
    (await t.api.get('/api/v1/invoices').query({ subscription_id: id, limit: 100 }))
      .body as Schemas['InvoiceList']
  ).data
    .map((i) => i.period_start)
    .sort();
const eventsOf = async (resourceId: string) =>
  (
    (await t.api.get('/api/v1/events').query({ resource_id: resourceId, limit: 100 }))
      .body as Schemas['EventList']
  ).data;

describe('the events of a test clock advanced months at once', () => {
  it("show each step's subscription as of the step's day, not the clock's target", async () => {
    const c = await clock('2026-03-02T00:00:00Z');
    const p = await plan('month', 1, '20.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2026-03-02', test_clock_id: c.id });
    await c.advance('2026-05-20T00:00:00Z');
    const renewals = (await eventsOf(sub.id))
      .filter((e) => e.type === 'subscription.renewed')
      .map((e) => {
        const data = e.data as unknown as Schemas['Subscription'];
        return [e.occurred_at.slice(0, 10), data.current_period_start, data.current_period_end];
      })
      .sort();
    expect(renewals).toEqual([
      ['2026-03-02', '2026-03-02', '2026-04-02'],
      ['2026-04-02', '2026-04-02', '2026-05-02'],
      ['2026-05-02', '2026-05-02', '2026-06-02'],
    ]);
    expect(await get(sub.id)).toMatchObject({ current_period_start: '2026-05-02' });
    // One version per change a client sees: closing a period's usage (every renewal does) is not one.
    const versions = (await eventsOf(sub.id)).map(
      (e) => [e.type, (e.data as unknown as Schemas['Subscription']).version] as const,
    );
    expect(versions).toEqual([
      ['subscription.created', 1],
      ['subscription.renewed', 2],
      ['subscription.renewed', 3],
      ['subscription.renewed', 4],
    ]);
    expect(await get(sub.id)).toMatchObject({ version: 4 });
  });
});

describe("a subscription's events, replayed", () => {
  // Each event's `previous` names every field that moved since the subscription's event before it,
  // with its value then: a reader who keeps the last event's data sees every change named.
  async function expectReplayable(subscriptionId: string) {
    const events = await eventsOf(subscriptionId);
    expect(events.length).toBeGreaterThan(2);
    for (let i = 1; i < events.length; i++) {
      const before = events[i - 1]!.data as unknown as Record<string, unknown>;
      const after = events[i]!.data as unknown as Record<string, unknown>;
      const moved = Object.fromEntries(
        Object.keys(after)
          .filter((k) => k !== 'version' && k !== 'updated_at')
          .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
          .map((k) => [k, before[k]]),
      );
      expect({ type: events[i]!.type, previous: events[i]!.previous ?? {} }).toEqual({
        type: events[i]!.type,
        previous: moved,
      });
    }
    return events;
  }

  it('name the period a renewal ended, a trial ending and a new schedule too', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const monthly = await plan('month', 1, '20.00');
    const yearly = await plan('year', 1, '200.00');
    const renewing = await subscribe({ plan_id: monthly.id, start_date: '2026-01-01', test_clock_id: c.id });
    const trial = await subscribe({
      plan_id: monthly.id,
      start_date: '2026-01-01',
      status: 'trialing',
      trial_end: '2026-01-20',
      test_clock_id: c.id,
    });
    const changing = await subscribe({ plan_id: monthly.id, start_date: '2026-01-10', test_clock_id: c.id });
    const scheduled = await t.api
      .post(`/api/v1/subscriptions/${changing.id}/scheduled-change`)
      .send({ plan_id: yearly.id });
    expect(scheduled.status, scheduled.text).toBe(200);
    await c.advance('2026-03-15T00:00:00Z');

    const renewals = (await expectReplayable(renewing.id)).filter((e) => e.type === 'subscription.renewed');
    expect(renewals.map((e) => e.previous)).toEqual([
      { billed_until: '2026-01-01' },
      { billed_until: '2026-02-01', current_period_start: '2026-01-01', current_period_end: '2026-02-01' },
      { billed_until: '2026-03-01', current_period_start: '2026-02-01', current_period_end: '2026-03-01' },
    ]);
    const ended = (await expectReplayable(trial.id)).find((e) => e.previous?.status === 'trialing');
    expect(ended?.previous).toMatchObject({
      current_period_start: '2026-01-01',
      current_period_end: '2026-01-20',
    });
    const applied = (await expectReplayable(changing.id)).find(
      (e) => e.type === 'subscription.scheduled_change_applied',
    );
    expect(applied?.previous).toMatchObject({
      current_period_start: '2026-01-10',
      current_period_end: '2026-02-10',
    });
    expect(applied?.data).toMatchObject({
      current_period_start: '2026-02-10',
      current_period_end: '2027-02-10',
    });
  });

  it('name the period a scheduled cancellation ended, and the periods of a pause', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const monthly = await plan('month', 1, '20.00');
    const canceling = await subscribe({ plan_id: monthly.id, start_date: '2026-01-01', test_clock_id: c.id });
    const pausing = await subscribe({ plan_id: monthly.id, start_date: '2026-01-01', test_clock_id: c.id });
    await c.advance('2026-01-05T00:00:00Z');
    const cancel = await t.api
      .post(`/api/v1/subscriptions/${canceling.id}/cancel`)
      .send({ at: 'period_end' });
    expect(cancel.status, cancel.text).toBe(200);
    const pause = await t.api
      .post(`/api/v1/subscriptions/${pausing.id}/pause`)
      .send({ resumes_at: '2026-03-10' });
    expect(pause.status, pause.text).toBe(200);
    const toBoundary = await subscribe({
      plan_id: monthly.id,
      start_date: '2026-01-01',
      test_clock_id: c.id,
    });
    const paused = await t.api
      .post(`/api/v1/subscriptions/${toBoundary.id}/pause`)
      .send({ resumes_at: '2026-04-01' });
    expect(paused.status, paused.text).toBe(200);
    await c.advance('2026-04-15T00:00:00Z');
    const canceled = (await expectReplayable(canceling.id)).find((e) => e.type === 'subscription.canceled');
    expect(canceled?.data).toMatchObject({
      current_period_start: '2026-01-01',
      current_period_end: '2026-02-01',
    });
    await expectReplayable(pausing.id);
    // Resumed by the worker on a period's first day: the period that ended is named too.
    const resumed = (await expectReplayable(toBoundary.id)).find((e) => e.type === 'subscription.resumed');
    expect(resumed?.previous).toMatchObject({ current_period_start: '2026-03-01' });
  });

  it("are in their resource's order: a customer's and a coupon's in real time, whatever clock moved them", async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const monthly = await plan('month', 1, '20.00');
    const coupon = await t.api
      .post('/api/v1/coupons')
      .send({ name: `c-${Math.random()}`, percent_off: '10', duration: 'forever' });
    const sub = await subscribe({
      plan_id: monthly.id,
      start_date: '2026-01-01',
      test_clock_id: c.id,
      coupon_id: (coupon.body as Schemas['Coupon']).id,
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    await c.advance('2026-01-05T00:00:00Z');
    const [invoice] = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data;
    const credited = await t.api
      .post(`/api/v1/invoices/${invoice!.id}/credit-notes`)
      .send({ reason: 'goodwill', amount: '5.00', refund_to: 'balance' });
    expect(credited.status, credited.text).toBe(201);
    for (const id of [sub.user_id, (coupon.body as Schemas['Coupon']).id]) {
      const events = await eventsOf(id);
      expect(events.length).toBeGreaterThan(1);
      const times = events.map((e) => e.occurred_at);
      expect(times, id).toEqual([...times].sort());
    }
    // The clock's own resources stay in its time.
    expect((await eventsOf(sub.id)).every((e) => e.occurred_at.startsWith('2026-01'))).toBe(true);
  });

  it('name a discount once, when it is used up or ends', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const monthly = await plan('month', 1, '20.00');
    const coupon = async (body: Record<string, unknown>) => {
      const res = await t.api.post('/api/v1/coupons').send({ name: `c-${Math.random()}`, ...body });
      expect(res.status, res.text).toBe(201);
      return (res.body as Schemas['Coupon']).id;
    };
    const once = await coupon({ percent_off: '50', duration: 'once' });
    const repeating = await coupon({ amount_off: '5.00', duration: 'repeating', duration_in_months: 2 });
    const subs = [
      await subscribe({
        plan_id: monthly.id,
        start_date: '2026-01-01',
        test_clock_id: c.id,
        coupon_id: once,
      }),
      await subscribe({
        plan_id: monthly.id,
        start_date: '2026-01-01',
        test_clock_id: c.id,
        coupon_id: repeating,
      }),
    ];
    await c.advance('2026-05-15T00:00:00Z');
    for (const sub of subs) {
      const named = (await expectReplayable(sub.id)).filter((e) => e.previous && 'discount' in e.previous);
      expect(named.map((e) => e.type)).toHaveLength(1);
    }
  });

  it('name what changes and prorations moved, up to a cancellation', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const basic = await plan('month', 1, '20.00');
    const pro = await plan('month', 1, '50.00');
    const yearly = await plan('year', 1, '400.00');
    const coupon = await t.api
      .post('/api/v1/coupons')
      .send({ name: `c-${Math.random()}`, percent_off: '10', duration: 'once' });
    const sub = await subscribe({ plan_id: basic.id, start_date: '2026-01-01', test_clock_id: c.id });
    const patch = async (body: Record<string, unknown>) => {
      const res = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send(body);
      expect(res.status, res.text).toBe(200);
    };
    await c.advance('2026-01-10T00:00:00Z');
    await patch({ plan_id: pro.id, proration_behavior: 'always_invoice' });
    await c.advance('2026-02-05T00:00:00Z');
    const discounted = await t.api
      .post(`/api/v1/subscriptions/${sub.id}/discount`)
      .send({ coupon_id: (coupon.body as Schemas['Coupon']).id });
    expect(discounted.status, discounted.text).toBe(200);
    await patch({ quantity: 3 });
    await patch({ plan_id: yearly.id, proration_behavior: 'always_invoice' });
    await c.advance('2026-03-05T00:00:00Z');
    const canceled = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await c.advance('2026-04-05T00:00:00Z');
    await expectReplayable(sub.id);
  });

  it('never go back before its creation: a backdated subscription is billed when it was created', async () => {
    const c = await clock('2026-03-15T12:00:00Z');
    const monthly = await plan('month', 1, '20.00');
    const backdated = await subscribe({ plan_id: monthly.id, start_date: '2026-01-10', test_clock_id: c.id });
    expect(backdated).toMatchObject({ current_period_start: '2026-03-10', billed_until: '2026-03-10' });
    // Its trial's end is announced 3 days before, which had passed when it was created.
    const trial = await subscribe({
      plan_id: monthly.id,
      start_date: '2026-03-01',
      status: 'trialing',
      trial_end: '2026-03-16',
      test_clock_id: c.id,
    });
    await c.advance('2026-04-20T00:00:00Z');

    const events = await expectReplayable(backdated.id);
    expect(events.map((e) => [e.type, e.occurred_at])).toEqual([
      ['subscription.created', '2026-03-15T12:00:00.000Z'],
      ['subscription.renewed', '2026-03-15T12:00:00.000Z'],
      ['subscription.renewed', '2026-04-10T00:00:00.000Z'],
    ]);
    // The period it was created in was shown then: only what was billed moved.
    expect(events[1]!.previous).toEqual({ billed_until: '2026-03-10' });
    const [first] = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: backdated.id }))
        .body as Schemas['InvoiceList']
    ).data.filter((i) => i.period_start === '2026-03-10');
    expect(first?.status).toBe('open');
    const invoiceEvents = await eventsOf(first!.id);
    expect(invoiceEvents.every((e) => e.occurred_at >= '2026-03-15T12:00:00.000Z')).toBe(true);

    const announced = (await eventsOf(trial.id)).find((e) => e.type === 'subscription.trial_will_end');
    expect(announced?.occurred_at).toBe('2026-03-15T12:00:00.000Z');
  });

  it('of a subscription backdated in real time: its first renewal names what it billed, not a period never shown', async () => {
    const today = new Date();
    const monthsAgo = (n: number) =>
      new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - n, 1)).toISOString().slice(0, 10);
    const monthly = await plan('month', 1, '20.00');
    const backdated = await subscribe({ plan_id: monthly.id, start_date: monthsAgo(3) });
    expect(backdated.billed_until).toBe(monthsAgo(0));
    await work();
    const renewed = (await eventsOf(backdated.id)).filter((e) => e.type === 'subscription.renewed');
    expect(renewed.map((e) => e.previous)).toEqual([{ billed_until: monthsAgo(0) }]);
  });
});

describe('the current period of a subscription on a test clock', () => {
  it("is the clock's, not today's", async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const p = await plan('month');
    const sub = await subscribe({ plan_id: p.id, start_date: '2025-11-15', test_clock_id: c.id });
    expect(sub).toMatchObject({ current_period_start: '2025-12-15', current_period_end: '2026-01-15' });
    const list = (await t.api.get('/api/v1/subscriptions').query({ limit: 100 }))
      .body as Schemas['SubscriptionList'];
    expect(list.data.find((s) => s.id === sub.id)).toMatchObject({ current_period_start: '2025-12-15' });
  });

  it('stays the period it was canceled in, on a clock and in real time', async () => {
    const c = await clock('2026-01-13T10:00:00Z');
    const p = await plan('month');
    const onClock = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    const canceled = await t.api.post(`/api/v1/subscriptions/${onClock.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    expect(canceled.body).toMatchObject({
      status: 'canceled',
      canceled_at: '2026-01-13T10:00:00.000Z',
      current_period_start: '2026-01-01',
      current_period_end: '2026-02-01',
    });
    await c.advance('2026-06-01T00:00:00Z');
    expect(await get(onClock.id)).toMatchObject({ current_period_start: '2026-01-01' });

    // In real time: canceled at a past moment, its last period is the one that contained it.
    const real = await subscribe({ plan_id: p.id, start_date: '2024-01-01' });
    const patched = await t.api.patch(`/api/v1/subscriptions/${real.id}`).send({ status: 'canceled' });
    expect(patched.status).toBe(200);
    await ctx.db
      .updateTable('subscriptions')
      .set({ canceled_at: new Date('2024-03-10T12:00:00Z') })
      .where('id', '=', real.id)
      .execute();
    expect(await get(real.id)).toMatchObject({
      current_period_start: '2024-03-01',
      current_period_end: '2024-04-01',
    });
  });

  it('stays the last period served after a cancellation at the period end, and the trial after one in a trial', async () => {
    const c = await clock('2026-01-13T10:00:00Z');
    const p = await plan('month');
    const atEnd = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    const scheduled = await t.api.post(`/api/v1/subscriptions/${atEnd.id}/cancel`).send({ at: 'period_end' });
    expect(scheduled.body).toMatchObject({ cancel_at: '2026-02-01T00:00:00.000Z' });
    const inTrial = await subscribe({
      plan_id: p.id,
      start_date: '2026-01-10',
      status: 'trialing',
      trial_end: '2026-01-20',
      test_clock_id: c.id,
    });
    expect(inTrial).toMatchObject({ current_period_start: '2026-01-10', current_period_end: '2026-01-20' });
    await t.api.post(`/api/v1/subscriptions/${inTrial.id}/cancel`).send({ at: 'now' }).expect(200);
    await c.advance('2026-03-10T00:00:00Z');
    // Canceled at 00:00 on 1 February, it served January last: February was never served.
    expect(await get(atEnd.id)).toMatchObject({
      status: 'canceled',
      canceled_at: '2026-02-01T00:00:00.000Z',
      current_period_start: '2026-01-01',
      current_period_end: '2026-02-01',
    });
    // Canceled in its trial: the trial, not a period of the schedule after it (nor before the start).
    expect(await get(inTrial.id)).toMatchObject({
      status: 'canceled',
      current_period_start: '2026-01-10',
      current_period_end: '2026-01-20',
    });
  });

  it('ends at its end_date', async () => {
    const p = await plan('month');
    const ended = await subscribe({ plan_id: p.id, start_date: '2024-01-01', end_date: '2024-05-20' });
    expect(ended).toMatchObject({ current_period_start: '2024-05-01', current_period_end: '2024-06-01' });
  });

  it("is canceled at the clock's time by a PATCH too", async () => {
    const c = await clock('2026-03-03T03:03:03Z');
    const sub = await subscribe({ plan_cost: '5.00', start_date: '2026-01-01', test_clock_id: c.id });
    const res = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ status: 'canceled' });
    expect(res.body).toMatchObject({ canceled_at: '2026-03-03T03:03:03.000Z' });
  });
});

describe('events of a subscription on a test clock', () => {
  it("occur at the clock's time: requests at the clock's now, the worker's steps at their due time", async () => {
    const c = await clock('2026-01-10T08:00:00Z');
    const p = await plan('month', 1, '10.00');
    const sub = await subscribe({
      plan_id: p.id,
      start_date: '2026-01-10',
      test_clock_id: c.id,
      payment_method: 'pm_card_visa',
      payment_rail: 'wire',
    });
    await c.advance('2026-02-20T00:00:00Z');
    const invoice = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, period: '2026-02-10' }))
        .body as Schemas['InvoiceList']
    ).data[0]!;
    expect(invoice.finalized_at).toBe('2026-02-10T00:00:00.000Z');
    const [payment] = (
      (await t.api.get(`/api/v1/invoices/${invoice.id}/payments`)).body as Schemas['PaymentList']
    ).data;
    // A wire settles 4 hours after it is submitted, at the renewal.
    expect((await eventsOf(payment!.id)).map((e) => [e.type, e.occurred_at])).toEqual([
      ['payment.created', '2026-02-10T00:00:00.000Z'],
      ['payment.processing', '2026-02-10T00:00:00.000Z'],
      ['payment.succeeded', '2026-02-10T04:00:00.000Z'],
    ]);
    const created = (await eventsOf(sub.id)).find((e) => e.type === 'subscription.created');
    expect(created?.occurred_at).toBe('2026-01-10T08:00:00.000Z');

    // An API request on the clock's subscription happens at the clock's now.
    const draft = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`);
    expect(draft.status, draft.text).toBe(200); // today on the clock is in the February period, invoiced already
    const canceled = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status).toBe(200);
    const cancelEvent = (await eventsOf(sub.id)).find((e) => e.type === 'subscription.canceled');
    expect(cancelEvent?.occurred_at).toBe('2026-02-20T00:00:00.000Z');
  });
});

describe('a subscription whose test clock is advancing', () => {
  it('refuses changes (409) until the worker has billed the way: they would reach periods served before them', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const seats = await t.api.post('/api/v1/plans').send({
      code: `seats-${c.id}`,
      name: 'Seats',
      interval: 'month',
      price: { model: 'per_unit', amount: '10.00' },
    });
    expect(seats.status, seats.text).toBe(201);
    const sub = await subscribe({
      plan_id: (seats.body as Schemas['Plan']).id,
      quantity: 3,
      start_date: '2026-01-01',
      test_clock_id: c.id,
    });
    const coupon = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'Half', percent_off: '50', duration: 'repeating', duration_in_months: 4 });
    expect(coupon.status, coupon.text).toBe(201);
    // January's invoice, issued and open (no payment method) before the clock moves.
    await work(c.id);
    const january = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data[0]!;
    expect(january).toMatchObject({ status: 'open', period_start: '2026-01-01' });
    const advanced = await t.api
      .post(`/api/v1/test-clocks/${c.id}/advance`)
      .send({ frozen_time: '2027-01-01T12:00:00Z' });
    expect(advanced.status, advanced.text).toBe(202);
    // A cancellation first performs the subscription's renewals due by then (each at its day, as
    // the worker would); the cancellation itself waits for the clock.
    const first = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(expectProblem(first, 409, 'conflict').detail).toContain('test clock is advancing');
    const before = await fingerprint(ctx.db);
    const refusals = [
      await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ quantity: 5 }),
      await t.api
        .post(`/api/v1/subscriptions/${sub.id}/discount`)
        .send({ coupon_id: (coupon.body as Schemas['Coupon']).id }),
      await t.api
        .post(`/api/v1/subscriptions/${sub.id}/invoice-items`)
        .send({ description: 'Setup', amount: '99.00' }),
      await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' }),
      await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({}),
      // A payment by hand too: it would be dated at the clock's new time, ahead of the months
      // (and the dunning) on the way.
      await t.api
        .post(`/api/v1/invoices/${january.id}/payments`)
        .send({ amount: january.amount_due, payment_method: 'pm_card_visa', rail: 'card' }),
    ];
    for (const res of refusals)
      expect(expectProblem(res, 409, 'conflict').detail).toContain('test clock is advancing');
    expect(await fingerprint(ctx.db)).toEqual(before);
    // Once the worker has billed the year at 3 seats, the change is made at the clock's time.
    await work(c.id);
    const patched = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ quantity: 5 });
    expect(patched.status, patched.text).toBe(200);
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 }))
        .body as Schemas['InvoiceList']
    ).data.filter((i) => i.lines.some((l) => l.type === 'subscription'));
    expect(invoices).toHaveLength(13);
    expect(new Set(invoices.map((i) => i.subtotal))).toEqual(new Set(['30.00']));
  });
});

describe('cancel at the end of the period', () => {
  it.each([
    ['month', 3, '2024-11-30', '2027-02-28'],
    ['month', 6, '2024-11-30', '2027-05-30'],
    ['year', 2, '2024-11-30', '2028-11-30'],
    ['month', 1, '2024-11-30', '2026-12-30'],
  ] as const)(
    'of a plan every %s × %i started %s, canceled on 2026-12-02: %s',
    async (interval, count, start, end) => {
      const c = await clock('2026-12-02T12:00:00Z');
      const p = await plan(interval, count);
      const sub = await subscribe({ plan_id: p.id, start_date: start, test_clock_id: c.id });
      expect(sub.current_period_end).toBe(end);
      const res = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'period_end' });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ status: 'active', cancel_at: `${end}T00:00:00.000Z` });
    },
  );

  it('of a subscription whose end_date has passed: it ends now, not after its service ended', async () => {
    const c = await clock('2026-12-02T12:00:00Z');
    const p = await plan('month', 1);
    const sub = await subscribe({
      plan_id: p.id,
      start_date: '2026-06-01',
      end_date: '2026-09-30',
      test_clock_id: c.id,
    });
    const res = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'period_end' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      status: 'canceled',
      cancel_at: null,
      canceled_at: '2026-12-02T12:00:00.000Z',
    });
  });
});

describe('withdrawing a scheduled cancellation', () => {
  it('renews as if it had never been scheduled; too late once canceled', async () => {
    const c = await clock('2026-01-13T10:00:00Z');
    const p = await plan('month', 1, '10.00');
    const cheaper = await plan('month', 1, '5.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    const path = `/api/v1/subscriptions/${sub.id}/cancel`;
    expectProblem(await t.api.delete(path), 404, 'not-found'); // nothing scheduled

    await t.api
      .post(`/api/v1/subscriptions/${sub.id}/scheduled-change`)
      .send({ plan_id: cheaper.id })
      .expect(200);
    const scheduled = await t.api.post(path).send({ at: 'period_end', reason: 'too expensive' });
    expect(scheduled.body).toMatchObject({ cancel_at: '2026-02-01T00:00:00.000Z', scheduled_change: null });
    expectProblem(await t.api.delete(path).set('If-Match', `"${sub.version}"`), 412, 'precondition-failed');

    const withdrawn = await t.api.delete(path).set('If-Match', scheduled.headers.etag as string);
    expect(withdrawn.status, withdrawn.text).toBe(200);
    expect(withdrawn.body).toMatchObject({
      status: 'active',
      cancel_at: null,
      cancel_reason: null,
      scheduled_change: null, // the change the cancellation dropped stays dropped
      version: (scheduled.body as Schemas['Subscription']).version + 1,
    });
    expect(withdrawn.headers.etag).toBe(`"${(withdrawn.body as Schemas['Subscription']).version}"`);
    const event = (await eventsOf(sub.id)).find((e) => e.type === 'subscription.cancellation_withdrawn');
    expect(event).toMatchObject({
      occurred_at: '2026-01-13T10:00:00.000Z',
      previous: { cancel_at: '2026-02-01T00:00:00.000Z', cancel_reason: 'too expensive' },
    });
    expectProblem(await t.api.delete(path), 404, 'not-found'); // withdrawn already

    await c.advance('2026-03-10T00:00:00Z');
    expect(await get(sub.id)).toMatchObject({ status: 'active', canceled_at: null, plan_cost: '10.00' });
    expect(await invoicesOf(sub.id)).toEqual(['2026-01-01', '2026-02-01', '2026-03-01']);
    const invoices = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id });
    expect((invoices.body as Schemas['InvoiceList']).data.map((i) => i.total)).toEqual([
      '10.00',
      '10.00',
      '10.00',
    ]);

    // Scheduled again, and its moment passed before the worker performed it: canceled is final.
    const real = await subscribe({ plan_id: p.id, start_date: '2026-01-01' });
    await t.api.post(`/api/v1/subscriptions/${real.id}/cancel`).send({ at: 'period_end' }).expect(200);
    await ctx.db
      .updateTable('subscriptions')
      .set({ cancel_at: new Date('2026-03-01T00:00:00Z') })
      .where('id', '=', real.id)
      .execute();
    expectProblem(await t.api.delete(`/api/v1/subscriptions/${real.id}/cancel`), 409, 'conflict');
    expect(await get(real.id)).toMatchObject({ status: 'canceled', canceled_at: '2026-03-01T00:00:00.000Z' });
    expectProblem(await t.api.delete(`/api/v1/subscriptions/${c.id}/cancel`), 404, 'not-found');
  });
});

describe('moving the start date', () => {
  it('past the next renewal: billing resumes on the new start date, on a clock', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const p = await plan('month', 1, '10.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    await c.advance('2026-03-10T00:00:00Z');
    expect(await invoicesOf(sub.id)).toEqual(['2026-01-01', '2026-02-01', '2026-03-01']);

    const moved = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ start_date: '2026-04-15' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ start_date: '2026-04-15', billed_until: '2026-04-15' });
    await c.advance('2026-06-30T00:00:00Z'); // asserts the clock is ready again
    expect(await invoicesOf(sub.id)).toEqual([
      '2026-01-01',
      '2026-02-01',
      '2026-03-01',
      '2026-04-15',
      '2026-05-15',
      '2026-06-15',
    ]);
    // April 1 to 15 comes before the new start: nothing to charge for it.
    expect((await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`)).body).toMatchObject({
      data: [],
    });
  });

  it('earlier: no day is billed twice', async () => {
    const c = await clock('2026-03-10T00:00:00Z');
    const p = await plan('month', 1, '10.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2026-03-01', test_clock_id: c.id });
    await c.advance('2026-03-11T00:00:00Z');
    expect(await invoicesOf(sub.id)).toEqual(['2026-03-01']);
    const moved = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ start_date: '2026-02-15' });
    // March 1 to April 1 is billed: the new schedule resumes with its period holding April 1,
    // which starts after today, and credits back its days billed already (retest17 #1).
    expect(moved.body).toMatchObject({ billed_until: '2026-03-15' });
    await c.advance('2026-05-20T00:00:00Z');
    expect(await invoicesOf(sub.id)).toEqual(['2026-03-01', '2026-03-15', '2026-04-15', '2026-05-15']);
    // March 15 to April 1, billed by March's invoice, is credited on the first invoice of the new
    // schedule: 17 of March's 31 days, at 10.00.
    const march = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data.find((i) => i.period_start === '2026-03-15')!;
    expect(march.lines.map((l) => [l.type, l.period_start, l.period_end, l.amount])).toEqual([
      ['subscription', '2026-03-15', '2026-04-15', '10.00'],
      ['proration', '2026-03-15', '2026-04-01', '-5.48'],
    ]);
  });

  it('again and again before each renewal: every day served is billed', async () => {
    const c = await clock('2026-01-01T00:00:00Z');
    const p = await plan('month', 1, '31.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    for (const day of ['2026-01-31', '2026-02-27', '2026-03-26']) {
      await c.advance(`${day}T00:00:00Z`);
      const moved = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ start_date: day });
      expect(moved.status, moved.text).toBe(200);
    }
    await c.advance('2026-04-30T00:00:00Z');
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data;
    const lines = invoices.flatMap((i) => i.lines.filter((l) => l.type !== 'discount'));
    // Every day from January 1 up to the last period billed is on exactly one line.
    const covered = lines.map((l) => [l.period_start, l.period_end] as const).sort();
    for (let k = 1; k < covered.length; k++) expect(covered[k]![0]).toBe(covered[k - 1]![1]);
    expect(covered[0]![0]).toBe('2026-01-01');
  });

  it('earlier, before anything was invoiced: billed from its current period, as if created so', async () => {
    const c = await clock('2026-03-10T00:00:00Z');
    const p = await plan('month', 1, '10.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2026-03-10', test_clock_id: c.id });
    // Moved back before the worker's first renewal of it: nothing is billed yet.
    const moved = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ start_date: '2026-03-01' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ billed_until: '2026-03-01', current_period_start: '2026-03-01' });
    await c.advance('2026-04-02T00:00:00Z');
    expect(await invoicesOf(sub.id)).toEqual(['2026-03-01', '2026-04-01']);
  });

  it('past the next renewal in real time: the renewal resumes instead of failing', async () => {
    const p = await plan('month', 1, '10.00');
    const sub = await subscribe({ plan_id: p.id, start_date: '2025-01-01' });
    const future = new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10);
    const moved = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ start_date: future });
    expect(moved.body).toMatchObject({ billed_until: future });
    await work(); // nothing due, nothing failing
    expect(await invoicesOf(sub.id)).toEqual([]);
  });
});

describe('invoices after the end', () => {
  it('are refused with 422 after end_date, after a cancellation, and on or after a scheduled cancellation', async () => {
    const p = await plan('month', 1, '10.00');
    const ended = await subscribe({ plan_id: p.id, start_date: '2026-01-01', end_date: '2026-03-10' });
    const invoice = (date: string, id = ended.id) =>
      t.api.post(`/api/v1/subscriptions/${id}/invoices`).send({ date });
    expect((await invoice('2026-03-10')).status).toBe(201); // the last day served is billed
    const after = await invoice('2026-03-11');
    expectProblem(after, 422, 'unprocessable');
    expect((after.body as Schemas['Problem']).detail).toMatch(/served until 2026-03-10/);
    expect((after.body as Schemas['Problem']).errors).toMatchObject([{ field: '/date' }]);

    const c = await clock('2026-01-13T10:00:00Z');
    const canceled = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    await t.api.post(`/api/v1/subscriptions/${canceled.id}/cancel`).send({ at: 'now' }).expect(200);
    // The cancellation performed the renewal of the period it falls in (due, not run yet): 200,
    // the period's invoice as it is.
    expect((await invoice('2026-01-13', canceled.id)).status).toBe(200);
    expectProblem(await invoice('2026-02-01', canceled.id), 422, 'unprocessable');
    // Without a date: today on its clock is 2026-01-13, still served.
    expect((await t.api.post(`/api/v1/subscriptions/${canceled.id}/invoices`)).status).toBe(200);

    const scheduled = await subscribe({ plan_id: p.id, start_date: '2026-01-01', test_clock_id: c.id });
    await t.api.post(`/api/v1/subscriptions/${scheduled.id}/cancel`).send({ at: 'period_end' }).expect(200);
    expect((await invoice('2026-01-31', scheduled.id)).status).toBe(201);
    expectProblem(await invoice('2026-02-01', scheduled.id), 422, 'unprocessable');
    expect(await invoicesOf(scheduled.id)).toEqual(['2026-01-01']);
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
