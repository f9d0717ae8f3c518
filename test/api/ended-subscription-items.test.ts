// Invoice items pending when a subscription ends are not lost: the worker bills them on a last
// invoice, and a credit left goes to the customer's balance with the tax it bore.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
const plans: Record<string, string> = {};

beforeAll(async () => {
  t = await ctx.newTenant();
  const vat = {
    code: 'VAT',
    name: 'German VAT',
    percentage: '19',
    region: 'DE',
    effective_from: '2020-01-01',
  };
  expect((await t.api.post('/api/v1/tax-rates').send(vat)).status).toBe(201);
  for (const [code, amount] of [
    ['basic', '30.00'],
    ['pro', '60.00'],
  ] as const) {
    const res = await t.api
      .post('/api/v1/plans')
      .send({ code, name: code, interval: 'month', price: { model: 'flat', amount } });
    plans[code] = (res.body as Schemas['Plan']).id;
  }
});

/**
 * On `plan` from 2026-01-01 on a clock, in `region` (DE by default), paid by card; changed on
 * January 11 to `to` (the customer moved to `movedTo` first, if given), canceled the next day.
 */
async function changedThenCanceled(
  plan: string,
  to: string,
  cancel: Record<string, unknown>,
  {
    region = 'DE',
    movedTo,
    behavior,
    thenTo,
  }: {
    region?: string | null;
    movedTo?: string | null;
    behavior?: 'always_invoice';
    /** A second change, made with create_prorations on January 12 before the cancel. */
    thenTo?: string;
  } = {},
) {
  const clock = (
    await t.api.post('/api/v1/test-clocks').send({ name: 'ended', frozen_time: '2026-01-01T00:00:00Z' })
  ).body as Schemas['TestClock'];
  const user = await createUser(t, { region });
  const sub = (
    await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: plans[plan],
      start_date: '2026-01-01',
      test_clock_id: clock.id,
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    })
  ).body as Schemas['Subscription'];
  const advance = async (at: string) => {
    expect(
      (await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at })).status,
    ).toBe(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  };
  await advance('2026-01-11T09:00:00Z');
  if (movedTo !== undefined)
    expect((await t.api.patch(`/api/v1/users/${user.id}`).send({ region: movedTo })).status).toBe(200);
  const change = { plan_id: plans[to], ...(behavior ? { proration_behavior: behavior } : {}) };
  expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send(change)).status).toBe(200);
  await advance('2026-01-12T09:00:00Z');
  if (thenTo)
    expect(
      (await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plans[thenTo] })).status,
    ).toBe(200);
  const canceled = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send(cancel);
  expect(canceled.status, canceled.text).toBe(200);
  return { sub, user, advance };
}

const itemsOf = async (id: string) =>
  (
    (await t.api.get(`/api/v1/subscriptions/${id}/invoice-items`).query({ limit: 100 }))
      .body as Schemas['InvoiceItemList']
  ).data;

