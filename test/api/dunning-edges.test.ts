// Dunning at its edges: a retry whose day comes while a payment made through the API is in flight
// or while the subscription has no payment method, failed API payments during dunning, invoices
// of an unpaid subscription, and the `previous` of payment and invoice events.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { simulatedGateway } from '../../src/billing/gateway.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';

const ctx = useTestApp();

const dueCtx = () => ({
  db: ctx.appDb,
  ownerDb: ctx.db,
  gateway: simulatedGateway,
  settlementDelayScale: 0,
});

/** A tenant with its dunning settings and a monthly plan of 10.00. */
async function tenantWith(settings?: { dunning_retry_days: number[]; dunning_final_action: string }) {
  const tenant = await ctx.newTenant();
  if (settings) {
    const put = await tenant.api.put('/api/v1/billing-settings').send(settings);
    expect(put.status, put.text).toBe(200);
  }
  const plan = await tenant.api
    .post('/api/v1/plans')
    .send({ code: 'pro', name: 'Pro', interval: 'month', price: { model: 'flat', amount: '10.00' } });
  expect(plan.status, plan.text).toBe(201);
  return { tenant, planId: (plan.body as Schemas['Plan']).id };
}

async function testClock(tenant: TestTenant, at = '2026-01-01T00:00:00Z') {
  const res = await tenant.api.post('/api/v1/test-clocks').send({ name: 'dunning edges', frozen_time: at });
  expect(res.status, res.text).toBe(201);
  const clock = res.body as Schemas['TestClock'];
  return {
    id: clock.id,
    async advance(to: string) {
      const advanced = await tenant.api
        .post(`/api/v1/test-clocks/${clock.id}/advance`)
        .send({ frozen_time: to });
      expect(advanced.status, advanced.text).toBe(202);
      await performDueWork(dueCtx(), { tenantId: tenant.id, clockId: clock.id });
    },
  };
}

async function subscribeIn(tenant: TestTenant, planId: string, extra: Record<string, unknown>) {
  const user = await createUser(tenant);
  const res = await tenant.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: planId, ...extra });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

const invoicesOf = async (tenant: TestTenant, subscriptionId: string) =>
  (
    (await tenant.api.get('/api/v1/invoices').query({ subscription_id: subscriptionId, limit: 100 }))
      .body as Schemas['InvoiceList']
  ).data.reverse();
const paymentsOf = async (tenant: TestTenant, invoiceId: string) =>
  (
    (await tenant.api.get(`/api/v1/invoices/${invoiceId}/payments`)).body as Schemas['PaymentList']
  ).data.reverse();
const subscriptionOf = async (tenant: TestTenant, subscriptionId: string) =>
  (await tenant.api.get(`/api/v1/subscriptions/${subscriptionId}`)).body as Schemas['Subscription'];
const eventsOf = async (tenant: TestTenant, resourceId: string) =>
  (
    (await tenant.api.get('/api/v1/events').query({ resource_id: resourceId, limit: 100 }))
      .body as Schemas['EventList']
  ).data;

/** A pay-by-hand request on the invoice (its whole amount due). */
async function payByHand(tenant: TestTenant, invoice: Schemas['Invoice'], method: string, rail: string) {
  const res = await tenant.api
    .post(`/api/v1/invoices/${invoice.id}/payments`)
    .send({ amount: invoice.amount_due, payment_method: method, rail });
  expect(res.status, res.text).toBe(202);
  return res.body as Schemas['Payment'];
}

/**
 * A subscription (default settings: retries 1, 3 and 5 days after, then cancel) whose card is
 * declined: its January collection failed on 1 January, its first retry due the next day.
 */
async function decliningSubscription(tenant: TestTenant, planId: string) {
  const clock = await testClock(tenant);
  const sub = await subscribeIn(tenant, planId, {
    test_clock_id: clock.id,
    payment_method: 'pm_card_declined',
    payment_rail: 'card',
  });
  await clock.advance('2026-01-01T12:00:00Z');
  const [invoice] = await invoicesOf(tenant, sub.id);
  expect(invoice).toMatchObject({ status: 'open', next_payment_attempt_at: '2026-01-02T00:00:00.000Z' });
  expect((await subscriptionOf(tenant, sub.id)).status).toBe('past_due');
  return { clock, sub, invoice: invoice! };
}

let shared: { tenant: TestTenant; planId: string };

beforeAll(async () => {
  shared = await tenantWith();
});

