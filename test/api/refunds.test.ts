// Credit notes on paid invoices: the money goes back through the gateway (a refund on the rail of
// the payment that paid, settled by the worker after the rail's delay, its failure credited to
// the customer's balance) or to the customer's balance, which the customer's next invoices
// consume after tax. Every customer here lives on a test clock, so the worker's steps (renewals,
// payments, refunds) happen at the clock's times, performed right here.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import { parseAmount } from '../../src/billing/money.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

type Invoice = Schemas['Invoice'];
type CreditNote = Schemas['CreditNote'];
type Refund = Schemas['Refund'];
type User = Schemas['User'];

const dueCtx = () => ({ db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 });

/** A catalog in the tenant: 33.33 a seat a month, and taxes of 1.5% (US) and 7.25% (US-CA). */
async function catalog(tenant: TestTenant): Promise<Schemas['Plan']> {
  const made = await tenant.api
    .post('/api/v1/plans')
    .send({ code: 'seats', name: 'Seats', interval: 'month', price: { model: 'per_unit', amount: '33.33' } });
  expect(made.status, made.text).toBe(201);
  for (const rate of [
    { code: 'SALES', name: 'US', percentage: '1.5', region: 'US', effective_from: '2020-01-01' },
    { code: 'STATE', name: 'California', percentage: '7.25', region: 'US-CA', effective_from: '2020-01-01' },
  ])
    expect((await tenant.api.post('/api/v1/tax-rates').send(rate)).status).toBe(201);
  return made.body as Schemas['Plan'];
}

const plans = new Map<string, Schemas['Plan']>();

beforeAll(async () => {
  t = await ctx.newTenant();
  plans.set(t.id, await catalog(t));
});

/**
 * A customer in US-CA with 3 seats (99.99, taxes 1.50 and 7.25: 108.74 a month) on a test clock
 * from 2026-01-01, collected from `method` on `rail`: January is invoiced, issued and paid (on
 * ach_standard the clock is moved past the settlement, to 2026-01-06).
 */
async function paidCustomer(method = 'pm_card_visa', rail = 'card', tenant = t) {
  const clockRes = await tenant.api
    .post('/api/v1/test-clocks')
    .send({ name: 'refunds', frozen_time: '2026-01-01T00:00:00Z' });
  expect(clockRes.status, clockRes.text).toBe(201);
  const clockId = (clockRes.body as Schemas['TestClock']).id;
  const advance = async (to: string) => {
    const res = await tenant.api.post(`/api/v1/test-clocks/${clockId}/advance`).send({ frozen_time: to });
    expect(res.status, res.text).toBe(202);
    await work();
  };
  const work = () => performDueWork(dueCtx(), { tenantId: tenant.id, clockId });
  const user = await createUser(tenant, { region: 'US-CA' });
  const sub = await tenant.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'active',
    plan_id: plans.get(tenant.id)!.id,
    quantity: 3,
    start_date: '2026-01-01',
    test_clock_id: clockId,
    payment_method: method,
    payment_rail: rail,
  });
  expect(sub.status, sub.text).toBe(201);
  const subscription = sub.body as Schemas['Subscription'];
  await work();
  if (rail === 'ach_standard') await advance('2026-01-06T00:00:00Z');
  const [invoice] = await invoicesOf(tenant, subscription.id);
  expect(invoice).toMatchObject({
    status: 'paid',
    total: '108.74',
    amount_due: '0.00',
    period_start: '2026-01-01',
  });
  return { user, subscription, invoice: invoice!, advance, work };
}

const invoicesOf = async (tenant: TestTenant, subscriptionId: string) =>
  (
    (await tenant.api.get('/api/v1/invoices').query({ subscription_id: subscriptionId, limit: 100 }))
      .body as Schemas['InvoiceList']
  ).data.reverse();