describe('items pending when a subscription ends', () => {
  it('are billed on a last invoice, issued and collected, when it is canceled', async () => {
    const { sub, advance } = await changedThenCanceled('basic', 'pro', { at: 'now' });
    await advance('2026-01-12T10:00:00Z');
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data.reverse();
    // January's, then the last: 21 of 31 days of Basic credited (20.32), of Pro charged (40.65).
    expect(invoices.map((i) => [i.kind, i.period_start, i.subtotal, i.total, i.status])).toEqual([
      ['period', '2026-01-01', '30.00', '35.70', 'paid'],
      ['proration', '2026-01-12', '20.33', '24.19', 'paid'],
    ]);
    expect((await itemsOf(sub.id)).every((item) => item.invoice_id === invoices[1]!.id)).toBe(true);
    expect(
      (await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`).query({ pending: true })).body,
    ).toEqual({
      data: [],
      next_cursor: null,
    });
  });

  it('go to the customer balance, with their tax, when they add up to a credit', async () => {
    const { sub, user, advance } = await changedThenCanceled('pro', 'basic', { at: 'now' });
    await advance('2026-01-12T10:00:00Z');
    // 21 of 31 days: Pro credited 40.65, Basic charged 20.32: 20.33 left, 24.19 with 19% VAT.
    const balance = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(balance.data.map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['subscription_ended', '24.19', '24.19'],
    ]);
    // The last invoice bills the charge against the credit (0.00, paid at once); the credit's
    // rest, carried as an item of its own, is the one the balance entry settles.
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data.reverse();
    expect(invoices.map((i) => [i.kind, i.subtotal, i.status])).toEqual([
      ['period', '60.00', 'paid'],
      ['proration', '0.00', 'paid'],
    ]);
    const items = await itemsOf(sub.id);
    expect(items.every((item) => (item.invoice_id === null) !== (item.balance_transaction_id === null))).toBe(
      true,
    );
    expect(
      items.filter((item) => item.balance_transaction_id === balance.data[0]!.id).map((item) => item.amount),
    ).toEqual(['-20.33']);
    expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '24.19' });
    // Nothing more to do: the worker finds nothing due for it again.
    await advance('2026-02-15T00:00:00Z');
    expect(
      (
        (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
          .body as Schemas['BalanceTransactionList']
      ).data,
    ).toHaveLength(1);
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('go to the balance with the tax their days bore, not the tax of the region the customer moved to', async () => {
    // January was billed with no region, so no tax; the customer is in DE (19%) since January 11.
    const { user, advance } = await changedThenCanceled(
      'pro',
      'basic',
      { at: 'now' },
      { region: null, movedTo: 'DE' },
    );
    await advance('2026-01-12T10:00:00Z');
    // Of the Pro days credited (40.65), 20.32 pays the Basic charge: 20.33 left, untaxed as paid.
    const balance = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(balance.data.map((e) => [e.type, e.amount])).toEqual([['subscription_ended', '20.33']]);
    // Paid for January: 60.00. Never more back than that, whatever the last invoice took.
    const paid = (
      (await t.api.get('/api/v1/invoices').query({ user_id: user.id })).body as Schemas['InvoiceList']
    ).data.reduce((sum, i) => sum + Math.round(Number(i.total) * 100), 0);
    expect(paid).toBe(6000);
  });

  it('share their tax among the invoices that charged their days, each at its own rates', async () => {
    // January's Basic in DE (19%); the customer leaves DE, then upgrades on January 11 with an
    // invoice at once, untaxed; back to Basic on the 12th, and canceled.
    const { sub, user, advance } = await changedThenCanceled(
      'basic',
      'pro',
      { at: 'now' },
      { movedTo: null, behavior: 'always_invoice', thenTo: 'basic' },
    );
    await advance('2026-01-12T10:00:00Z');
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data.reverse();
    expect(invoices.map((i) => [i.kind, i.subtotal, i.tax_total])).toEqual([
      ['period', '30.00', '5.70'],
      ['proration', '20.33', '0.00'],
      ['proration', '0.00', '0.00'],
    ]);
    // Pro's 20 days from the 12th (38.71) were paid by both: Basic's price by January's invoice
    // (19.35, taxed 19%), the difference by the upgrade's (19.36, untaxed). The last invoice nets
    // Basic's charge for them (19.35): back on Basic's price, which January paid. The 19.36 left is
    // the upgrade's difference, untaxed as it was paid.
    const balance = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(balance.data.map((e) => [e.type, e.amount])).toEqual([['subscription_ended', '19.36']]);
    // The taxes report nets those 3.68 against January's 5.70; voiding nothing, both stand.
    const report = (await t.api.get('/api/v1/reports/taxes').query({ from: '2026-01', to: '2026-01' }))
      .body as Schemas['TaxReport'];
    expect(report.months[0]!.taxes.find((x) => x.code === 'VAT')!.ending_credit_count).toBeGreaterThan(0);
  });

  it("give back a change's tax only on what its invoice still charges after a credit note", async () => {
    // Untaxed January (no region, Basic 30.00); in DE (19%) from the 5th; Pro (60.00) from the
    // 11th, invoiced at once (20.33 + 3.86); 10.00 of that invoice credited on the 12th; paused
    // and canceled on the 26th. Of Pro's last 6 days, the change's invoice still charges its net
    // less its share of the note, (40.65 - 10.00 - 20.32) * 6/21 = 2.95, at 19%: 0.56 of tax (not
    // the 1.10 of what it charged before the note). January's 5.81 of those days were untaxed.
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'noted', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: null });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-05T10:00:00Z');
    expect((await t.api.patch(`/api/v1/users/${user.id}`).send({ region: 'DE' })).status).toBe(200);
    await advance('2026-01-11T10:00:00Z');
    const change = { plan_id: plans.pro, proration_behavior: 'always_invoice' };
    expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send(change)).status).toBe(200);
    await advance('2026-01-12T10:00:00Z');
    const upgrade = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data.find((i) => i.kind === 'proration')!;
    expect([upgrade.subtotal, upgrade.tax_total]).toEqual(['20.33', '3.86']);
    const note = await t.api
      .post(`/api/v1/invoices/${upgrade.id}/credit-notes`)
      .send({ reason: 'goodwill', amount: '10.00' });
    expect(note.status, note.text).toBe(201);
    await advance('2026-01-26T10:00:00Z');
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({})).status).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    await advance('2026-01-26T12:00:00Z');
    const ledger = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    const ended = ledger.data.find((e) => e.type === 'subscription_ended')!;
    const credited = (await itemsOf(sub.id))
      .filter((item) => item.balance_transaction_id === ended.id)
      .reduce((sum, item) => sum - Math.round(Number(item.amount) * 100), 0);
    expect(Math.round(Number(ended.amount) * 100) - credited).toBe(56);
  });

  it("leave a paid change's invoice to credit only what its days did not give back already", async () => {
    // Basic, then Pro from the 11th invoiced at once (20.33 + 3.86, paid by card), back to Basic
    // on the 12th and canceled: the end gives back the difference for the 20 days left, what the
    // change's invoice charged for them, (40.65 - 20.32) * 20/21 = 19.36 (+ 3.68). A credit note
    // of that invoice may credit what is left of it, 0.97: the rest is in the balance already.
    const { sub, user, advance } = await changedThenCanceled(
      'basic',
      'pro',
      { at: 'now' },
      { behavior: 'always_invoice', thenTo: 'basic' },
    );
    await advance('2026-01-12T12:00:00Z');
    const upgrade = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data
      .reverse()
      .find((i) => i.kind === 'proration')!;
    expect([upgrade.status, upgrade.subtotal, upgrade.total]).toEqual(['paid', '20.33', '24.19']);
    const ledger = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(ledger.data.map((e) => [e.type, e.amount])).toEqual([['subscription_ended', '23.04']]);
    const whole = await t.api
      .post(`/api/v1/invoices/${upgrade.id}/credit-notes`)
      .send({ reason: 'all of it', amount: '20.33', refund_to: 'payment' });
    expect(expectProblem(whole, 422, 'unprocessable').detail).toContain(
      'more than is left to credit of the invoice (0.97 before tax',
    );
    const rest = await t.api
      .post(`/api/v1/invoices/${upgrade.id}/credit-notes`)
      .send({ reason: 'the rest', amount: '0.97', refund_to: 'payment' });
    expect(rest.status, rest.text).toBe(201);
    expect((rest.body as Schemas['CreditNote']).total).toBe('1.15');
  });

  it('are billed on the last invoice when it ends by its end_date, at the renewal that finds it ended', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'end date', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        end_date: '2026-01-31',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-11T09:00:00Z');
    await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plans.pro }).expect(200);
    await advance('2026-02-02T00:00:00Z');
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data.reverse();
    expect(invoices.map((i) => [i.kind, i.period_start, i.subtotal, i.status])).toEqual([
      ['period', '2026-01-01', '30.00', 'open'],
      ['proration', '2026-02-01', '20.33', 'open'],
    ]);
    expect((await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({ billed_until: null });
  });

  it('take a percentage discount on their last invoice, never a fixed amount a second time', async () => {
    const lastInvoice = async (coupon: Record<string, unknown>) => {
      const made = await t.api
        .post('/api/v1/coupons')
        .send({ name: `c-${Math.random()}`, duration: 'forever', ...coupon });
      expect(made.status, made.text).toBe(201);
      const clock = (
        await t.api.post('/api/v1/test-clocks').send({ name: 'last', frozen_time: '2026-01-01T00:00:00Z' })
      ).body as Schemas['TestClock'];
      const user = await createUser(t, { region: 'DE' });
      const sub = (
        await t.api.post('/api/v1/subscriptions').send({
          user_id: user.id,
          status: 'active',
          plan_id: plans.basic,
          start_date: '2026-01-01',
          test_clock_id: clock.id,
          coupon_id: (made.body as Schemas['Coupon']).id,
        })
      ).body as Schemas['Subscription'];
      const advance = async (at: string) => {
        await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
        await performDueWork(
          { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
          { tenantId: t.id, clockId: clock.id },
        );
      };
      await advance('2026-01-11T09:00:00Z');
      expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plans.pro })).status).toBe(
        200,
      );
      await advance('2026-01-12T09:00:00Z');
      expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(
        200,
      );
      await advance('2026-01-12T10:00:00Z');
      const invoices = (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
          .body as Schemas['InvoiceList']
      ).data.reverse();
      expect(invoices.map((i) => i.kind)).toEqual(['period', 'proration']);
      return invoices[1]!;
    };
    // 5.00 off: January paid 25.00, 21 of 31 days of it back (16.94), Pro's 21 days charged (40.65).
    const fixed = await lastInvoice({ amount_off: '5.00' });
    expect(fixed.lines.map((l) => [l.type, l.amount])).toEqual([
      ['proration', '-16.94'],
      ['proration', '40.65'],
    ]);
    expect(fixed.subtotal).toBe('23.71');
    // 10% off: January paid 27.00 (18.29 back); Pro's charge takes its 10% (4.07).
    const percent = await lastInvoice({ percent_off: '10' });
    expect(percent.lines.map((l) => [l.type, l.amount])).toEqual([
      ['proration', '-18.29'],
      ['proration', '40.65'],
      ['discount', '-4.07'],
    ]);
    expect(percent.subtotal).toBe('18.29');
  });

  it('pay what the subscription still owes first: a credit for days never paid is not money to spend', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'owed', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.pro,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
        payment_method: 'pm_card_declined',
        payment_rail: 'card',
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-02T09:00:00Z');
    const invoicesOf = async () =>
      (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
          .body as Schemas['InvoiceList']
      ).data.reverse();
    const [january] = await invoicesOf();
    expect(january).toMatchObject({ total: '71.40', status: 'open', amount_due: '71.40' }); // its card failed
    expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plans.basic })).status).toBe(
      200,
    );
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    await advance('2026-01-02T10:00:00Z');
    // 30 of 31 days: Pro credited 58.06, Basic charged 29.03: 29.03 left, 34.55 with VAT, which
    // January's unpaid invoice takes: the customer owes 71.40 − 34.55, and has no balance to spend.
    const balance = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(balance.data.map((e) => [e.type, e.amount, e.balance_after]).reverse()).toEqual([
      ['subscription_ended', '34.55', '34.55'],
      ['invoice', '-34.55', '0.00'],
    ]);
    expect((await invoicesOf())[0]).toMatchObject({
      id: january!.id,
      status: 'open',
      amount_from_balance: '34.55',
      amount_due: '36.85',
    });
    const events = (
      (await t.api.get('/api/v1/events').query({ resource_id: january!.id })).body as Schemas['EventList']
    ).data;
    expect(events.at(-1)).toMatchObject({
      type: 'invoice.updated',
      previous: { amount_from_balance: '0.00', amount_due: '71.40' },
    });
    // Forgiving January forgives the days the credit was for: nothing comes back to spend.
    const voided = await t.api.post(`/api/v1/invoices/${january!.id}/void`).send();
    expect(voided.status, voided.text).toBe(200);
    expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '0.00' });
    const after = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(after.data).toHaveLength(2);
  });

  it('pay what a credit note then forgives: the rest is credited, never the credit for its own days', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'forgiven', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.pro,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
        payment_method: 'pm_card_declined',
        payment_rail: 'card',
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-02T09:00:00Z');
    const [january] = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data;
    expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plans.basic })).status).toBe(
      200,
    );
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    await advance('2026-01-02T10:00:00Z');
    expect((await t.api.get(`/api/v1/invoices/${january!.id}`)).body).toMatchObject({
      status: 'open',
      amount_from_balance: '34.55',
      amount_due: '36.85',
    });
    // The whole of it credited (60.00 and its VAT): what is due is forgiven, and what the balance
    // paid of it was the credit for its own days, which goes nowhere.
    const note = await t.api
      .post(`/api/v1/invoices/${january!.id}/credit-notes`)
      .send({ reason: 'forgiven', amount: '60.00' });
    expect(note.status, note.text).toBe(201);
    expect(note.body).toMatchObject({ total: '71.40', refund_to: null });
    expect((await t.api.get(`/api/v1/invoices/${january!.id}`)).body).toMatchObject({
      status: 'paid',
      amount_due: '0.00',
    });
    expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '0.00' });
  });

  it("give back nothing when the change's invoice they paid is voided: its days are forgiven", async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'change', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    // No payment method: every invoice stays open.
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-02T00:00:00Z');
    const invoicesOf = async () =>
      (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
          .body as Schemas['InvoiceList']
      ).data.reverse();
    // January forgiven whole; then Pro from the 11th, invoiced at once (21 of 31 days: 40.65).
    const [january] = await invoicesOf();
    const note = await t.api
      .post(`/api/v1/invoices/${january!.id}/credit-notes`)
      .send({ reason: 'forgiven', amount: '30.00' });
    expect(note.status, note.text).toBe(201);
    await advance('2026-01-11T10:00:00Z');
    const change = { plan_id: plans.pro, proration_behavior: 'always_invoice' };
    expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send(change)).status).toBe(200);
    // Paused and canceled on the 26th: Pro's last 6 days (11.61 + 19%) pay the change's invoice.
    await advance('2026-01-26T10:00:00Z');
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({})).status).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    await advance('2026-01-26T12:00:00Z');
    const upgrade = (await invoicesOf()).find((i) => i.kind === 'proration')!;
    expect([upgrade.total, upgrade.amount_from_balance]).toEqual(['48.37', '13.82']);
    // Voided, it gives back nothing: those 13.82 were the credit for its own days, never paid.
    const voided = await t.api.post(`/api/v1/invoices/${upgrade.id}/void`);
    expect(voided.status, voided.text).toBe(200);
    const ledger = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
      .body as Schemas['BalanceTransactionList'];
    expect(ledger.data.map((e) => [e.type, e.amount]).reverse()).toEqual([
      ['subscription_ended', '13.82'],
      ['invoice', '-13.82'],
    ]);
    expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '0.00' });
  });

  it("give back, when the period's invoice is voided or credited after the end, the share of a change's invoice's days", async () => {
    // Basic (30.00) from Jan 1, January open (no payment method); Pro (60.00) from the 11th,
    // invoiced at once; paused and canceled on the 26th. The end credits Pro's last 6 days, 11.61:
    // latest first, 5.81 (+19%: 6.91) that the change's invoice charged and 5.80 (+19%: 6.90) that
    // January did; the 13.81 pay January. Forgiving January forgives its own share only: the
    // change's is still the customer's, as the change's invoice stays due in full.
    // January's taxes report, in cents: what the tenant keeps of this customer is the change's
    // invoice less the share given back (17.28 = 14.52 + 2.76 of VAT), January counted in neither.
    const january2026 = async () => {
      const report = (await t.api.get('/api/v1/reports/taxes').query({ from: '2026-01', to: '2026-01' }))
        .body as Schemas['TaxReport'];
      const cents = (field: 'taxable_amount' | 'tax_amount') =>
        (report.months[0]?.taxes ?? []).reduce((sum, x) => sum + Math.round(Number(x[field]) * 100), 0);
      return [cents('taxable_amount'), cents('tax_amount')];
    };
    for (const forgive of ['void', 'credit note'] as const) {
      const [taxableBefore, taxBefore] = await january2026();
      const clock = (
        await t.api.post('/api/v1/test-clocks').send({ name: 'shares', frozen_time: '2026-01-01T00:00:00Z' })
      ).body as Schemas['TestClock'];
      const user = await createUser(t, { region: 'DE' });
      const sub = (
        await t.api.post('/api/v1/subscriptions').send({
          user_id: user.id,
          status: 'active',
          plan_id: plans.basic,
          start_date: '2026-01-01',
          test_clock_id: clock.id,
        })
      ).body as Schemas['Subscription'];
      const advance = async (at: string) => {
        await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
        await performDueWork(
          { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
          { tenantId: t.id, clockId: clock.id },
        );
      };
      const invoicesOf = async () =>
        (
          (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
            .body as Schemas['InvoiceList']
        ).data.reverse();
      await advance('2026-01-11T10:00:00Z');
      const change = { plan_id: plans.pro, proration_behavior: 'always_invoice' };
      expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send(change)).status).toBe(200);
      await advance('2026-01-26T10:00:00Z');
      expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({})).status).toBe(200);
      expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(
        200,
      );
      await advance('2026-01-26T12:00:00Z');
      const [january, upgrade] = await invoicesOf();
      expect([january!.kind, january!.total, january!.amount_from_balance]).toEqual([
        'period',
        '35.70',
        '13.81',
      ]);
      expect([upgrade!.kind, upgrade!.total, upgrade!.amount_from_balance]).toEqual([
        'proration',
        '24.19',
        '0.00',
      ]);
      if (forgive === 'void') {
        const voided = await t.api.post(`/api/v1/invoices/${january!.id}/void`);
        expect(voided.status, voided.text).toBe(200);
      } else {
        const note = await t.api
          .post(`/api/v1/invoices/${january!.id}/credit-notes`)
          .send({ reason: 'forgiven', amount: '30.00' });
        expect(note.status, note.text).toBe(201);
        expect((note.body as Schemas['CreditNote']).credit_amount).toBe('6.91');
      }
      const ledger = (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
        .body as Schemas['BalanceTransactionList'];
      expect(ledger.data.map((e) => [e.type, e.amount]).reverse()).toEqual([
        ['subscription_ended', '13.81'],
        ['invoice', '-13.81'],
        [forgive === 'void' ? 'invoice_voided' : 'credit_note', '6.91'],
      ]);
      expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '6.91' });
      const [taxable, tax] = await january2026();
      expect([taxable! - taxableBefore!, tax! - taxBefore!]).toEqual([1452, 276]);
    }
  });

  it('give back, when their invoice is voided, only what the balance paid beyond the credit for its days', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'own', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const create = (plan: string, payment_method: string) =>
      t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans[plan],
        start_date: '2026-01-01',
        test_clock_id: clock.id,
        payment_method,
        payment_rail: 'card',
      });
    // A Basic subscription paid, then refunded to the balance in full: 35.70 of the customer's own.
    const paidOne = (await create('basic', 'pm_card_visa')).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-01T09:00:00Z');
    const [paidInvoice] = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: paidOne.id }))
        .body as Schemas['InvoiceList']
    ).data;
    expect(paidInvoice).toMatchObject({ status: 'paid', total: '35.70' });
    const note = await t.api
      .post(`/api/v1/invoices/${paidInvoice!.id}/credit-notes`)
      .send({ reason: 'refund', amount: '30.00', refund_to: 'balance' });
    expect(note.status, note.text).toBe(201);
    expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '35.70' });
    // A Pro subscription whose card fails: its January (71.40) takes the 35.70 and owes the rest.
    const sub = (await create('pro', 'pm_card_declined')).body as Schemas['Subscription'];
    await advance('2026-01-02T09:00:00Z');
    const [january] = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data;
    expect(january).toMatchObject({ total: '71.40', amount_from_balance: '35.70', amount_due: '35.70' });
    // Moved to Basic and canceled: the 34.55 left of the credit (as above) pays what is due.
    expect((await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plans.basic })).status).toBe(
      200,
    );
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    await advance('2026-01-02T10:00:00Z');
    const balanceOf = async () =>
      ((await t.api.get(`/api/v1/users/${user.id}`)).body as Schemas['User']).balance;
    expect(await balanceOf()).toBe('0.00');
    const owed = (await t.api.get(`/api/v1/invoices/${january!.id}`)).body as Schemas['Invoice'];
    expect(owed).toMatchObject({ status: 'open', amount_from_balance: '70.25', amount_due: '1.15' });
    // January forgiven: its days are, and the credit for them; the customer's own 35.70 comes back.
    expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`).send()).status).toBe(200);
    expect(await balanceOf()).toBe('35.70');
    const entries = (
      (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
        .body as Schemas['BalanceTransactionList']
    ).data;
    expect(entries[0]).toMatchObject({ type: 'invoice_voided', amount: '35.70', balance_after: '35.70' });
  });
});