describe('a dunning retry that cannot run on its day (F1)', () => {
  it('waits for a payment made through the API that is settling (ACH), and follows its failure at once', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    // Paid by hand on ACH (2 business days: Thursday 1 January → Monday 5 January), and it fails.
    const api = await payByHand(tenant, invoice, 'pm_insufficient_funds', 'ach_standard');
    await clock.advance('2026-01-03T00:00:00Z');
    expect((await tenant.api.get(`/api/v1/payments/${api.id}`)).body).toMatchObject({ status: 'processing' });
    // The 2 January retry still stands: it waits for the payment in flight.
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'open',
      next_payment_attempt_at: '2026-01-02T00:00:00.000Z',
    });

    await clock.advance('2026-01-20T00:00:00Z');
    const payments = await paymentsOf(tenant, invoice.id);
    expect(payments.map((p) => [p.initiated_by, p.status])).toEqual([
      ['renewal', 'failed'],
      ['api', 'failed'],
      ['dunning', 'failed'],
      ['dunning', 'failed'],
    ]);
    // The retry follows the API payment's failure at once, and stands for the 4 January one
    // too (its day passed as well): the last retry keeps its day.
    expect(payments[1]!.settled_at).toBe('2026-01-05T12:00:00.000Z');
    expect(payments[2]!.submitted_at).toBe('2026-01-05T12:00:00.000Z');
    expect(payments[3]!.submitted_at).toBe('2026-01-06T00:00:00.000Z');
    // And the schedule reached its end: uncollectible, and the final action (cancel).
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'uncollectible',
      uncollectible_at: '2026-01-06T00:00:00.000Z',
      next_payment_attempt_at: null,
    });
    expect(await subscriptionOf(tenant, sub.id)).toMatchObject({
      status: 'canceled',
      canceled_at: '2026-01-06T00:00:00.000Z',
    });
  });

  it('waits for a wire payment in flight over its day, and continues the schedule after it fails', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    await clock.advance('2026-01-01T22:00:00Z');
    // A wire settles 4 hours later, at 02:00 on 2 January: over the midnight retry.
    await payByHand(tenant, invoice, 'pm_insufficient_funds', 'wire');
    await clock.advance('2026-01-20T00:00:00Z');
    const payments = await paymentsOf(tenant, invoice.id);
    expect(payments.map((p) => [p.initiated_by, p.submitted_at])).toEqual([
      ['renewal', '2026-01-01T00:00:00.000Z'],
      ['api', '2026-01-01T22:00:00.000Z'],
      ['dunning', '2026-01-02T02:00:00.000Z'],
      ['dunning', '2026-01-04T00:00:00.000Z'],
      ['dunning', '2026-01-06T00:00:00.000Z'],
    ]);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({ status: 'uncollectible' });
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('canceled');
  });

  it('never makes two retries at one time: one that waited onto the next retry’s day stands for both', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    // The 2 January retry fails; then an ACH payment by hand on Friday 2 January settles on
    // Tuesday 6 January at midnight: the 4 January retry waits for it, onto the 6 January one's day.
    await clock.advance('2026-01-02T00:00:00Z');
    const [, retry] = await paymentsOf(tenant, invoice.id);
    expect(retry).toMatchObject({ initiated_by: 'dunning', status: 'failed' });
    const api = await payByHand(tenant, invoice, 'pm_insufficient_funds', 'ach_standard');
    await clock.advance('2026-01-20T00:00:00Z');
    expect((await tenant.api.get(`/api/v1/payments/${api.id}`)).body).toMatchObject({
      status: 'failed',
      settled_at: '2026-01-06T00:00:00.000Z',
    });
    expect((await paymentsOf(tenant, invoice.id)).map((p) => [p.initiated_by, p.submitted_at])).toEqual([
      ['renewal', '2026-01-01T00:00:00.000Z'],
      ['dunning', '2026-01-02T00:00:00.000Z'],
      ['api', '2026-01-02T00:00:00.000Z'],
      ['dunning', '2026-01-06T00:00:00.000Z'],
    ]);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'uncollectible',
      uncollectible_at: '2026-01-06T00:00:00.000Z',
    });
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('canceled');
  });

  it('retries with a card added after a retry day passed without a payment method', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    const removed = await tenant.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: null, payment_rail: null });
    expect(removed.status, removed.text).toBe(200);
    // 2 January: no method, no payment; that retry is used, the next one is on 4 January.
    await clock.advance('2026-01-03T00:00:00Z');
    expect(await paymentsOf(tenant, invoice.id)).toHaveLength(1);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'open',
      next_payment_attempt_at: '2026-01-04T00:00:00.000Z',
    });
    const added = await tenant.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: 'pm_card_visa', payment_rail: 'card' });
    expect(added.status, added.text).toBe(200);
    await clock.advance('2026-01-10T00:00:00Z');
    expect((await paymentsOf(tenant, invoice.id)).map((p) => [p.payment_method, p.status])).toEqual([
      ['pm_card_declined', 'failed'],
      ['pm_card_visa', 'succeeded'],
    ]);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'paid',
      paid_at: '2026-01-04T00:00:00.000Z',
    });
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('active');
  });

  it('reaches its end when no payment method comes back: uncollectible on the last retry day, then the final action', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    const removed = await tenant.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: null, payment_rail: null });
    expect(removed.status, removed.text).toBe(200);
    await clock.advance('2026-01-20T00:00:00Z');
    expect(await paymentsOf(tenant, invoice.id)).toHaveLength(1);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'uncollectible',
      uncollectible_at: '2026-01-06T00:00:00.000Z',
      next_payment_attempt_at: null,
    });
    expect(await subscriptionOf(tenant, sub.id)).toMatchObject({
      status: 'canceled',
      canceled_at: '2026-01-06T00:00:00.000Z',
    });
  });
});