const getInvoice = async (id: string) => (await t.api.get(`/api/v1/invoices/${id}`)).body as Invoice;
const getRefund = async (id: string) => {
  const res = await t.api.get(`/api/v1/refunds/${id}`);
  expect(res.status, res.text).toBe(200);
  return res.body as Refund;
};
const getUser = async (id: string) => (await t.api.get(`/api/v1/users/${id}`)).body as User;
const ledgerOf = async (userId: string, tenant = t) => {
  const res = await tenant.api.get(`/api/v1/users/${userId}/balance-transactions`);
  expect(res.status, res.text).toBe(200);
  return (res.body as Schemas['BalanceTransactionList']).data.reverse();
};
const paymentsOf = async (invoiceId: string) =>
  ((await t.api.get(`/api/v1/invoices/${invoiceId}/payments`)).body as Schemas['PaymentList']).data;
const credit = (invoice: Pick<Invoice, 'id'>, body: Record<string, unknown>, tenant = t) =>
  tenant.api.post(`/api/v1/invoices/${invoice.id}/credit-notes`).send(body);
const eventsOf = async (query: Record<string, string>) =>
  ((await t.api.get('/api/v1/events').query({ limit: 100, ...query })).body as Schemas['EventList']).data;

describe('refunds through the gateway', () => {
  it('refunds a card payment: a pending refund on the card, which the worker settles at once', async () => {
    const { user, invoice, work } = await paidCustomer();
    const [payment] = await paymentsOf(invoice.id);
    const res = await credit(invoice, { reason: 'Seat returned', amount: '33.33', refund_to: 'payment' });
    expect(res.status, res.text).toBe(201);
    const note = res.body as CreditNote;
    // 1.50 × 33.33/99.99 = 0.50; 7.25 × 33.33/99.99 = 2.4166…: 2.42.
    expect(note).toMatchObject({
      subtotal: '33.33',
      tax_total: '2.92',
      total: '36.25',
      refund_to: 'payment',
      refund_amount: '36.25',
      credit_amount: '0.00',
      refund_id: expect.any(String),
      issued_at: '2026-01-01T00:00:00.000Z',
    });
    const pending = await getRefund(note.refund_id!);
    expect(pending).toMatchObject({
      credit_note_id: note.id,
      invoice_id: invoice.id,
      payment_id: payment!.id,
      user_id: user.id,
      amount: '36.25',
      rail: 'card',
      payment_method: 'pm_card_visa',
      status: 'pending',
      submitted_at: null,
    });
    // A paid invoice stays paid: the credit shows, nothing more is due.
    expect(await getInvoice(invoice.id)).toMatchObject({
      status: 'paid',
      amount_credited: '36.25',
      amount_due: '0.00',
    });

    await work();
    const settled = await getRefund(note.refund_id!);
    expect(settled).toMatchObject({
      status: 'succeeded',
      failure_reason: null,
      submitted_at: '2026-01-01T00:00:00.000Z',
      settled_at: '2026-01-01T00:00:00.000Z',
      gateway_reference: `sim_${note.refund_id}`,
    });
    const listed = await t.api.get(`/api/v1/invoices/${invoice.id}/refunds`);
    expect((listed.body as Schemas['RefundList']).data.map((r) => r.id)).toEqual([note.refund_id]);
    const events = await eventsOf({ resource_id: note.refund_id! });
    expect(events.map((e) => e.type)).toEqual(['refund.created', 'refund.updated', 'refund.succeeded']);
    // Each names what it changed; the last is the refund as it is.
    expect(events[1]!.previous).toEqual({ submitted_at: null, settles_at: null, gateway_reference: null });
    expect(events[2]!.previous).toEqual({ status: 'pending', settled_at: null });
    expect(events[2]!.data).toEqual(settled);
    expect((await eventsOf({ type: 'refund.succeeded' })).map((e) => e.resource_id)).toContain(
      note.refund_id,
    );
    // Listed with the invoice's credit notes, with its refund.
    const notes = (await t.api.get(`/api/v1/invoices/${invoice.id}/credit-notes`))
      .body as Schemas['CreditNoteList'];
    expect(notes.data.map((n) => n.refund_id)).toEqual([note.refund_id]);
    // The money went back on the card, not to the balance.
    expect((await getUser(user.id)).balance).toBe('0.00');
  });

  it('keeps a refund on ach_standard pending until the clock passes its 2 business days', async () => {
    const { invoice, advance, work } = await paidCustomer('pm_us_bank_account', 'ach_standard');
    const note = (await credit(invoice, { reason: 'Goodwill', amount: '10.00', refund_to: 'payment' }))
      .body as CreditNote;
    expect(note).toMatchObject({ issued_at: '2026-01-06T00:00:00.000Z', total: '10.88' });
    await work();
    // Tuesday 6 January + 2 business days: Thursday 8 January.
    expect(await getRefund(note.refund_id!)).toMatchObject({
      status: 'pending',
      rail: 'ach_standard',
      submitted_at: '2026-01-06T00:00:00.000Z',
      settles_at: '2026-01-08T00:00:00.000Z',
      settled_at: null,
    });
    await advance('2026-01-07T23:00:00Z');
    expect((await getRefund(note.refund_id!)).status).toBe('pending');
    await advance('2026-01-09T00:00:00Z');
    expect(await getRefund(note.refund_id!)).toMatchObject({
      status: 'succeeded',
      settled_at: '2026-01-08T00:00:00.000Z',
    });
    const [succeeded] = await eventsOf({ resource_id: note.refund_id!, type: 'refund.succeeded' });
    expect(succeeded?.occurred_at).toBe('2026-01-08T00:00:00.000Z');
  });

  it('refunds once when two credit notes race for more than is left', async () => {
    const { invoice } = await paidCustomer();
    const [payment] = await paymentsOf(invoice.id);
    // 60.00 (65.25 with tax) each, of 99.99: under the invoice's lock one is made, the other is 422.
    const results = await Promise.all(
      ['a', 'b'].map((key) =>
        t.api
          .post(`/api/v1/invoices/${invoice.id}/credit-notes`)
          .set('Idempotency-Key', `race-${invoice.id}-${key}`)
          .send({ reason: 'Race', amount: '60.00', refund_to: 'payment' }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 422]);
    const refunds = (
      (await t.api.get(`/api/v1/invoices/${invoice.id}/refunds`)).body as Schemas['RefundList']
    ).data;
    expect(refunds.map((r) => r.amount)).toEqual(['65.25']);
    expect(parseAmount(refunds[0]!.amount) <= parseAmount(payment!.amount)).toBe(true);
  });

  it('credits the balance with a refund that fails: the money is never lost', async () => {
    const { user, invoice, work } = await paidCustomer('pm_refund_fails', 'card');
    const note = (await credit(invoice, { reason: 'Cancelled', amount: '99.99', refund_to: 'payment' }))
      .body as CreditNote;
    expect(note).toMatchObject({ total: '108.74', refund_amount: '108.74' });
    await work();
    expect(await getRefund(note.refund_id!)).toMatchObject({
      status: 'failed',
      failure_reason: 'account_closed',
      settled_at: '2026-01-01T00:00:00.000Z',
    });
    expect((await getUser(user.id)).balance).toBe('108.74');
    expect(await ledgerOf(user.id)).toEqual([
      expect.objectContaining({
        type: 'refund_failed',
        amount: '108.74',
        balance_after: '108.74',
        refund_id: note.refund_id,
        credit_note_id: note.id,
        invoice_id: invoice.id,
      }),
    ]);
    expect((await eventsOf({ type: 'refund.failed' })).map((e) => e.resource_id)).toContain(note.refund_id);
    // Everything was refunded (failed or not): nothing more can be.
    const again = await credit(invoice, { reason: 'x', amount: '1.00', refund_to: 'payment' });
    expect(expectProblem(again, 422, 'unprocessable').errors?.[0]?.field).toBe('/amount');
  });
});

describe('the customer balance', () => {
  it('is credited by a credit note and consumed by the next invoice after tax; refunds never exceed what the payment paid', async () => {
    const { user, subscription, invoice, advance } = await paidCustomer();
    const res = await credit(invoice, {
      reason: 'One seat unused',
      lines: [{ line_index: 0, amount: '33.33' }],
      refund_to: 'balance',
    });
    expect(res.status, res.text).toBe(201);
    const note = res.body as CreditNote;
    expect(note).toMatchObject({
      total: '36.25',
      refund_to: 'balance',
      credit_amount: '36.25',
      refund_id: null,
    });
    const credited = await getUser(user.id);
    expect(credited.balance).toBe('36.25');
    expect(credited.version).toBeGreaterThan(1);
    // The user's last event is the user as it is: the balance's moves are events too.
    const lastUserEvent = async () =>
      (
        (await t.api.get('/api/v1/events').query({ resource_id: user.id, limit: 100 }))
          .body as Schemas['EventList']
      ).data.at(-1)!;
    expect(await lastUserEvent()).toMatchObject({
      type: 'user.updated',
      data: credited,
      previous: { balance: '0.00' },
    });

    // February: 108.74, of which the balance pays 36.25 after tax; the card the rest.
    await advance('2026-02-01T00:00:00Z');
    const february = (await invoicesOf(t, subscription.id))[1]!;
    expect(february).toMatchObject({
      period_start: '2026-02-01',
      subtotal: '99.99',
      tax_total: '8.75',
      total: '108.74',
      amount_from_balance: '36.25',
      amount_credited: '0.00',
      status: 'paid',
    });
    const [payment] = await paymentsOf(february.id);
    expect(payment).toMatchObject({ amount: '72.49', status: 'succeeded' });
    expect((await getUser(user.id)).balance).toBe('0.00');
    expect(await lastUserEvent()).toMatchObject({
      type: 'user.updated',
      data: await getUser(user.id),
      previous: { balance: '36.25' },
    });
    const finalized = (
      (await t.api.get('/api/v1/events').query({ resource_id: february.id, limit: 100 }))
        .body as Schemas['EventList']
    ).data.find((e) => e.type === 'invoice.finalized')!;
    expect(finalized.previous).toMatchObject({ amount_from_balance: '0.00', amount_due: '108.74' });
    expect((await ledgerOf(user.id)).map((e) => [e.type, e.amount, e.balance_after, e.invoice_id])).toEqual([
      ['credit_note', '36.25', '36.25', invoice.id],
      ['invoice', '-36.25', '0.00', february.id],
    ]);

    // A refund is at most what the payment paid (72.49): the whole invoice is 422, writing nothing.
    const before = await fingerprint(ctx.db);
    const over = await credit(february, { reason: 'All of it', amount: '99.99', refund_to: 'payment' });
    expect(expectProblem(over, 422, 'unprocessable').errors).toEqual([
      {
        location: 'body',
        field: '/amount',
        message:
          'refunds 108.74 with tax, more than can be refunded (72.49: what the payment paid less earlier refunds); credit the rest to the balance',
      },
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    // 66.66 (72.49 with tax) can be refunded; the rest only goes to the balance.
    const refunded = await credit(february, { reason: 'Two seats', amount: '66.66', refund_to: 'payment' });
    expect(refunded.body).toMatchObject({ total: '72.49', refund_amount: '72.49' });
    expectProblem(
      await credit(february, { reason: 'Third seat', amount: '33.33', refund_to: 'payment' }),
      422,
      'unprocessable',
    );
    const rest = await credit(february, { reason: 'Third seat', amount: '33.33', refund_to: 'balance' });
    expect(rest.body).toMatchObject({ total: '36.25', credit_amount: '36.25' });
    expect(await getInvoice(february.id)).toMatchObject({ status: 'paid', amount_credited: '108.74' });
    expect((await getUser(user.id)).balance).toBe('36.25');
  });

  it('pays a whole invoice at once, without a payment; an open invoice gives back what it took', async () => {
    const { user, subscription, invoice, advance } = await paidCustomer();
    await credit(invoice, { reason: 'Annual discount', amount: '99.99', refund_to: 'balance' }).expect(201);
    expect((await getUser(user.id)).balance).toBe('108.74');

    await advance('2026-02-01T00:00:00Z');
    const february = (await invoicesOf(t, subscription.id))[1]!;
    expect(february).toMatchObject({
      total: '108.74',
      amount_from_balance: '108.74',
      amount_due: '0.00',
      status: 'paid',
      paid_at: '2026-02-01T00:00:00.000Z',
    });
    expect(await paymentsOf(february.id)).toEqual([]);
    expect((await eventsOf({ resource_id: february.id })).map((e) => e.type)).toEqual([
      'invoice.created',
      'invoice.finalized',
      'invoice.paid',
    ]);
    // Paid by the balance alone: nothing to refund through the gateway.
    expectProblem(
      await credit(february, { reason: 'x', amount: '10.00', refund_to: 'payment' }),
      422,
      'unprocessable',
    );
    // 10.00 (10.88 with tax) back to the balance; a one-off invoice of 20.00 (21.75) takes it.
    await credit(february, { reason: 'Outage', amount: '10.00', refund_to: 'balance' }).expect(201);
    const oneOff = async () => {
      const draft = await t.api
        .post('/api/v1/invoices')
        .send({ subscription_id: subscription.id, lines: [{ description: 'Setup', amount: '20.00' }] });
      expect(draft.status, draft.text).toBe(201);
      const open = await t.api.post(`/api/v1/invoices/${(draft.body as Invoice).id}/finalize`);
      expect(open.status, open.text).toBe(200);
      return open.body as Invoice;
    };
    const first = await oneOff();
    expect(first).toMatchObject({
      status: 'open',
      total: '21.75',
      amount_from_balance: '10.88',
      amount_due: '10.87',
    });
    // Voided: what it took goes back to the balance.
    await t.api.post(`/api/v1/invoices/${first.id}/void`).expect(200);
    expect((await getUser(user.id)).balance).toBe('10.88');
    // Credited in full while open: 10.87 lowers what is due, the 10.88 the balance paid goes back.
    const second = await oneOff();
    expect(second).toMatchObject({ amount_from_balance: '10.88', amount_due: '10.87' });
    const note = (await credit(second, { reason: 'Waived', amount: '20.00' })).body as CreditNote;
    expect(note).toMatchObject({ total: '21.75', refund_to: 'balance', credit_amount: '10.88' });
    expect(await getInvoice(second.id)).toMatchObject({ status: 'paid', amount_due: '0.00' });
    expect((await getUser(user.id)).balance).toBe('10.88');
    expect((await ledgerOf(user.id)).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['credit_note', '108.74', '108.74'],
      ['invoice', '-108.74', '0.00'],
      ['credit_note', '10.88', '10.88'],
      ['invoice', '-10.88', '0.00'],
      ['invoice_voided', '10.88', '10.88'],
      ['invoice', '-10.88', '0.00'],
      ['credit_note', '10.88', '10.88'],
    ]);
  });
});

describe('refusals', () => {
  it('refuses a credit note on a paid invoice that does not say where the money goes, and other bad input, writing nothing', async () => {
    const { invoice, subscription } = await paidCustomer();
    const editorKey = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((editorKey.body as Schemas['ApiKeyWithSecret']).key);
    const before = await fingerprint(ctx.db);
    expect(
      expectProblem(await credit(invoice, { reason: 'x', amount: '1.00' }), 422, 'unprocessable').errors,
    ).toEqual([
      {
        location: 'body',
        field: '/refund_to',
        message: 'required for a paid invoice: payment (a refund) or balance (the customer balance)',
      },
    ]);
    expectProblem(
      await credit(invoice, { reason: 'x', amount: '1.00', refund_to: 'card' }),
      400,
      'validation-error',
    );
    expectProblem(
      await credit(invoice, { reason: 'x', amount: '100.00', refund_to: 'balance' }),
      422,
      'unprocessable',
    );
    expectProblem(
      await editor
        .post(`/api/v1/invoices/${invoice.id}/credit-notes`)
        .send({ reason: 'x', amount: '1.00', refund_to: 'payment' }),
      403,
      'forbidden',
    );
    // An unpaid invoice has no payment to refund.
    const draft = await t.api
      .post('/api/v1/invoices')
      .send({ subscription_id: subscription.id, lines: [{ description: 'Extra', amount: '5.00' }] });
    const open = (await t.api.post(`/api/v1/invoices/${(draft.body as Invoice).id}/finalize`))
      .body as Invoice;
    const afterOpen = await fingerprint(ctx.db);
    expect(
      expectProblem(
        await credit(open, { reason: 'x', amount: '1.00', refund_to: 'payment' }),
        422,
        'unprocessable',
      ).errors?.[0]?.field,
    ).toBe('/refund_to');
    expect(await fingerprint(ctx.db)).toEqual(afterOpen);
    expect(before.credit_notes).toEqual(afterOpen.credit_notes);
    expect(before.refunds).toEqual(afterOpen.refunds);
    expectProblem(await t.api.get(`/api/v1/refunds/${randomUUID()}`), 404, 'not-found');
    expectProblem(await t.api.get(`/api/v1/invoices/${randomUUID()}/refunds`), 404, 'not-found');
    expectProblem(await t.api.get(`/api/v1/users/${randomUUID()}/balance-transactions`), 404, 'not-found');
  });

  it("keeps another tenant's refunds and balance out of sight", async () => {
    const { user, invoice, work } = await paidCustomer();
    const note = (await credit(invoice, { reason: 'x', amount: '1.00', refund_to: 'payment' }))
      .body as CreditNote;
    await work();
    const other = await ctx.newTenant();
    expectProblem(await other.api.get(`/api/v1/refunds/${note.refund_id}`), 404, 'not-found');
    expectProblem(await other.api.get(`/api/v1/users/${user.id}/balance-transactions`), 404, 'not-found');
    // A refund's ETag is its version.
    const res = await t.api.get(`/api/v1/refunds/${note.refund_id}`);
    expect(
      (await t.api.get(`/api/v1/refunds/${note.refund_id}`).set('If-None-Match', res.headers.etag!)).status,
    ).toBe(304);
  });
});

describe('the taxes report', () => {
  it('nets a refund of a paid invoice in the month of its credit note', async () => {
    const tenant = await ctx.newTenant();
    plans.set(tenant.id, await catalog(tenant));
    const { invoice } = await paidCustomer('pm_card_visa', 'card', tenant);
    const note = await credit(invoice, { reason: 'Refund', amount: '99.99', refund_to: 'payment' }, tenant);
    expect(note.status, note.text).toBe(201);
    const report = (await tenant.api.get('/api/v1/reports/taxes').query({ from: '2026-01', to: '2026-01' }))
      .body as Schemas['TaxReport'];
    expect(report.months[0]!.taxes).toEqual([
      {
        code: 'SALES',
        region: 'US',
        taxable_amount: '0.00',
        tax_amount: '0.00',
        invoice_count: 1,
        credit_note_count: 1,
        ending_credit_count: 0,
      },
      {
        code: 'STATE',
        region: 'US-CA',
        taxable_amount: '0.00',
        tax_amount: '0.00',
        invoice_count: 1,
        credit_note_count: 1,
        ending_credit_count: 0,
      },
    ]);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
