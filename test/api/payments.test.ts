// Background billing: payments on rails through the API, test clocks, renewals and dunning
// performed by the real pg-boss worker, and the tenant's dunning settings.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { simulatedGateway } from '../../src/billing/gateway.js';
import { createLogger } from '../../src/logger.js';
import { performDueWork } from '../../src/services/due-work.js';
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
    expectProblem(
      await t.api
        .put('/api/v1/billing-settings')
        .set('If-Match', '"9"')
        .send({ dunning_retry_days: [1], dunning_final_action: 'cancel' }),
      412,
      'precondition-failed',
    );
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
    expect((await t.api.get('/api/v1/test-clocks')).body).toMatchObject({ data: [{ id: clock.id }] });

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