describe('payments made through the API during dunning (F2)', () => {
  it('use up none of the retries: two failed ones leave the schedule on days 1, 3 and 5', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    for (let i = 0; i < 2; i++) {
      await payByHand(tenant, invoice, 'pm_card_declined', 'card');
      await performDueWork(dueCtx(), { tenantId: tenant.id, clockId: clock.id });
    }
    await clock.advance('2026-01-03T00:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('past_due');
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'open',
      next_payment_attempt_at: '2026-01-04T00:00:00.000Z',
    });
    await clock.advance('2026-01-10T00:00:00Z');
    const payments = await paymentsOf(tenant, invoice.id);
    expect(payments.map((p) => [p.initiated_by, p.attempt])).toEqual([
      ['renewal', 1],
      ['api', 2],
      ['api', 3],
      ['dunning', 4],
      ['dunning', 5],
      ['dunning', 6],
    ]);
    expect(payments.filter((p) => p.initiated_by === 'dunning').map((p) => p.submitted_at)).toEqual([
      '2026-01-02T00:00:00.000Z',
      '2026-01-04T00:00:00.000Z',
      '2026-01-06T00:00:00.000Z',
    ]);
    expect(await subscriptionOf(tenant, sub.id)).toMatchObject({
      status: 'canceled',
      canceled_at: '2026-01-06T00:00:00.000Z',
    });
  });
});

