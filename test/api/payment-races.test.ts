// Money at the edges: a payment and a void of the same invoice, and many requests and worker
// steps on one invoice at once. No invoice is ever paid twice or paid while void, and no client
// ever sees a 500 (a deadlock is neither possible in the lock order nor shown if it happened).
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { type PaymentGateway, simulatedGateway } from '../../src/billing/gateway.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { pause } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let plan: Schemas['Plan'];

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

/** Counts the gateway's calls, so a test can tell that no money was asked for. */
function countingGateway() {
  const calls = { submit: 0, settle: 0 };
  const gateway: PaymentGateway = {
    ...simulatedGateway,
    submit: (p) => (calls.submit++, simulatedGateway.submit(p)),
    settle: (p) => (calls.settle++, simulatedGateway.settle(p)),
  };
  return { calls, gateway };
}

const work = (gateway: PaymentGateway = simulatedGateway, settlementDelayScale = 0) =>
  performDueWork({ db: ctx.appDb, ownerDb: ctx.db, gateway, settlementDelayScale }, { tenantId: t.id });

/** An open invoice of today's period for a new customer. */
async function openInvoice(): Promise<Schemas['Invoice']> {
  const user = await createUser(t);
  const today = new Date().toISOString().slice(0, 10);
  const sub = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', start_date: today, plan_id: plan.id });
  expect(sub.status, sub.text).toBe(201);
  const draft = await t.api.post(
    `/api/v1/subscriptions/${(sub.body as Schemas['Subscription']).id}/invoices`,
  );
  expect(draft.status, draft.text).toBe(201);
  const open = await t.api.post(`/api/v1/invoices/${(draft.body as Schemas['Invoice']).id}/finalize`);
  expect(open.status, open.text).toBe(200);
  return open.body as Schemas['Invoice'];
}

const pay = (invoiceId: string, rail = 'card', key?: string) => {
  const request = t.api.post(`/api/v1/invoices/${invoiceId}/payments`);
  if (key) request.set('Idempotency-Key', key);
  return request.send({ amount: '10.00', payment_method: 'pm_card_visa', rail });
};
const voidIt = (invoiceId: string) => t.api.post(`/api/v1/invoices/${invoiceId}/void`);
const getInvoice = async (id: string) =>
  (await t.api.get(`/api/v1/invoices/${id}`)).body as Schemas['Invoice'];
const paymentsOf = async (invoiceId: string) =>
  (
    (await t.api.get(`/api/v1/invoices/${invoiceId}/payments`).query({ limit: 100 }))
      .body as Schemas['PaymentList']
  ).data;

describe('voiding an invoice with a payment in flight', () => {
  it('is refused with 409 while the payment is pending, and the payment then pays the invoice', async () => {
    const invoice = await openInvoice();
    const payment = await pay(invoice.id);
    expect(payment.status, payment.text).toBe(202);

    const refused = await voidIt(invoice.id);
    expectProblem(refused, 409, 'conflict');
    expect((refused.body as Schemas['Problem']).detail).toMatch(/pending/);
    expect((await getInvoice(invoice.id)).status).toBe('open');

    await work();
    expect((await getInvoice(invoice.id)).status).toBe('paid');
    expect((await paymentsOf(invoice.id)).map((p) => p.status)).toEqual(['succeeded']);
    expectProblem(await voidIt(invoice.id), 409, 'conflict'); // paid: never void
  });

  it('is refused with 409 while a wire payment is processing (settling in 4 hours)', async () => {
    const invoice = await openInvoice();
    expect((await pay(invoice.id, 'wire')).status).toBe(202);
    await work(simulatedGateway, 1); // submitted; settles 4 hours from now
    const [processing] = await paymentsOf(invoice.id);
    expect(processing).toMatchObject({ status: 'processing' });

    const refused = await voidIt(invoice.id);
    expectProblem(refused, 409, 'conflict');
    expect((refused.body as Schemas['Problem']).detail).toMatch(/processing/);
    expect((await getInvoice(invoice.id)).status).toBe('open');
  });

  it('voids an invoice whose payment failed (nothing is moving any more)', async () => {
    const invoice = await openInvoice();
    const failed = await t.api
      .post(`/api/v1/invoices/${invoice.id}/payments`)
      .send({ amount: '10.00', payment_method: 'pm_card_declined', rail: 'card' });
    expect(failed.status).toBe(202);
    await work();
    expect((await paymentsOf(invoice.id)).map((p) => p.status)).toEqual(['failed']);
    const voided = await voidIt(invoice.id);
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body).toMatchObject({ status: 'void' });
  });
});