describe('a subscription past its end_date', () => {
  it('takes no pending charge and no pause (409, nothing written): no invoice would bill them', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'past end', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        end_date: '2026-02-15',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    const charge = () =>
      t.api
        .post(`/api/v1/subscriptions/${sub.id}/invoice-items`)
        .send({ description: 'Setup', amount: '5.00' });
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    // On its last day a charge is still taken: the last invoice bills it.
    await advance('2026-02-15T12:00:00Z');
    expect((await charge()).status).toBe(201);
    await advance('2026-03-10T00:00:00Z');
    const before = (await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body as Schemas['Subscription'];
    const refused = expectProblem(await charge(), 409, 'conflict');
    expect(refused.detail).toContain('ended on 2026-02-15');
    expectProblem(await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({}), 409, 'conflict');
    const items = (
      (await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`)).body as Schemas['InvoiceItemList']
    ).data;
    expect(items.map((i) => [i.amount, i.invoice_id !== null])).toEqual([['5.00', true]]);
    expect((await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({
      version: before.version,
      status: 'active',
    });
  });
});

describe('an end_date moved later once billing ended', () => {
  it.each([['2026-05-31'], [null]])(
    'bills again from the first period not billed (end_date %s), one invoice per period',
    async (endDate) => {
      const clock = (
        await t.api
          .post('/api/v1/test-clocks')
          .send({ name: 'extended', frozen_time: '2026-01-01T00:00:00Z' })
      ).body as Schemas['TestClock'];
      const user = await createUser(t, { region: 'DE' });
      const sub = (
        await t.api.post('/api/v1/subscriptions').send({
          user_id: user.id,
          status: 'active',
          plan_id: plans.basic,
          start_date: '2026-01-01',
          end_date: '2026-02-15',
          test_clock_id: clock.id,
        })
      ).body as Schemas['Subscription'];
      const advance = async (at: string) => {
        await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
        await performDueWork(
          { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
          { tenantId: t.id, clockId: clock.id },
        );
      };
      await advance('2026-03-05T00:00:00Z');
      expect((await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({ billed_until: null });
      // Served on from 1 March: billed from then on, as if it had never ended.
      const extended = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ end_date: endDate });
      expect(extended.status, extended.text).toBe(200);
      expect(extended.body).toMatchObject({ billed_until: '2026-03-01' });
      await advance('2026-07-02T00:00:00Z');
      const invoices = (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
          .body as Schemas['InvoiceList']
      ).data.reverse();
      const months = ['2026-01-01', '2026-02-01', '2026-03-01', '2026-04-01', '2026-05-01'];
      expect(invoices.map((i) => [i.period_start, i.subtotal])).toEqual(
        (endDate === null ? [...months, '2026-06-01', '2026-07-01'] : months).map((m) => [m, '30.00']),
      );
    },
  );
});

describe('an end_date before a period already invoiced', () => {
  it('is refused (422): that period was billed whole, and would be served by no day', async () => {
    const clock = (
      await t.api
        .post('/api/v1/test-clocks')
        .send({ name: 'end before', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2026-02-10T10:00:00Z' })
      .expect(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    const early = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ end_date: '2026-01-20' });
    expect(early.status, early.text).toBe(422);
    expect(early.body).toMatchObject({ errors: [expect.objectContaining({ field: '/end_date' })] });
    expect((early.body as { errors: Array<{ message: string }> }).errors[0]!.message).toContain('2026-02-01');
    // On or after the invoiced period's first day: taken.
    const ok = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ end_date: '2026-02-01' });
    expect(ok.status, ok.text).toBe(200);
  });

  it('is refused once billing has ended at the end_date too', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'ended', frozen_time: '2027-01-05T09:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2027-01-05',
        end_date: '2027-04-04',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2027-04-20T12:00:00Z' })
      .expect(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    expect((await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({ billed_until: null });
    const back = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ end_date: '2027-01-20' });
    expect(back.status, back.text).toBe(422);
    expect((back.body as { errors: Array<{ message: string }> }).errors[0]!.message).toContain('2027-03-05');
    const ok = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ end_date: '2027-03-05' });
    expect(ok.status, ok.text).toBe(200);
  });
});

describe('an end_date moved later once billing ended while paused or trialing', () => {
  async function onClock(body: Record<string, unknown>) {
    const clock = (
      await t.api
        .post('/api/v1/test-clocks')
        .send({ name: 'ended paused', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const res = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      plan_id: plans.basic,
      start_date: '2026-01-01',
      test_clock_id: clock.id,
      ...body,
    });
    expect(res.status, res.text).toBe(201);
    const sub = res.body as Schemas['Subscription'];
    const advance = async (at: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    const periods = async () =>
      (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
          .body as Schemas['InvoiceList']
      ).data
        .filter((i) => i.kind === 'period')
        .map((i) => i.period_start)
        .sort();
    return { sub, advance, periods };
  }

  it('paused through its end: billed again once resumed', async () => {
    const s = await onClock({ status: 'active', end_date: '2026-02-20' });
    await s.advance('2026-01-10T10:00:00Z');
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).send({})).status).toBe(200);
    await s.advance('2026-04-10T10:00:00Z');
    const extended = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-06-30' });
    expect(extended.status, extended.text).toBe(200);
    expect(extended.body).toMatchObject({ billed_until: '2026-03-01' });
    await s.advance('2026-04-20T10:00:00Z');
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/resume`).send({})).status).toBe(200);
    await s.advance('2026-07-05T10:00:00Z');
    expect(await s.periods()).toEqual(['2026-01-01', '2026-05-01', '2026-06-01']);
  });

  it('trialing through its end: the trial ends and its periods are billed', async () => {
    const s = await onClock({ status: 'trialing', trial_end: '2026-03-01', end_date: '2026-02-10' });
    await s.advance('2026-04-10T10:00:00Z');
    const cleared = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: null });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body).toMatchObject({ billed_until: '2026-03-01' });
    await s.advance('2026-05-02T10:00:00Z');
    expect((await t.api.get(`/api/v1/subscriptions/${s.sub.id}`)).body).toMatchObject({ status: 'active' });
    expect(await s.periods()).toEqual(['2026-03-01', '2026-04-01', '2026-05-01']);
  });
});