describe('a subscription marked unpaid (F5, F7)', () => {
  it('shows no retry on its other invoices once it is unpaid', async () => {
    const { tenant, planId } = await tenantWith({
      dunning_retry_days: [1, 40],
      dunning_final_action: 'mark_unpaid',
    });
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-05T00:00:00Z');
    const [, before] = await invoicesOf(tenant, sub.id);
    expect(before).toMatchObject({ status: 'open', next_payment_attempt_at: '2026-03-13T00:00:00.000Z' });
    // January's last retry fails on 10 February: unpaid, and February is retried no more.
    await clock.advance('2026-02-11T00:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('unpaid');
    const [january, february] = await invoicesOf(tenant, sub.id);
    expect(january).toMatchObject({ status: 'uncollectible', next_payment_attempt_at: null });
    expect(february).toMatchObject({ status: 'open', next_payment_attempt_at: null });
  });

  it('retries nothing once a PATCH makes it unpaid', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    const unpaid = await tenant.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ status: 'unpaid' });
    expect(unpaid.status, unpaid.text).toBe(200);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'open',
      next_payment_attempt_at: null,
    });
    await clock.advance('2026-01-10T00:00:00Z');
    expect(await paymentsOf(tenant, invoice.id)).toHaveLength(1);
  });

  it('past due and made active by hand: its dunning ends, the invoice stays owed (dunning1 F2)', async () => {
    const { tenant, planId } = shared;
    const { clock, sub, invoice } = await decliningSubscription(tenant, planId);
    const active = await tenant.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'open',
      amount_due: invoice.amount_due,
      next_payment_attempt_at: null,
    });
    // No retry on 2, 4 or 6 January: still active, not canceled by a last retry.
    await clock.advance('2026-01-10T00:00:00Z');
    expect(await paymentsOf(tenant, invoice.id)).toHaveLength(1);
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('active');
    const types = (await eventsOf(tenant, invoice.id)).map((e) => e.type);
    expect(types.filter((type) => type === 'invoice.updated')).toHaveLength(1);
  });

  it('created unpaid, collects the invoices it issued once it is active again', async () => {
    const { tenant, planId } = shared;
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      status: 'unpaid',
      test_clock_id: clock.id,
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-02T00:00:00Z');
    expect((await invoicesOf(tenant, sub.id)).map((i) => [i.status, i.next_payment_attempt_at])).toEqual([
      ['open', null],
      ['open', null],
    ]);
    const active = await tenant.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    await clock.advance('2026-02-02T00:01:00Z');
    expect((await invoicesOf(tenant, sub.id)).map((i) => i.status)).toEqual(['paid', 'paid']);
  });

  it('collects the invoices it issued while unpaid once it is active again', async () => {
    const { tenant, planId } = await tenantWith({
      dunning_retry_days: [1],
      dunning_final_action: 'mark_unpaid',
    });
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-15T00:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('unpaid');
    const [january, february] = await invoicesOf(tenant, sub.id);
    expect(february).toMatchObject({ status: 'open', next_payment_attempt_at: null });
    expect(await paymentsOf(tenant, february!.id)).toEqual([]);

    // A new card, and January paid by hand: active again, and February collected with the card.
    const card = await tenant.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: 'pm_card_visa' });
    expect(card.status, card.text).toBe(200);
    await payByHand(tenant, january!, 'pm_card_visa', 'card');
    await performDueWork(dueCtx(), { tenantId: tenant.id, clockId: clock.id });
    expect(
      (await paymentsOf(tenant, february!.id)).map((p) => [p.initiated_by, p.payment_method, p.status]),
    ).toEqual([['renewal', 'pm_card_visa', 'succeeded']]);
    expect((await invoicesOf(tenant, sub.id)).map((i) => i.status)).toEqual(['paid', 'paid']);
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('active');
  });
});

describe('a subscription made active by hand while an invoice is left uncollectible', () => {
  it('recovers from a later failure once that one is settled: the one left behind is no retry', async () => {
    const { tenant, planId } = await tenantWith({
      dunning_retry_days: [1],
      dunning_final_action: 'mark_unpaid',
    });
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_card_declined',
      payment_rail: 'card',
    });
    // January and its retry fail: unpaid, January uncollectible. Active again by hand, on a card
    // that works from March: February fails (past_due) and is paid by its retry, or voided.
    await clock.advance('2026-01-03T00:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('unpaid');
    const active = await tenant.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    await clock.advance('2026-02-01T12:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('past_due');
    const [january, february] = await invoicesOf(tenant, sub.id);
    expect(january).toMatchObject({ status: 'uncollectible' });
    expect(february).toMatchObject({ status: 'open', next_payment_attempt_at: '2026-02-02T00:00:00.000Z' });
    // A card that works: February's retry pays it, January stays uncollectible (owed), and the
    // subscription recovers.
    const card = await tenant.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: 'pm_card_visa' });
    expect(card.status, card.text).toBe(200);
    await clock.advance('2026-02-02T12:00:00Z');
    expect((await invoicesOf(tenant, sub.id)).map((i) => i.status)).toEqual(['uncollectible', 'paid']);
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('active');

    // The same, February voided: recovered too, once.
    const other = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      start_date: '2026-02-02',
      payment_method: 'pm_card_declined',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-04T00:00:00Z');
    expect((await subscriptionOf(tenant, other.id)).status).toBe('unpaid');
    expect(
      (await tenant.api.patch(`/api/v1/subscriptions/${other.id}`).send({ status: 'active' })).status,
    ).toBe(200);
    await clock.advance('2026-03-02T12:00:00Z');
    expect((await subscriptionOf(tenant, other.id)).status).toBe('past_due');
    const [first, second] = await invoicesOf(tenant, other.id);
    expect(first).toMatchObject({ status: 'uncollectible' });
    expect((await tenant.api.post(`/api/v1/invoices/${second!.id}/void`)).status).toBe(200);
    expect((await subscriptionOf(tenant, other.id)).status).toBe('active');
    const recovered = (await eventsOf(tenant, other.id)).filter((e) => e.type === 'subscription.recovered');
    expect(recovered).toHaveLength(1);
  });
});

