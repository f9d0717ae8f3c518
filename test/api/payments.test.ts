// Background billing: payments on rails through the API, test clocks, renewals and dunning
// performed by the real pg-boss worker, and the tenant's dunning settings.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { simulatedGateway } from '../../src/billing/gateway.js';
import { createLogger } from '../../src/logger.js';
import { enqueueDue } from '../../src/queries/jobs.js';
import { performDueWork, resumeStalledClocks } from '../../src/services/due-work.js';
import { testClockReady } from '../../src/services/payments.js';
import { type RunningWorker, startWorker } from '../../src/worker.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let plan: Schemas['Plan'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  t = await ctx.newTenant();
  const res = await t.api.post('/api/v1/plans').send({
    code: 'pro',
    name: 'Pro',
    interval: 'month',
    price: { model: 'flat', amount: '10.00' },
  });
  expect(res.status, res.text).toBe(201);
  plan = res.body as Schemas['Plan'];
});

async function subscribe(extra: Record<string, unknown>, start = '2026-01-01') {
  const user = await createUser(t);
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', start_date: start, plan_id: plan.id, ...extra });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

const dueCtx = () => ({
  db: ctx.appDb,
  ownerDb: ctx.db,
  gateway: simulatedGateway,
  settlementDelayScale: 0,
});

describe('payments through the API', () => {
  let invoice: Schemas['Invoice'];

  beforeAll(async () => {
    const today = new Date().toISOString().slice(0, 10);
    const sub = await subscribe({}, today);
    const created = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({});
    expect(created.status, created.text).toBe(201);
    const open = await t.api.post(`/api/v1/invoices/${(created.body as Schemas['Invoice']).id}/finalize`);
    expect(open.status, open.text).toBe(200);
    invoice = open.body as Schemas['Invoice'];
  });

  it('refuses an amount other than the balance, and a draft or unknown invoice', async () => {
    const wrong = await t.api
      .post(`/api/v1/invoices/${invoice.id}/payments`)
      .send({ amount: '9.99', payment_method: 'pm_card_visa', rail: 'card' });
    expectProblem(wrong, 422, 'unprocessable');
    const unknown = await t.api
      .post(`/api/v1/invoices/${randomUUID()}/payments`)
      .send({ amount: '10.00', payment_method: 'pm_card_visa', rail: 'card' });
    expectProblem(unknown, 404, 'not-found');
    const bad = await t.api
      .post(`/api/v1/invoices/${invoice.id}/payments`)
      .send({ amount: '10.00', payment_method: 'visa', rail: 'card' });
    expectProblem(bad, 400, 'validation-error');
    const payments = await t.api.get(`/api/v1/invoices/${invoice.id}/payments`);
    expect((payments.body as Schemas['PaymentList']).data).toEqual([]);
  });

  it('pays and refunds an invoice past 999,999,999,999.99: payments are as wide as invoice totals', async () => {
    const tax = await t.api
      .post('/api/v1/tax-rates')
      .send({ code: 'WIDE', name: 'Wide', percentage: '33', region: 'ZW', effective_from: '2020-01-01' });
    expect(tax.status, tax.text).toBe(201);
    const user = await createUser(t, { region: 'ZW' });
    const sub = await subscribe({ user_id: user.id }, new Date().toISOString().slice(0, 10));
    const lines = Array.from({ length: 100 }, (_, i) => ({
      description: `Line ${i}`,
      amount: '9999999999.99',
    }));
    const made = await t.api.post('/api/v1/invoices').send({ subscription_id: sub.id, lines });
    expect(made.status, made.text).toBe(201);
    const open = await t.api.post(`/api/v1/invoices/${(made.body as Schemas['Invoice']).id}/finalize`);
    expect(open.body).toMatchObject({ status: 'open', amount_due: '1329999999998.67' });
    const id = (open.body as Schemas['Invoice']).id;
    const paid = await t.api
      .post(`/api/v1/invoices/${id}/payments`)
      .send({ amount: '1329999999998.67', payment_method: 'pm_card_visa', rail: 'card' });
    expect(paid.status, paid.text).toBe(202);
    for (let i = 0; i < 3; i++) await performDueWork(dueCtx(), { tenantId: t.id });
    expect((await t.api.get(`/api/v1/invoices/${id}`)).body).toMatchObject({ status: 'paid' });
    const credited = await t.api.post(`/api/v1/invoices/${id}/credit-notes`).send({
      reason: 'order_change',
      lines: lines.map((line, line_index) => ({ line_index, amount: line.amount })),
      refund_to: 'payment',
    });
    expect(credited.status, credited.text).toBe(201);
    for (let i = 0; i < 3; i++) await performDueWork(dueCtx(), { tenantId: t.id });
    const refunds = (await t.api.get(`/api/v1/invoices/${id}/refunds`)).body as Schemas['RefundList'];
    expect(refunds.data.map((r) => [r.amount, r.status])).toEqual([['1329999999998.67', 'succeeded']]);
  });

  it('accepts one of two concurrent payments with different keys, settles it, and never pays twice', async () => {
    const pay = (key: string) =>
      t.api
        .post(`/api/v1/invoices/${invoice.id}/payments`)
        .set('Idempotency-Key', key)
        .send({ amount: '10.00', payment_method: 'pm_card_visa', rail: 'card' });
    const results = await Promise.all([pay('a-1'), pay('a-2')]);
    expect(results.map((r) => r.status).sort()).toEqual([202, 409]);
    const accepted = results.find((r) => r.status === 202)!;
    const payment = accepted.body as Schemas['Payment'];
    expect(payment).toMatchObject({ status: 'pending', amount: '10.00', initiated_by: 'api', attempt: 1 });
    expect(accepted.headers.location).toBe(`/api/v1/payments/${payment.id}`);

    // The worker's job, performed directly: submitted and (a card) settled at once.
    await performDueWork(dueCtx(), { tenantId: t.id });
    const settled = await t.api.get(`/api/v1/payments/${payment.id}`);
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({ status: 'succeeded', gateway_reference: `sim_${payment.id}` });
    const paid = await t.api.get(`/api/v1/invoices/${invoice.id}`);
    expect(paid.body).toMatchObject({ status: 'paid' });

    const again = await pay('a-3');
    expectProblem(again, 409, 'conflict');
    const list = await t.api.get('/api/v1/payments').query({ invoice_id: invoice.id, status: 'succeeded' });
    expect((list.body as Schemas['PaymentList']).data.map((p) => p.id)).toEqual([payment.id]);
    const events = await t.api.get('/api/v1/events').query({ resource_id: payment.id });
    expect((events.body as Schemas['EventList']).data.map((e) => e.type)).toEqual([
      'payment.created',
      'payment.processing',
      'payment.succeeded',
    ]);
  });
});

describe('billing settings', () => {
  it('has defaults, changes with If-Match, and refuses a schedule that is not ascending', async () => {
    const first = await t.api.get('/api/v1/billing-settings');
    expect(first.body).toEqual({ dunning_retry_days: [1, 3, 5], dunning_final_action: 'cancel', version: 1 });
    expectProblem(
      await t.api
        .put('/api/v1/billing-settings')
        .send({ dunning_retry_days: [3, 1], dunning_final_action: 'cancel' }),
      422,
      'unprocessable',
    );
    const stale = expectProblem(
      await t.api
        .put('/api/v1/billing-settings')
        .set('If-Match', '"9"')
        .send({ dunning_retry_days: [1], dunning_final_action: 'cancel' }),
      412,
      'precondition-failed',
    );
    expect(stale.detail).toMatch(/^The billing settings are at version \d+, not the one If-Match names/);
    // The body read, sent back as it is (version included): applied at that version, 412 after
    // a change made since (trials1 #6).
    const read = (await t.api.get('/api/v1/billing-settings')).body as Schemas['BillingSettings'];
    const again = await t.api.put('/api/v1/billing-settings').send(read);
    expect(again.status, again.text).toBe(200);
    const moved = await t.api.put('/api/v1/billing-settings').send({ ...read, dunning_retry_days: [1, 2] });
    expect(moved.status, moved.text).toBe(200);
    expect((moved.body as Schemas['BillingSettings']).version).toBe(read.version + 1);
    const old = expectProblem(
      await t.api.put('/api/v1/billing-settings').send({ ...read, dunning_retry_days: [1, 3, 5] }),
      412,
      'precondition-failed',
    );
    expect(old.detail).toMatch(/not the one If-Match or the body names/);
    await t.api
      .put('/api/v1/billing-settings')
      .send({ dunning_retry_days: [1, 3, 5], dunning_final_action: 'cancel' })
      .expect(200);
    const other = await ctx.newTenant();
    const changed = await other.api
      .put('/api/v1/billing-settings')
      .send({ dunning_retry_days: [2, 4], dunning_final_action: 'mark_unpaid' });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toMatchObject({ dunning_retry_days: [2, 4], dunning_final_action: 'mark_unpaid' });
    // Another tenant's settings are its own.
    expect((await t.api.get('/api/v1/billing-settings')).body).toMatchObject({
      dunning_retry_days: [1, 3, 5],
    });
  });
});

/** A clock on `at` in the tenant, and a way to advance it with the worker's job run right here. */
async function testClock(tenant: TestTenant, at = '2026-01-01T00:00:00Z') {
  const res = await tenant.api.post('/api/v1/test-clocks').send({ name: 'dunning', frozen_time: at });
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

/** A subscription whose first collection failed on 1 January: past_due, its retry due the next day. */
async function pastDue() {
  const clock = await testClock(t);
  const sub = await subscribeIn(t, plan.id, {
    test_clock_id: clock.id,
    payment_method: 'pm_insufficient_funds',
    payment_rail: 'card',
  });
  await clock.advance('2026-01-01T12:00:00Z');
  expect(await statusOf(t, sub.id)).toBe('past_due');
  const [invoice] = await invoicesOf(t, sub.id);
  expect(invoice).toMatchObject({ status: 'open', next_payment_attempt_at: '2026-01-02T00:00:00.000Z' });
  return { clock, sub, invoice };
}

/** A new tenant retrying a failed collection once, 40 days later, and a subscription whose card always fails. */
async function failingEveryMonth() {
  const tenant = await ctx.newTenant();
  await tenant.api
    .put('/api/v1/billing-settings')
    .send({ dunning_retry_days: [40], dunning_final_action: 'cancel' })
    .expect(200);
  const monthly = await tenant.api
    .post('/api/v1/plans')
    .send({ code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '7.00' } });
  const clock = await testClock(tenant);
  const sub = await subscribeIn(tenant, (monthly.body as Schemas['Plan']).id, {
    test_clock_id: clock.id,
    payment_method: 'pm_insufficient_funds',
    payment_rail: 'card',
  });
  return { tenant, clock, sub };
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
const statusOf = async (tenant: TestTenant, subscriptionId: string) =>
  ((await tenant.api.get(`/api/v1/subscriptions/${subscriptionId}`)).body as Schemas['Subscription']).status;
const eventTypes = async (tenant: TestTenant, subscriptionId: string) =>
  (
    (await tenant.api.get(`/api/v1/subscriptions/${subscriptionId}/events`).query({ limit: 100 }))
      .body as Schemas['EventList']
  ).data.map((e) => e.type);

describe('gateway outcomes and dunning, on a test clock', () => {
  it('fails a declined card at submission, and a gateway that times out after 3 tries, 1 and 2 minutes apart', async () => {
    const clock = await testClock(t);
    const declined = await subscribeIn(t, plan.id, {
      test_clock_id: clock.id,
      payment_method: 'pm_card_declined',
      payment_rail: 'card',
    });
    const silent = await subscribeIn(t, plan.id, {
      test_clock_id: clock.id,
      payment_method: 'pm_gateway_timeout',
      payment_rail: 'card',
    });
    await clock.advance('2026-01-01T00:10:00Z');

    const [card] = await paymentsOf(t, (await invoicesOf(t, declined.id))[0]!.id);
    expect(card).toMatchObject({
      status: 'failed',
      failure_reason: 'card_declined',
      settled_at: '2026-01-01T00:00:00.000Z',
      initiated_by: 'renewal',
    });
    const [timedOut] = await paymentsOf(t, (await invoicesOf(t, silent.id))[0]!.id);
    expect(timedOut).toMatchObject({
      status: 'failed',
      failure_reason: 'gateway_timeout',
      submitted_at: null,
      settled_at: '2026-01-01T00:03:00.000Z',
    });
    // Its retries are scheduling, which no response shows: the version moved once, with the one
    // event that says why (ops5 #2).
    const history = (
      (await t.api.get('/api/v1/events').query({ resource_id: timedOut!.id, limit: 100 }))
        .body as Schemas['EventList']
    ).data;
    expect(history.map((e) => [e.type, (e.data as unknown as { version: number }).version])).toEqual([
      ['payment.created', 1],
      ['payment.failed', 2],
    ]);
    expect(timedOut!.version).toBe(2);
    // Both renewals failed: dunning has begun.
    expect([await statusOf(t, declined.id), await statusOf(t, silent.id)]).toEqual(['past_due', 'past_due']);
  });

  it('never starts a retry before the attempt before it failed, on a rail that settles in days (ACH)', async () => {
    // Monday 2 March; retries 1, 3 and 5 days after the first failure, which ACH reports on the 4th.
    const clock = await testClock(t, '2026-03-02T00:00:00Z');
    const sub = await subscribeIn(t, plan.id, {
      start_date: '2026-03-02',
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'ach_standard',
    });
    await clock.advance('2026-03-20T00:00:00Z');
    const [invoice] = await invoicesOf(t, sub.id);
    const attempts = await paymentsOf(t, invoice!.id);
    expect(attempts.map((p) => p.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    for (let i = 1; i < attempts.length; i++)
      expect(attempts[i]!.submitted_at! >= attempts[i - 1]!.settled_at!, `attempt ${i + 1}`).toBe(true);
    // And the feed (oldest first) reads in time order: no event occurs before the one before it.
    const events = (
      (await t.api.get('/api/v1/events').query({ resource_id: invoice!.id, limit: 100 }))
        .body as Schemas['EventList']
    ).data;
    const times = events.map((e) => e.occurred_at);
    expect(times).toEqual([...times].sort());
  });

  it('retries with the payment method the subscription has by then, and recovers it to active', async () => {
    const { clock, sub, invoice } = await pastDue();

    // The customer updates the card before the first retry.
    const updated = await t.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ payment_method: 'pm_card_visa' });
    expect(updated.status, updated.text).toBe(200);
    await clock.advance('2026-01-03T00:00:00Z');

    expect(
      (await paymentsOf(t, invoice!.id)).map((p) => [p.attempt, p.payment_method, p.status, p.initiated_by]),
    ).toEqual([
      [1, 'pm_insufficient_funds', 'failed', 'renewal'],
      [2, 'pm_card_visa', 'succeeded', 'dunning'],
    ]);
    expect((await invoicesOf(t, sub.id))[0]).toMatchObject({
      status: 'paid',
      paid_at: '2026-01-02T00:00:00.000Z',
    });
    expect(await statusOf(t, sub.id)).toBe('active');
    const types = await eventTypes(t, sub.id);
    expect(
      types.filter((type) => type === 'subscription.past_due' || type === 'subscription.recovered'),
    ).toEqual(['subscription.past_due', 'subscription.recovered']);
  });

  it('marks it unpaid after the last retry (mark_unpaid): invoiced, never collected, active once paid', async () => {
    const tenant = await ctx.newTenant();
    const settings = await tenant.api
      .put('/api/v1/billing-settings')
      .send({ dunning_retry_days: [1], dunning_final_action: 'mark_unpaid' });
    expect(settings.status, settings.text).toBe(200);
    const monthly = await tenant.api
      .post('/api/v1/plans')
      .send({ code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '7.00' } });
    expect(monthly.status, monthly.text).toBe(201);
    const clock = await testClock(tenant);
    const sub = await subscribeIn(tenant, (monthly.body as Schemas['Plan']).id, {
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    await clock.advance('2026-02-15T00:00:00Z');

    const [january, february] = await invoicesOf(tenant, sub.id);
    expect(january).toMatchObject({ status: 'uncollectible', uncollectible_at: '2026-01-02T00:00:00.000Z' });
    expect((await paymentsOf(tenant, january!.id)).map((p) => p.status)).toEqual(['failed', 'failed']);
    // Still invoiced each period, and no longer collected.
    expect(february).toMatchObject({ status: 'open', period_start: '2026-02-01' });
    expect(await paymentsOf(tenant, february!.id)).toEqual([]);
    expect(await statusOf(tenant, sub.id)).toBe('unpaid');
    expect(await eventTypes(tenant, sub.id)).toContain('subscription.unpaid');
    // The payment method stays: it is the customer's, and paying by hand can use another.
    expect((await tenant.api.get(`/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({
      payment_method: 'pm_insufficient_funds',
    });

    const paid = await tenant.api
      .post(`/api/v1/invoices/${january!.id}/payments`)
      .send({ amount: '7.00', payment_method: 'pm_card_visa', rail: 'card' });
    expect(paid.status, paid.text).toBe(202);
    await performDueWork(dueCtx(), { tenantId: tenant.id, clockId: clock.id });
    expect((await invoicesOf(tenant, sub.id))[0]).toMatchObject({
      status: 'paid',
      paid_at: '2026-02-15T00:00:00.000Z',
    });
    // Active again, and collected again: February, issued while it was unpaid, is collected
    // then with its card, which fails: February's dunning begins (test/api/dunning-edges.test.ts).
    expect((await eventTypes(tenant, sub.id)).slice(-2)).toEqual([
      'subscription.recovered',
      'subscription.past_due',
    ]);
    expect((await paymentsOf(tenant, february!.id)).map((p) => [p.initiated_by, p.status])).toEqual([
      ['renewal', 'failed'],
    ]);
    expect(await statusOf(tenant, sub.id)).toBe('past_due');
  });

  it('keeps a subscription past_due while another period’s invoice is still failing', async () => {
    // January's and February's collections fail; their retries are 40 days after each.
    const { tenant, clock, sub } = await failingEveryMonth();
    await clock.advance('2026-02-02T00:00:00Z');
    const [january, february] = await invoicesOf(tenant, sub.id);
    expect([january!.status, february!.status]).toEqual(['open', 'open']);
    const pay = await tenant.api
      .post(`/api/v1/invoices/${january!.id}/payments`)
      .send({ amount: '7.00', payment_method: 'pm_card_visa', rail: 'card' });
    expect(pay.status, pay.text).toBe(202);
    await performDueWork(dueCtx(), { tenantId: tenant.id, clockId: clock.id });
    expect((await invoicesOf(tenant, sub.id)).map((i) => i.status)).toEqual(['paid', 'open']);
    expect(await statusOf(tenant, sub.id)).toBe('past_due');
  });

  it('ends dunning when its failing invoices are voided: active again, and never retried', async () => {
    // January's and February's collections fail; their retries are 40 days after each.
    const { tenant, clock, sub } = await failingEveryMonth();
    await clock.advance('2026-02-01T12:00:00Z');
    const [january, february] = await invoicesOf(tenant, sub.id);
    expect([january!.status, february!.status]).toEqual(['open', 'open']);
    expect(await statusOf(tenant, sub.id)).toBe('past_due');

    // One voided, one still failing: not yet.
    const first = await tenant.api.post(`/api/v1/invoices/${january!.id}/void`);
    expect(first.status, first.text).toBe(200);
    expect(await statusOf(tenant, sub.id)).toBe('past_due');
    const last = await tenant.api.post(`/api/v1/invoices/${february!.id}/void`);
    expect(last.status, last.text).toBe(200);
    expect(last.body).toMatchObject({ status: 'void', next_payment_attempt_at: null });
    expect(await statusOf(tenant, sub.id)).toBe('active');
    expect((await eventTypes(tenant, sub.id)).at(-1)).toBe('subscription.recovered');

    // January's retry day (10 February) passes without a payment; March renews and is collected.
    await clock.advance('2026-03-01T12:00:00Z');
    expect((await paymentsOf(tenant, january!.id)).length).toBe(1);
    expect((await invoicesOf(tenant, sub.id)).map((i) => i.status)).toEqual(['void', 'void', 'open']);
    expect(await statusOf(tenant, sub.id)).toBe('past_due');
  });

  it("gives each invoice.payment_failed a version of its own, an API payment's too (lifecycle8 #2)", async () => {
    const { clock, invoice } = await pastDue();
    const paid = await t.api
      .post(`/api/v1/invoices/${invoice!.id}/payments`)
      .send({ amount: invoice!.amount_due, payment_method: 'pm_insufficient_funds', rail: 'card' });
    expect(paid.status, paid.text).toBe(202);
    await clock.advance('2026-01-01T16:00:00Z');
    const events = (
      (await t.api.get('/api/v1/events').query({ resource_id: invoice!.id, limit: 100 }))
        .body as Schemas['EventList']
    ).data;
    const failures = events.filter((e) => e.type === 'invoice.payment_failed');
    expect(failures).toHaveLength(2);
    const versions = events.map((e) => (e.data as unknown as { version: number }).version);
    expect(
      new Set(versions).size,
      JSON.stringify(events.map((e) => [e.type, (e.data as unknown as { version: number }).version])),
    ).toBe(versions.length);
  });

  it('stops retrying the invoices of a subscription canceled during dunning; they stay owed', async () => {
    const { clock, sub, invoice } = await pastDue();

    const canceled = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    expect((await invoicesOf(t, sub.id))[0]).toMatchObject({ status: 'open', next_payment_attempt_at: null });
    await clock.advance('2026-01-10T00:00:00Z');
    expect((await paymentsOf(t, invoice!.id)).length).toBe(1);
    expect((await invoicesOf(t, sub.id))[0]).toMatchObject({ status: 'open', amount_due: '10.00' });
  });
});

describe('renewals in real time', () => {
  it('catches up after downtime: each missed period invoiced once, in order, and a rerun adds nothing', async () => {
    const tenant = await ctx.newTenant();
    const monthly = await tenant.api
      .post('/api/v1/plans')
      .send({ code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '7.00' } });
    expect(monthly.status, monthly.text).toBe(201);
    const month = (offset: number) => {
      const now = new Date();
      return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1))
        .toISOString()
        .slice(0, 10);
    };
    const user = await createUser(tenant);
    const created = await tenant.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: month(-4),
      plan_id: (monthly.body as Schemas['Plan']).id,
    });
    expect(created.status, created.text).toBe(201);
    const sub = created.body as Schemas['Subscription'];
    expect(sub.billed_until).toBe(month(0));
    // As a worker stopped for three periods leaves it: billed until three months ago.
    await sql`update subscriptions set billed_until = ${month(-3)} where id = ${sub.id}`.execute(ctx.db);

    const work = { ...dueCtx(), ownerDb: ctx.db };
    await performDueWork(work, { tenantId: tenant.id });
    await performDueWork(work, { tenantId: tenant.id });

    const invoices = await invoicesOf(tenant, sub.id);
    expect(invoices.map((i) => [i.period_start, i.number, i.status])).toEqual([
      [month(-3), 1, 'open'],
      [month(-2), 2, 'open'],
      [month(-1), 3, 'open'],
      [month(0), 4, 'open'],
    ]);
    expect(
      ((await tenant.api.get(`/api/v1/subscriptions/${sub.id}`)).body as Schemas['Subscription'])
        .billed_until,
    ).toBe(month(1));
  });
});

describe('a job that keeps failing', () => {
  it('is retried with backoff, then stays failed with its last error, and its work waits undone', async () => {
    const tenant = await ctx.newTenant();
    const monthly = await tenant.api
      .post('/api/v1/plans')
      .send({ code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '7.00' } });
    const user = await createUser(tenant);
    const sub = await tenant.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: new Date().toISOString().slice(0, 10),
      plan_id: (monthly.body as Schemas['Plan']).id,
    });
    const invoice = await tenant.api
      .post(`/api/v1/subscriptions/${(sub.body as Schemas['Subscription']).id}/invoices`)
      .send({});
    await tenant.api.post(`/api/v1/invoices/${(invoice.body as Schemas['Invoice']).id}/finalize`).expect(200);

    const outage = {
      ...simulatedGateway,
      submit: () => Promise.reject(new Error('the gateway is unreachable')),
      settle: () => Promise.reject(new Error('the gateway is unreachable')),
    };
    // Its warnings are this test's point: not shown.
    const worker = await startWorker(ctx.url, createLogger({ level: 'error' }), {
      jobs: {
        inProcess: true,
        timeoutSeconds: 60,
        pollSeconds: 1,
        settlementDelayScale: 1,
        retryLimit: 1,
        retryDelaySeconds: 1,
      },
      pollSeconds: 0.5,
      dbPoolSize: 2,
      gateway: outage,
    });
    try {
      const paid = await tenant.api
        .post(`/api/v1/invoices/${(invoice.body as Schemas['Invoice']).id}/payments`)
        .send({ amount: '7.00', payment_method: 'pm_card_visa', rail: 'card' });
      expect(paid.status, paid.text).toBe(202);
      const job = async () =>
        (
          await sql<{ state: string; retry_count: number; output: { message?: string } | null }>`
            select state, retry_count, output from pgboss.job where singleton_key = ${`real:${tenant.id}`}
            order by created_on desc limit 1`.execute(ctx.db)
        ).rows[0];
      for (let i = 0; (await job())?.state !== 'failed'; i++) {
        expect(i, `the job did not fail for good: ${JSON.stringify(await job())}`).toBeLessThan(100);
        await sleep(100);
      }
      expect(await job()).toMatchObject({
        state: 'failed',
        retry_count: 1,
        output: { message: 'the gateway is unreachable' },
      });
      // Nothing half done: the payment waits to be submitted by a later job.
      const payment = await tenant.api.get(`/api/v1/payments/${(paid.body as Schemas['Payment']).id}`);
      expect(payment.body).toMatchObject({ status: 'pending', submitted_at: null });
    } finally {
      await worker.stop(1000);
    }
  });
});

describe('a long catch-up, run by the worker in slices', () => {
  it('goes on in new jobs until everything is done, and the clock is ready only then', async () => {
    // Every job stops after its first batch (a 1 ms slice) and hands the rest to a new job.
    const worker = await startWorker(ctx.url, silentLogger(), {
      jobs: { inProcess: true, timeoutSeconds: 60, pollSeconds: 1, settlementDelayScale: 1 },
      pollSeconds: 0.5,
      dbPoolSize: 2,
      sliceMs: 1,
    });
    try {
      const clock = (
        await t.api.post('/api/v1/test-clocks').send({ name: 'slices', frozen_time: '2026-01-01T00:00:00Z' })
      ).body as Schemas['TestClock'];
      const subs = [
        await subscribe({ test_clock_id: clock.id }),
        await subscribe({ test_clock_id: clock.id }),
      ];
      const advance = await t.api
        .post(`/api/v1/test-clocks/${clock.id}/advance`)
        .send({ frozen_time: '2026-07-15T00:00:00Z' });
      expect(advance.status, advance.text).toBe(202);
      for (let i = 0; ; i++) {
        const read = (await t.api.get(`/api/v1/test-clocks/${clock.id}`)).body as Schemas['TestClock'];
        if (read.status === 'ready') break;
        expect(i, 'the clock did not become ready').toBeLessThan(600);
        await sleep(100);
      }
      for (const sub of subs) {
        const invoices = (
          (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 }))
            .body as Schemas['InvoiceList']
        ).data;
        expect(invoices.map((i) => i.period_start).sort()).toEqual([
          '2026-01-01',
          '2026-02-01',
          '2026-03-01',
          '2026-04-01',
          '2026-05-01',
          '2026-06-01',
          '2026-07-01',
        ]);
      }
      const { rows } = await sql<{ jobs: number }>`
        select count(*)::int as jobs from pgboss.job where singleton_key = ${`clock:${clock.id}`}`.execute(
        ctx.db,
      );
      expect(rows[0]!.jobs).toBeGreaterThan(3);
    } finally {
      await worker.stop(1000);
    }
  });
});

describe('a job of a test clock that finds nothing due', () => {
  it('does not set it ready once an advance made meanwhile has made work due', async () => {
    // A late job of the clock (a wake-up of its last advance) found nothing due at the old time,
    // then waited for the clock's lock while a new advance took it: it must not end that advance.
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'late job', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const sub = await subscribe({ test_clock_id: clock.id });
    await performDueWork(dueCtx(), { tenantId: t.id, clockId: clock.id });
    const advance = await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2026-03-15T00:00:00Z' });
    expect(advance.status, advance.text).toBe(202);
    await testClockReady(dueCtx(), t.id, clock.id);
    expect((await t.api.get(`/api/v1/test-clocks/${clock.id}`)).body).toMatchObject({ status: 'advancing' });
    expectProblem(
      await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ quantity: 2 }),
      409,
      'conflict',
    );
    // The advance's own job does the work, then sets it ready.
    await performDueWork(dueCtx(), { tenantId: t.id, clockId: clock.id });
    expect((await t.api.get(`/api/v1/test-clocks/${clock.id}`)).body).toMatchObject({ status: 'ready' });
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 }))
        .body as Schemas['InvoiceList']
    ).data;
    expect(invoices.map((i) => i.period_start).sort()).toEqual(['2026-01-01', '2026-02-01', '2026-03-01']);
  });
});

describe('a test clock whose catch-up failed for good', () => {
  it('is queued again by the minute schedule, and becomes ready', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'stalled', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const sub = await subscribe({ test_clock_id: clock.id });
    const advance = await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2026-03-15T00:00:00Z' });
    expect(advance.status, advance.text).toBe(202);
    // No worker runs here: the job waits. It fails for good, as after JOB_RETRY_LIMIT retries.
    const jobs = async () =>
      (
        await sql<{ state: string }>`
          select state from pgboss.job where singleton_key = ${`clock:${clock.id}`} order by created_on`.execute(
          ctx.db,
        )
      ).rows.map((r) => r.state);
    expect(await jobs()).toEqual(['created']);
    // While a job waits, the clock is not stalled.
    expect(await resumeStalledClocks(dueCtx(), '0 seconds')).toBe(0);
    await sql`update pgboss.job set state = 'failed' where singleton_key = ${`clock:${clock.id}`}`.execute(
      ctx.db,
    );
    // What that costs: every change to the clock's subscriptions is refused while it advances.
    expectProblem(
      await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ quantity: 2 }),
      409,
      'conflict',
    );
    // A clock advanced moments ago is left alone (its job may be between two slices)...
    expect(await resumeStalledClocks(dueCtx())).toBe(0);
    // ...one quiet for longer is queued again by the minute schedule's job (run here at once).
    await sql`update test_clocks set updated_at = now() - interval '2 minutes' where id = ${clock.id}`.execute(
      ctx.db,
    );
    await enqueueDue(ctx.db, {});
    const worker = await startWorker(ctx.url, silentLogger(), {
      jobs: { inProcess: true, timeoutSeconds: 60, pollSeconds: 1, settlementDelayScale: 1 },
      pollSeconds: 0.5,
      dbPoolSize: 2,
    });
    try {
      for (let i = 0; ; i++) {
        const read = (await t.api.get(`/api/v1/test-clocks/${clock.id}`)).body as Schemas['TestClock'];
        if (read.status === 'ready') break;
        expect(i, 'the clock did not become ready').toBeLessThan(300);
        await sleep(100);
      }
    } finally {
      await worker.stop(1000);
    }
    expect(await jobs()).toEqual(['failed', 'completed']);
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 }))
        .body as Schemas['InvoiceList']
    ).data;
    expect(invoices.map((i) => i.period_start).sort()).toEqual(['2026-01-01', '2026-02-01', '2026-03-01']);
  });
});

describe('a year on a test clock, run by the worker', () => {
  let worker: RunningWorker;

  beforeAll(async () => {
    worker = await startWorker(ctx.url, silentLogger(), {
      jobs: { inProcess: true, timeoutSeconds: 60, pollSeconds: 1, settlementDelayScale: 1 },
      pollSeconds: 0.5,
      dbPoolSize: 2,
    });
  });
  afterAll(async () => {
    await worker.stop(1000);
  });

  it('renews monthly, settles per rail, and duns a failing card to cancellation', async () => {
    const clockRes = await t.api
      .post('/api/v1/test-clocks')
      .send({ name: 'a year', frozen_time: '2026-01-01T00:00:00Z' });
    expect(clockRes.status, clockRes.text).toBe(201);
    const clock = clockRes.body as Schemas['TestClock'];
    const listed = (await t.api.get('/api/v1/test-clocks')).body as Schemas['TestClockList'];
    expect(listed.data[0]).toMatchObject({ id: clock.id, status: 'ready' });

    const card = await subscribe({
      test_clock_id: clock.id,
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    const ach = await subscribe({
      test_clock_id: clock.id,
      payment_method: 'pm_us_bank_account',
      payment_rail: 'ach_standard',
    });
    const failing = await subscribe({
      test_clock_id: clock.id,
      payment_method: 'pm_insufficient_funds',
      payment_rail: 'card',
    });
    expect(card.billed_until).toBe('2026-01-01');

    expectProblem(
      await t.api
        .post(`/api/v1/test-clocks/${clock.id}/advance`)
        .send({ frozen_time: '2025-12-31T00:00:00Z' }),
      422,
      'unprocessable',
    );
    const advance = await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2026-12-31T12:00:00Z' });
    expect(advance.status, JSON.stringify(ctx.unexpectedErrors.at(-1))).toBe(202);
    expect(advance.body).toMatchObject({ status: 'advancing' });
    expectProblem(
      await t.api
        .post(`/api/v1/test-clocks/${clock.id}/advance`)
        .send({ frozen_time: '2027-01-31T00:00:00Z' }),
      409,
      'conflict',
    );

    for (let i = 0; ; i++) {
      const now = await t.api.get(`/api/v1/test-clocks/${clock.id}`);
      if ((now.body as Schemas['TestClock']).status === 'ready') break;
      expect(i, 'the clock did not become ready within 60 s').toBeLessThan(300);
      await sleep(200);
    }

    const invoicesOf = async (id: string) =>
      (await t.api.get('/api/v1/invoices').query({ subscription_id: id, limit: 100 }))
        .body as Schemas['InvoiceList'];
    for (const sub of [card, ach]) {
      const { data } = await invoicesOf(sub.id);
      expect(data).toHaveLength(12);
      expect(data.every((i) => i.status === 'paid')).toBe(true);
      expect(data.map((i) => i.period_start).sort()[0]).toBe('2026-01-01');
      expect(data.map((i) => i.period_start).sort()[11]).toBe('2026-12-01');
    }
    // ACH settles two business days after submission: 2026-01-01 is a Thursday, so Monday the 5th.
    const achPayments = (await t.api.get('/api/v1/payments').query({ subscription_id: ach.id, limit: 100 }))
      .body as Schemas['PaymentList'];
    const january = achPayments.data.find((p) => p.submitted_at?.startsWith('2026-01-01'))!;
    expect(january).toMatchObject({ status: 'succeeded', settled_at: '2026-01-05T00:00:00.000Z' });

    // The failing card: first failure on Jan 1, retries 1, 3 and 5 days later, then canceled.
    const failed = await invoicesOf(failing.id);
    expect(failed.data).toHaveLength(1);
    expect(failed.data[0]).toMatchObject({ status: 'uncollectible', next_payment_attempt_at: null });
    const attempts = (await t.api.get(`/api/v1/invoices/${failed.data[0]!.id}/payments`))
      .body as Schemas['PaymentList'];
    expect(attempts.data.map((p) => [p.attempt, p.status, p.failure_reason, p.settled_at]).reverse()).toEqual(
      [
        [1, 'failed', 'insufficient_funds', '2026-01-01T00:00:00.000Z'],
        [2, 'failed', 'insufficient_funds', '2026-01-02T00:00:00.000Z'],
        [3, 'failed', 'insufficient_funds', '2026-01-04T00:00:00.000Z'],
        [4, 'failed', 'insufficient_funds', '2026-01-06T00:00:00.000Z'],
      ],
    );
    const after = (await t.api.get(`/api/v1/subscriptions/${failing.id}`)).body as Schemas['Subscription'];
    expect(after).toMatchObject({ status: 'canceled', canceled_at: '2026-01-06T00:00:00.000Z' });
    const history = (await t.api.get(`/api/v1/subscriptions/${failing.id}/events`).query({ limit: 100 }))
      .body as Schemas['EventList'];
    const types = history.data.map((e) => e.type);
    expect(types).toContain('subscription.past_due');
    expect(types.at(-1)).toBe('subscription.canceled');

    // Invoice numbers: gapless and unique across the tenant.
    const all = (await t.api.get('/api/v1/invoices').query({ limit: 100 })).body as Schemas['InvoiceList'];
    const numbers = all.data
      .map((i) => i.number)
      .filter((n) => n !== null)
      .sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
    expect(ctx.unexpectedErrors).toEqual([]);
  }, 90_000);
});

// Warnings (a failed job) are shown; the worker's info lines are not the test's business.
const silentLogger = () => createLogger({ level: 'warn' });