describe('a payment in flight when the subscription ends', () => {
  it('fails afterwards: its invoice takes the credit the end left in the balance', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'in flight', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
        payment_method: 'pm_card_visa',
        payment_rail: 'card',
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      expect(
        (await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at })).status,
      ).toBe(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2026-01-11T09:00:00Z'); // January paid: 30.00 + 5.70 VAT
    const call = async (method: 'patch' | 'post', path: string, body: Record<string, unknown>) => {
      const res = await t.api[method](`/api/v1/subscriptions/${sub.id}${path}`).send(body);
      expect(res.status, res.text).toBe(200);
    };
    await call('patch', '', { payment_method: 'pm_card_declined' });
    // Pro from Jan 11 (21 of 31 days), invoiced at once: 40.65 - 20.32 = 20.33 + 3.86 VAT, its
    // payment pending. A pause credits Pro's days (-40.65), and the cancellation: the worker
    // moves that credit with its VAT (48.37) to the balance while the payment is in flight.
    await call('patch', '', { plan_id: plans.pro, proration_behavior: 'always_invoice' });
    await call('post', '/pause', {});
    await call('post', '/cancel', { at: 'now' });
    await advance('2026-01-11T10:00:00Z');
    await advance('2026-01-12T10:00:00Z');
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id })).body as Schemas['InvoiceList']
    ).data;
    const proration = invoices.find((i) => i.kind === 'proration')!;
    const payments = (
      (await t.api.get(`/api/v1/invoices/${proration.id}/payments`)).body as Schemas['PaymentList']
    ).data;
    expect(payments.map((p) => p.status)).toEqual(['failed']);
    // The failed invoice took its 24.19 from the 48.37: what is left is what was paid and unused.
    expect(proration).toMatchObject({ status: 'paid', total: '24.19', amount_from_balance: '24.19' });
    expect(((await t.api.get(`/api/v1/users/${user.id}`)).body as Schemas['User']).balance).toBe('24.18');
  });
});