describe('a subscription active again without a payment method', () => {
  it('shows no payment attempt on the invoices it issued while unpaid: none will be made', async () => {
    const { tenant, planId } = await tenantWith({
      dunning_retry_days: [1],
      dunning_final_action: 'mark_unpaid',
    });
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-15T00:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('unpaid');
    const none = await tenant.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: null, payment_rail: null, status: 'active' });
    expect(none.status, none.text).toBe(200);
    const [, february] = await invoicesOf(tenant, sub.id);
    expect(february).toMatchObject({ status: 'open', next_payment_attempt_at: null });
    await clock.advance('2026-02-20T00:00:00Z');
    expect(await paymentsOf(tenant, february!.id)).toEqual([]);
  });
});

describe('the events of a failed collection', () => {
  it('show the invoice with its next retry, so that its last event is the invoice as it is', async () => {
    const { tenant, planId } = shared;
    const { clock, invoice } = await decliningSubscription(tenant, planId);
    const lastEvent = async () => (await eventsOf(tenant, invoice.id)).at(-1)!;
    const current = async () =>
      (await tenant.api.get(`/api/v1/invoices/${invoice.id}`)).body as Schemas['Invoice'];
    const first = await lastEvent();
    expect(first).toMatchObject({
      type: 'invoice.payment_failed',
      data: { next_payment_attempt_at: '2026-01-02T00:00:00.000Z', version: (await current()).version },
      previous: { next_payment_attempt_at: null },
    });
    await clock.advance('2026-01-02T12:00:00Z');
    // The retry under way (none scheduled meanwhile), then its failure and the next retry.
    const [started, retried] = (await eventsOf(tenant, invoice.id)).slice(-2);
    expect(started).toMatchObject({
      type: 'invoice.updated',
      data: { next_payment_attempt_at: null },
      previous: { next_payment_attempt_at: '2026-01-02T00:00:00.000Z' },
    });
    expect(retried).toMatchObject({
      type: 'invoice.payment_failed',
      data: { next_payment_attempt_at: '2026-01-04T00:00:00.000Z', version: (await current()).version },
      previous: { next_payment_attempt_at: null },
    });
    // The last retry fails: the failure, then the invoice uncollectible.
    await clock.advance('2026-01-07T00:00:00Z');
    const events = await eventsOf(tenant, invoice.id);
    expect(events.slice(-2).map((e) => e.type)).toEqual(['invoice.payment_failed', 'invoice.uncollectible']);
    expect((await lastEvent()).data).toEqual(await current());
    // Each event is of a version of its own, one after the other: a consumer that orders by
    // version, or keeps only what is newer than its copy, misses none.
    const versions = events.map((e) => (e.data as unknown as { version: number }).version);
    expect(versions).toEqual(versions.map((_, i) => versions[0]! + i));
  });
});