describe('settling against an invoice that is no longer payable', () => {
  // Voiding through the API is refused while money moves; this covers any other way an invoice
  // stops being payable (here, a status changed behind the API's back).
  it('fails a processing payment with invoice_not_payable, and never asks the gateway to collect', async () => {
    const invoice = await openInvoice();
    expect((await pay(invoice.id, 'wire')).status).toBe(202);
    await work(simulatedGateway, 1);
    await sql`update invoices set status = 'void', voided_at = now() where id = ${invoice.id}`.execute(
      ctx.db,
    );
    await sql`update payments set settles_at = now() where invoice_id = ${invoice.id}`.execute(ctx.db);

    const { calls, gateway } = countingGateway();
    await work(gateway);
    expect(calls.settle).toBe(0);
    const [payment] = await paymentsOf(invoice.id);
    expect(payment).toMatchObject({ status: 'failed', failure_reason: 'invoice_not_payable' });
    expect((await getInvoice(invoice.id)).status).toBe('void');
    const events = await t.api.get('/api/v1/events').query({ resource_id: payment!.id });
    expect((events.body as Schemas['EventList']).data.map((e) => e.type)).toEqual([
      'payment.created',
      'payment.processing',
      'payment.failed',
    ]);
  });

  it('fails a pending payment the same way, before it is submitted', async () => {
    const invoice = await openInvoice();
    expect((await pay(invoice.id)).status).toBe(202);
    await sql`update invoices set status = 'void', voided_at = now() where id = ${invoice.id}`.execute(
      ctx.db,
    );
    const { calls, gateway } = countingGateway();
    await work(gateway);
    expect(calls).toEqual({ submit: 0, settle: 0 });
    expect(await paymentsOf(invoice.id)).toMatchObject([
      { status: 'failed', failure_reason: 'invoice_not_payable' },
    ]);
  });
});

describe('one invoice, many requests and worker steps at once', () => {
  it('never answers 500, never pays twice, and never pays a void invoice', async () => {
    for (let round = 0; round < 10; round++) {
      const invoice = await openInvoice();
      // Requests spread over a few milliseconds, and the worker's steps (submit, settle) looping
      // alongside them until every request is answered: they meet at every point of a payment.
      let answered = false;
      const requests = Promise.all([
        ...Array.from({ length: 12 }, (_, i) =>
          pause(i * 3).then(() => pay(invoice.id, 'card', `race-${round}-${i}`)),
        ),
        pause(10).then(() => voidIt(invoice.id)),
        pause(25).then(() => voidIt(invoice.id)),
      ]).finally(() => (answered = true));
      const worker = async () => {
        while (!answered) await work();
      };
      const [answers] = await Promise.all([requests, worker(), worker(), worker()]);
      for (const answer of answers) expect([200, 202, 409], answer.text).toContain(answer.status);
      await work(); // whatever is left to do

      const final = await getInvoice(invoice.id);
      const payments = await paymentsOf(invoice.id);
      const succeeded = payments.filter((p) => p.status === 'succeeded');
      expect(payments.filter((p) => p.status === 'pending' || p.status === 'processing')).toEqual([]);
      if (final.status === 'paid') expect(succeeded).toHaveLength(1);
      else {
        expect(final.status).toBe('void');
        expect(succeeded).toEqual([]);
      }
      // Every 202 is one payment: no payment was created without its answer, or twice.
      expect(payments).toHaveLength(answers.filter((a) => a.status === 202).length);
    }
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