describe('changes undone and a coupon before the end', () => {
  it('leave no more to the balance than what was paid for the days left', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'undone', frozen_time: '2026-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: plans.basic,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
        payment_method: 'pm_card_visa',
        payment_rail: 'card',
      })
    ).body as Schemas['Subscription'];
    const advance = async (at: string) => {
      expect(
        (await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at })).status,
      ).toBe(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    // January paid (30.00 + VAT); on Jan 11, Basic → Pro → Basic three times: each charge still
    // pending when the next change came was never paid, so it is undone, not credited.
    await advance('2026-01-11T09:00:00Z');
    for (let i = 0; i < 3; i++)
      for (const plan of [plans.pro, plans.basic]) {
        const res = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: plan });
        expect(res.status, res.text).toBe(200);
      }
    const pending = (
      (await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`).query({ pending: true }))
        .body as Schemas['InvoiceItemList']
    ).data;
    // Each round trip leaves nothing: Pro's charge undone the day it was made, and Basic's credit
    // (21 of 31 days, paid) ended on its first day when Basic came back.
    expect(pending).toEqual([]);
    const dropped = (
      (await t.api.get('/api/v1/events').query({ type: 'invoice_item.deleted', limit: 100 }))
        .body as Schemas['EventList']
    ).data.filter((e) => (e.data as { subscription_id?: string }).subscription_id === sub.id);
    expect(dropped.map((e) => (e.data as unknown as { amount: string }).amount).sort()).toEqual([
      '-20.32',
      '-20.32',
      '-20.32',
      '40.65',
      '40.65',
      '40.65',
    ]);
    // A 100% coupon for the next invoice, then canceled now: nothing is pending, so nothing is
    // billed and nothing goes to the balance, as without the round trips.
    const coupon = (
      await t.api.post('/api/v1/coupons').send({ name: 'all off', percent_off: '100', duration: 'once' })
    ).body as Schemas['Coupon'];
    expect(
      (await t.api.post(`/api/v1/subscriptions/${sub.id}/discount`).send({ coupon_id: coupon.id })).status,
    ).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    await advance('2026-01-11T10:00:00Z');
    expect((await t.api.get(`/api/v1/users/${user.id}`)).body).toMatchObject({ balance: '0.00' });
  });
});

describe('the taxes report', () => {
  it('nets the tax that ending credits gave back to the balance, as it nets credit notes', async () => {
    // One more ending credit of its own (DE, 19%), then every month this file's tenant invoiced in.
    const { user, advance } = await changedThenCanceled('pro', 'basic', { at: 'now' });
    await advance('2026-01-12T10:00:00Z');
    const [entry] = (
      (await t.api.get(`/api/v1/users/${user.id}/balance-transactions`))
        .body as Schemas['BalanceTransactionList']
    ).data;
    expect([entry!.type, entry!.amount]).toEqual(['subscription_ended', '24.19']);
    // Each ending credit's tax lines add up to its tax, found independently: its amount less the
    // credits it settled (items name their entry).
    const { rows: entries } = await sql<{ tax: string; lines: string }>`
      select (b.amount + (select sum(i.amount) from invoice_items i
                          where i.tenant_id = b.tenant_id and i.balance_transaction_id = b.id))::text as tax,
        coalesce((select sum((t->>'amount')::numeric) from jsonb_array_elements(b.taxes) t), 0)::text as lines
      from customer_balance_transactions b
      where b.tenant_id = ${t.id} and b.type = 'subscription_ended'`.execute(ctx.db);
    expect(entries.length).toBeGreaterThan(3);
    for (const entry of entries) expect(Number(entry.lines)).toBe(Number(entry.tax));
    // Each invoice's share of an ending credit is its lines of that invoice, with their tax; the
    // shares add up to the credit (every day credited here was billed by an issued invoice).
    const { rows: shares } = await sql<{
      entry: string;
      amount: string;
      share: string;
      lines: string | null;
    }>`
      select b.id as entry, b.amount::text, s->>'amount' as share,
        (select (max((t->>'taxable_amount')::numeric) + sum((t->>'amount')::numeric))::text
         from jsonb_array_elements(b.taxes) t where t->>'invoice_id' = s->>'invoice_id') as lines
      from customer_balance_transactions b, jsonb_array_elements(b.invoice_shares) s
      where b.tenant_id = ${t.id} and b.type = 'subscription_ended'`.execute(ctx.db);
    expect(shares.length).toBeGreaterThan(3);
    for (const share of shares) if (share.lines !== null) expect(share.share).toBe(share.lines);
    const sharesOf = new Map<string, number>();
    for (const share of shares)
      sharesOf.set(share.entry, (sharesOf.get(share.entry) ?? 0) + Math.round(Number(share.share) * 100));
    for (const share of shares)
      expect(sharesOf.get(share.entry)).toBe(Math.round(Number(share.amount) * 100));
    // The report: the invoices' taxes less the credit notes' and the ending credits' lines, each
    // line while the invoice that charged it stands (voided or credited in full, both leave the
    // report).
    const { rows } = await sql<{ month: string; tax: string; ending: number }>`
      select month, sum(tax)::text as tax, count(distinct ending) filter (where ending is not null)::int as ending
      from (
        select to_char(invoice_date, 'YYYY-MM') as month, tax_total as tax, null::uuid as ending from invoices
        where tenant_id = ${t.id} and status in ('open', 'paid', 'uncollectible')
        union all
        select to_char(issued_at at time zone 'UTC', 'YYYY-MM'), -tax_total, null
        from credit_notes where tenant_id = ${t.id}
        union all
        select to_char(b.created_at at time zone 'UTC', 'YYYY-MM'), -(t->>'amount')::numeric, b.id
        from customer_balance_transactions b, jsonb_array_elements(b.taxes) t, invoices v
        where b.tenant_id = ${t.id} and b.type = 'subscription_ended'
          and v.tenant_id = b.tenant_id and v.id = (t->>'invoice_id')::uuid and v.status <> 'void'
          and v.amount_credited < v.total
      ) x group by month order by month`.execute(ctx.db);
    expect(rows.some((row) => row.ending > 0)).toBe(true);
    const report = (
      await t.api.get('/api/v1/reports/taxes').query({ from: rows[0]!.month, to: rows.at(-1)!.month })
    ).body as Schemas['TaxReport'];
    const reported = report.months.map((m) => [
      m.month,
      m.taxes.reduce((sum, x) => sum + Math.round(Number(x.tax_amount) * 100), 0),
      m.taxes.reduce((sum, x) => sum + x.ending_credit_count, 0),
    ]);
    for (const row of rows)
      expect(reported.find(([month]) => month === row.month)).toEqual([
        row.month,
        Math.round(Number(row.tax) * 100),
        row.ending,
      ]);
    // This one's 3.86 (24.19 for 20.33 of days) is among them, in January's VAT of DE.
    const january = report.months.find((m) => m.month === '2026-01')!.taxes;
    expect(january.find((x) => x.code === 'VAT' && x.region === 'DE')!.ending_credit_count).toBeGreaterThan(
      0,
    );
  });
});