describe('the events of retries stopped and resumed', () => {
  it('show the invoice as it is: none scheduled once canceled, then scheduled when active again', async () => {
    const { tenant, planId } = shared;
    const { invoice, sub } = await decliningSubscription(tenant, planId);
    const last = async (id: string) => (await eventsOf(tenant, id)).at(-1)!;
    const current = async (id: string) =>
      (await tenant.api.get(`/api/v1/invoices/${id}`)).body as Schemas['Invoice'];
    const canceled = await tenant.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    expect(await last(invoice.id)).toMatchObject({
      type: 'invoice.updated',
      data: await current(invoice.id),
      previous: { next_payment_attempt_at: '2026-01-02T00:00:00.000Z' },
    });

    const unpaidTenant = await tenantWith({ dunning_retry_days: [1], dunning_final_action: 'mark_unpaid' });
    const clock = await testClock(unpaidTenant.tenant);
    const unpaid = await subscribeIn(unpaidTenant.tenant, unpaidTenant.planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-15T00:00:00Z');
    const active = await unpaidTenant.tenant.api
      .patch(`/api/v1/subscriptions/${unpaid.id}`)
      .send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    const [, february] = await invoicesOf(unpaidTenant.tenant, unpaid.id);
    const resumed = (await eventsOf(unpaidTenant.tenant, february!.id)).at(-1)!;
    expect(resumed).toMatchObject({
      type: 'invoice.updated',
      data: february,
      previous: { next_payment_attempt_at: null },
    });
    expect(february!.next_payment_attempt_at).not.toBeNull();
  });
});

describe('two invoices whose last retries fail at the same moment', () => {
  it('both end uncollectible, whichever failure the worker takes first', async () => {
    const { tenant, planId } = await tenantWith({
      dunning_retry_days: [1],
      dunning_final_action: 'mark_unpaid',
    });
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    // January fails for good (unpaid); February and March are invoiced while unpaid.
    await clock.advance('2026-03-01T12:00:00Z');
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('unpaid');
    // Active again: both are collected at once and fail, and both last retries fail on 2 March.
    const active = await tenant.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    await clock.advance('2026-03-05T00:00:00Z');
    const [, february, march] = await invoicesOf(tenant, sub.id);
    for (const invoice of [february!, march!]) {
      expect(
        (await paymentsOf(tenant, invoice.id)).map((p) => [p.initiated_by, p.status]),
        invoice.period_start,
      ).toEqual([
        ['renewal', 'failed'],
        ['dunning', 'failed'],
      ]);
      expect(invoice, invoice.period_start).toMatchObject({
        status: 'uncollectible',
        uncollectible_at: '2026-03-02T12:00:00.000Z',
        next_payment_attempt_at: null,
      });
    }
    expect((await subscriptionOf(tenant, sub.id)).status).toBe('unpaid');
  });
});

describe('a paused subscription whose last retry fails', () => {
  // Canceled, the credit of the month paused (all of it) pays January's invoice: the customer
  // owes nothing for it, and has nothing to spend either. Still paused, the month stays owed.
  it.each([
    ['cancel', { status: 'canceled', paused_at: null }, { status: 'paid', amount_due: '0.00' }],
    ['mark_unpaid', { status: 'paused', resumes_at: null }, { status: 'uncollectible' }],
  ])(
    'takes the final action (%s), nothing stuck: canceled, or still paused',
    async (action, expected, owed) => {
      const { tenant, planId } = await tenantWith({
        dunning_retry_days: [1, 3],
        dunning_final_action: action,
      });
      const clock = await testClock(tenant);
      const sub = await subscribeIn(tenant, planId, {
        test_clock_id: clock.id,
        payment_method: 'pm_insufficient_funds',
        payment_rail: 'card',
      });
      // Paused before its first collection fails: the retries go on while it is paused.
      const paused = await tenant.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({});
      expect(paused.status, paused.text).toBe(200);
      await clock.advance('2026-01-10T00:00:00Z');
      const [january] = await invoicesOf(tenant, sub.id);
      expect(january).toMatchObject({ ...owed, next_payment_attempt_at: null });
      expect((await paymentsOf(tenant, january!.id)).map((p) => p.status)).toEqual([
        'failed',
        'failed',
        'failed',
      ]);
      expect(await subscriptionOf(tenant, sub.id)).toMatchObject(expected);
      const customer = (await tenant.api.get(`/api/v1/users/${sub.user_id}`)).body as { balance: string };
      expect(customer.balance).toBe('0.00');
      expect((await tenant.api.get(`/api/v1/test-clocks/${clock.id}`)).body).toMatchObject({
        status: 'ready',
      });
    },
  );
});

describe('the previous values of payment and invoice events (F6)', () => {
  it('name every field the change altered', async () => {
    const { tenant, planId } = shared;
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, planId, {
      test_clock_id: clock.id,
      payment_method: 'pm_card_visa',
      payment_rail: 'ach_standard',
    });
    await clock.advance('2026-01-10T00:00:00Z');
    const [invoice] = await invoicesOf(tenant, sub.id);
    expect(invoice).toMatchObject({ status: 'paid' });
    const [payment] = await paymentsOf(tenant, invoice!.id);
    const processing = (await eventsOf(tenant, payment!.id)).find((e) => e.type === 'payment.processing')!;
    expect(processing.previous).toEqual({
      status: 'pending',
      submitted_at: null,
      settles_at: null,
      gateway_reference: null,
    });
    const paid = (await eventsOf(tenant, invoice!.id)).find((e) => e.type === 'invoice.paid')!;
    expect(paid.previous).toEqual({ status: 'open', paid_at: null, amount_due: '10.00' });

    // A voided invoice owes nothing any more, and is retried no more.
    const declining = await decliningSubscription(tenant, planId);
    const voided = await tenant.api.post(`/api/v1/invoices/${declining.invoice.id}/void`);
    expect(voided.status, voided.text).toBe(200);
    const event = (await eventsOf(tenant, declining.invoice.id)).find((e) => e.type === 'invoice.voided')!;
    expect(event.previous).toEqual({
      status: 'open',
      voided_at: null,
      amount_due: '10.00',
      next_payment_attempt_at: '2026-01-02T00:00:00.000Z',
    });
  });
});
