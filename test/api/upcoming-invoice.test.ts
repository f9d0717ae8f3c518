// GET /subscriptions/{id}/upcoming-invoice: what the next renewal will issue, computed by the
// renewal itself in a transaction rolled back. So the preview must equal the invoice the renewal
// then issues, line for line, and must write nothing.
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
let metric: string;

beforeAll(async () => {
  t = await ctx.newTenant();
  metric = 'upcoming-calls';
  const made = await t.api
    .post('/api/v1/billable-metrics')
    .send({ code: metric, name: 'Calls', aggregation: 'count' });
  expect(made.status, made.text).toBe(201);
  const rate = await t.api
    .post('/api/v1/tax-rates')
    .send({ code: 'vat-up', name: 'VAT', percentage: '19', region: 'DE', effective_from: '2020-01-01' });
  expect(rate.status, rate.text).toBe(201);
});

async function plan(amount: string, usage = true) {
  const code = `up-${Math.random().toString(36).slice(2, 8)}`;
  const res = await t.api.post('/api/v1/plans').send({
    code,
    name: code,
    interval: 'month',
    price: { model: 'flat', amount },
    ...(usage ? { usage_charges: [{ metric, model: 'per_unit', amount: '0.25' }] } : {}),
  });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Plan'];
}

async function onClock(frozen: string, body: Record<string, unknown>) {
  const clock = (await t.api.post('/api/v1/test-clocks').send({ name: 'upcoming', frozen_time: frozen }))
    .body as Schemas['TestClock'];
  const user = await createUser(t, { region: 'DE' });
  const made = await t.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'active',
    test_clock_id: clock.id,
    payment_method: 'pm_card_visa',
    payment_rail: 'card',
    ...body,
  });
  expect(made.status, made.text).toBe(201);
  const sub = made.body as Schemas['Subscription'];
  const work = () =>
    performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  await work(); // the current period's renewal, as the worker makes it
  return {
    sub,
    user,
    async record(n: number, at: string) {
      for (let i = 0; i < n; i++) {
        const res = await t.api
          .post('/api/v1/usage-events')
          .send({ event_id: `${sub.id}-${at}-${i}`, user_id: user.id, metric, timestamp: at });
        expect(res.status, res.text).toBe(201);
      }
    },
    async advance(at: string) {
      const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at });
      expect(res.status, res.text).toBe(202);
      await work();
    },
    upcoming: () => t.api.get(`/api/v1/subscriptions/${sub.id}/upcoming-invoice`),
    async invoiceOf(periodStart: string) {
      const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, period: periodStart });
      return (res.body as Schemas['InvoiceList']).data.find((i) => i.period_start === periodStart);
    },
  };
}

/** The fields an upcoming invoice shares with the invoice made. */
const billed = (i: Schemas['UpcomingInvoice'] | Schemas['Invoice']) => ({
  kind: i.kind,
  period_start: i.period_start,
  period_end: i.period_end,
  invoice_date: i.invoice_date,
  region: i.region,
  lines: i.lines,
  subtotal: i.subtotal,
  taxes: i.taxes,
  tax_total: i.tax_total,
  total: i.total,
  amount_from_balance: i.amount_from_balance,
});

describe('the upcoming invoice', () => {
  it('after the current period was invoiced and issued by hand before the first renewal, is the next period (retest15 #1)', async () => {
    const p = await plan('40.00', false);
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'by hand', frozen_time: '2028-05-10T09:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const made = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: p.id,
      start_date: '2028-05-10',
      test_clock_id: clock.id,
    });
    expect(made.status, made.text).toBe(201);
    const sub = made.body as Schemas['Subscription'];
    const draft = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({});
    expect(draft.status, draft.text).toBe(201);
    expect(
      (await t.api.post(`/api/v1/invoices/${(draft.body as Schemas['Invoice']).id}/finalize`)).status,
    ).toBe(200);
    const upcoming = await t.api.get(`/api/v1/subscriptions/${sub.id}/upcoming-invoice`);
    expect(upcoming.status, upcoming.text).toBe(200);
    expect(upcoming.body as Schemas['UpcomingInvoice']).toMatchObject({
      period_start: '2028-06-10',
      subtotal: '40.00',
      issues_at: '2028-06-10T00:00:00.000Z',
    });
    // The renewal then issues exactly that, and nothing for May.
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2028-06-10T01:00:00Z' })
      .expect(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    const invoices = (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
      .body as Schemas['InvoiceList'];
    const june = invoices.data.find((i) => i.period_start === '2028-06-10')!;
    expect(invoices.data.map((i) => i.period_start).sort()).toEqual(['2028-05-10', '2028-06-10']);
    expect(billed(june)).toEqual(billed(upcoming.body as Schemas['UpcomingInvoice']));
  });

  it('of a hand draft is taxed as the renewal will issue it: with a rate superseded since the draft (retest16 #5)', async () => {
    const rate = await t.api
      .post('/api/v1/tax-rates')
      .send({ code: 'tva-lu', name: 'TVA', percentage: '10', region: 'LU', effective_from: '2020-01-01' });
    expect(rate.status, rate.text).toBe(201);
    const p = await plan('40.00', false);
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'retaxed', frozen_time: '2028-05-10T09:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'LU' });
    const sub = (
      await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: p.id,
        start_date: '2028-05-10',
        test_clock_id: clock.id,
      })
    ).body as Schemas['Subscription'];
    const draft = (await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({}))
      .body as Schemas['Invoice'];
    expect(draft.total).toBe('44.00');
    const superseded = await t.api
      .post(`/api/v1/tax-rates/${(rate.body as Schemas['TaxRate']).id}/supersede`)
      .send({ percentage: '20', effective_from: '2028-05-01' });
    expect(superseded.status, superseded.text).toBe(200);
    const upcoming = (await t.api.get(`/api/v1/subscriptions/${sub.id}/upcoming-invoice`))
      .body as Schemas['UpcomingInvoice'];
    expect([upcoming.period_start, upcoming.tax_total, upcoming.total]).toEqual([
      '2028-05-10',
      '8.00',
      '48.00',
    ]);
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2028-05-10T10:00:00Z' })
      .expect(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    const issued = (await t.api.get(`/api/v1/invoices/${draft.id}`)).body as Schemas['Invoice'];
    expect(issued.status).toBe('open');
    expect(billed(issued)).toEqual(billed(upcoming));
  });

  it('leaves a period invoiced by hand and voided before the first renewal unbilled, as the renewal would its own (retest16 #2)', async () => {
    const p = await plan('40.00', false);
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'voided', frozen_time: '2028-05-10T09:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const made = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: p.id,
      start_date: '2028-05-10',
      test_clock_id: clock.id,
    });
    const sub = made.body as Schemas['Subscription'];
    const draft = (await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({}))
      .body as Schemas['Invoice'];
    expect((await t.api.post(`/api/v1/invoices/${draft.id}/finalize`)).status).toBe(200);
    expect((await t.api.post(`/api/v1/invoices/${draft.id}/void`)).status).toBe(200);
    const upcoming = await t.api.get(`/api/v1/subscriptions/${sub.id}/upcoming-invoice`);
    expect((upcoming.body as Schemas['UpcomingInvoice']).period_start).toBe('2028-06-10');
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2028-06-10T01:00:00Z' })
      .expect(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    const invoices = (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id }))
      .body as Schemas['InvoiceList'];
    expect(invoices.data.map((i) => [i.period_start, i.status]).reverse()).toEqual([
      ['2028-05-10', 'void'],
      ['2028-06-10', 'open'],
    ]);
    // Invoiced again when asked.
    const again = await t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({ date: '2028-05-20' });
    expect(again.status, again.text).toBe(201);
  });

  it('is what the renewal then issues: price, usage so far, discount, pending items and taxes', async () => {
    const p = await plan('30.00');
    const s = await onClock('2027-01-10T12:00:00Z', { plan_id: p.id, start_date: '2027-01-01' });
    await s.record(6, '2027-01-10T12:00:00Z');
    const coupon = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'Half', percent_off: '50', duration: 'forever' });
    expect(coupon.status, coupon.text).toBe(201);
    const discounted = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/discount`)
      .send({ coupon_id: (coupon.body as Schemas['Coupon']).id });
    expect(discounted.status, discounted.text).toBe(200);
    // A price change mid-period leaves two proration items pending for the next invoice.
    const upgrade = await plan('40.00');
    const custom = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: upgrade.id });
    expect(custom.status, custom.text).toBe(200);

    const before = await fingerprint(ctx.db);
    const res = await s.upcoming();
    expect(res.status, res.text).toBe(200);
    expect(await fingerprint(ctx.db)).toEqual(before); // nothing written, not even an event
    const upcoming = res.body as Schemas['UpcomingInvoice'];
    expect(upcoming).toMatchObject({
      subscription_id: s.sub.id,
      user_id: s.user.id,
      kind: 'period',
      issues_at: '2027-02-01T00:00:00.000Z',
      period_start: '2027-02-01',
      period_end: '2027-03-01',
      region: 'DE',
    });
    // 40.00 + 6 calls at 0.25 + 40.00 × 22/31, half off (34.95: the discount reduces what is
    // charged), − 30.00 × 22/31 (credited as paid, at full price) = 13.65, 19% VAT.
    expect(upcoming.lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '40.00'],
      ['usage', '1.50'],
      ['proration', '-21.29'],
      ['proration', '28.39'],
      ['discount', '-34.95'],
    ]);
    expect(upcoming).toMatchObject({
      subtotal: '13.65',
      tax_total: '2.59',
      total: '16.24',
      amount_due: '16.24',
    });

    // More usage is in the next preview...
    await s.advance('2027-01-20T00:00:00Z');
    await s.record(2, '2027-01-20T00:00:00Z');
    const later = (await s.upcoming()).body as Schemas['UpcomingInvoice'];
    expect(later.lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '40.00'],
      ['usage', '2.00'],
      ['proration', '-21.29'],
      ['proration', '28.39'],
      ['discount', '-35.20'],
    ]);
    expect(later).toMatchObject({ subtotal: '13.90', tax_total: '2.64', total: '16.54' });
    // ...and the last preview is exactly the invoice the renewal issues.
    await s.advance('2027-02-01T00:00:00Z');
    const made = await s.invoiceOf('2027-02-01');
    expect(made).toBeDefined();
    expect(billed(made!)).toEqual(billed(later));
    expect(made!.finalized_at).toBe(later.issues_at);
  });

  it('applies the change scheduled for the renewal and the end of a trial', async () => {
    const p = await plan('30.00', false);
    const cheaper = await plan('12.00', false);
    const s = await onClock('2027-03-05T00:00:00Z', { plan_id: p.id, start_date: '2027-03-01' });
    await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/scheduled-change`)
      .send({ plan_id: cheaper.id })
      .expect(200);
    const res = await s.upcoming();
    expect((res.body as Schemas['UpcomingInvoice']).lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '12.00'],
    ]);
    expect(await t.api.get(`/api/v1/subscriptions/${s.sub.id}`)).toMatchObject({
      body: { plan_id: p.id, scheduled_change: { plan_id: cheaper.id } }, // still only scheduled
    });

    // A trial over several periods: the first invoice after it.
    const trial = await onClock('2027-03-05T00:00:00Z', {
      plan_id: p.id,
      status: 'trialing',
      start_date: '2027-03-01',
      trial_end: '2027-05-01',
    });
    const first = (await trial.upcoming()).body as Schemas['UpcomingInvoice'];
    expect(first).toMatchObject({
      issues_at: '2027-05-01T00:00:00.000Z',
      period_start: '2027-05-01',
      total: '35.70',
    });
    await trial.advance('2027-05-01T00:00:00Z');
    expect(billed((await trial.invoiceOf('2027-05-01'))!)).toEqual(billed(first));
  });

  it("is the last period's usage for a subscription that ends, then none", async () => {
    const p = await plan('30.00');
    const s = await onClock('2027-06-10T00:00:00Z', { plan_id: p.id, start_date: '2027-06-01' });
    await s.record(4, '2027-06-10T00:00:00Z');
    await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'period_end' }).expect(200);
    const closing = (await s.upcoming()).body as Schemas['UpcomingInvoice'];
    // Usage is billed in arrears: on an invoice of the period after, which is never served.
    expect(closing).toMatchObject({ issues_at: '2027-07-01T00:00:00.000Z', period_start: '2027-07-01' });
    expect(closing.lines.map((l) => [l.type, l.amount, l.period_start, l.period_end])).toEqual([
      ['usage', '1.00', '2027-06-01', '2027-07-01'],
    ]);
    await s.advance('2027-07-02T00:00:00Z');
    const made = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id }))
        .body as Schemas['InvoiceList']
    ).data.find((i) => i.lines.some((l) => l.type === 'usage'));
    expect(billed(made!)).toEqual(billed(closing));
    const none = await s.upcoming();
    expectProblem(none, 404, 'not-found');
    expect((none.body as Schemas['Problem']).detail).toMatch(/canceled and has nothing left to bill/);
  });

  it('is the last invoice of the items left pending by a cancellation now, at the cancellation', async () => {
    const [p30, p60] = [await plan('30.00', false), await plan('60.00', false)];
    const s = await onClock('2027-01-01T00:00:00Z', { plan_id: p30.id, start_date: '2027-01-01' });
    await s.advance('2027-01-11T09:00:00Z');
    await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: p60.id }).expect(200);
    await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' }).expect(200);
    const last = (await s.upcoming()).body as Schemas['UpcomingInvoice'];
    expect(last).toMatchObject({
      kind: 'proration',
      issues_at: '2027-01-11T09:00:00.000Z',
      period_start: '2027-01-11',
      period_end: '2027-01-12',
    });
    await s.advance('2027-01-12T00:00:00Z');
    const made = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id }))
        .body as Schemas['InvoiceList']
    ).data.find((i) => i.kind === 'proration');
    expect(billed(made!)).toEqual(billed(last));
    expectProblem(await s.upcoming(), 404, 'not-found');
  });

  it("counts what the customer's balance would pay", async () => {
    const p = await plan('30.00', false);
    const s = await onClock('2027-04-10T00:00:00Z', { plan_id: p.id, start_date: '2027-04-01' });
    const april = await s.invoiceOf('2027-04-01');
    expect(april?.status).toBe('paid');
    const credit = await t.api
      .post(`/api/v1/invoices/${april!.id}/credit-notes`)
      .send({ reason: 'goodwill', amount: '10.00', refund_to: 'balance' });
    expect(credit.status, credit.text).toBe(201);
    const before = await fingerprint(ctx.db);
    const upcoming = (await s.upcoming()).body as Schemas['UpcomingInvoice'];
    expect(await fingerprint(ctx.db)).toEqual(before);
    // 10.00 and its 19% VAT went to the balance; May's 35.70 takes all 11.90 of it.
    expect(upcoming).toMatchObject({ total: '35.70', amount_from_balance: '11.90', amount_due: '23.80' });
    await s.advance('2027-05-01T00:00:00Z');
    const may = await s.invoiceOf('2027-05-01');
    expect(billed(may!)).toEqual(billed(upcoming));
    expect((await t.api.get(`/api/v1/users/${s.user.id}`)).body).toMatchObject({ balance: '0.00' });
  });

  it("of a paused subscription is the usage recorded before the pause, with the pause's credit", async () => {
    const p = await plan('30.00');
    const s = await onClock('2027-01-01T00:00:00Z', { plan_id: p.id, start_date: '2027-01-01' });
    await s.advance('2027-01-11T00:00:00Z');
    await s.record(8, '2027-01-09T00:00:00Z');
    await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).send({}).expect(200);
    const res = await s.upcoming();
    expect(res.status, res.text).toBe(200);
    const upcoming = res.body as Schemas['UpcomingInvoice'];
    expect(upcoming.issues_at).toBe('2027-02-01T00:00:00.000Z');
    expect(upcoming.lines.map((l) => l.type)).toEqual(['usage', 'proration']);
    await s.advance('2027-02-02T00:00:00Z');
    expect(billed((await s.invoiceOf('2027-02-01'))!)).toEqual(billed(upcoming));
    // Nothing more until it resumes.
    expect(expectProblem(await s.upcoming(), 404, 'not-found').detail).toMatch(/paused/);
  });

  it('of a subscription paused with a resume before its renewal is the renewal after the resume (usage7 #1)', async () => {
    const p = await plan('30.00');
    const s = await onClock('2027-01-01T00:00:00Z', { plan_id: p.id, start_date: '2027-01-01' });
    await s.advance('2027-01-11T00:00:00Z');
    await s.record(5, '2027-01-09T00:00:00Z');
    const paused = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/pause`)
      .send({ resumes_at: '2027-01-21' });
    expect(paused.status, paused.text).toBe(200);
    const before = await fingerprint(ctx.db);
    const res = await s.upcoming();
    expect(res.status, res.text).toBe(200);
    expect(await fingerprint(ctx.db)).toEqual(before);
    const upcoming = res.body as Schemas['UpcomingInvoice'];
    // The resume on the 21st invoices nothing (the pause's credit, still pending, ends there);
    // February's renewal bills its price, January's usage and that credit.
    expect(upcoming).toMatchObject({ issues_at: '2027-02-01T00:00:00.000Z', period_start: '2027-02-01' });
    expect(upcoming.lines.map((l) => l.type)).toEqual(['subscription', 'usage', 'proration']);
    await s.advance('2027-02-02T00:00:00Z');
    expect(billed((await s.invoiceOf('2027-02-01'))!)).toEqual(billed(upcoming));
  });

  it('of a subscription paused with a resume that charges the rest of its period is that charge', async () => {
    const p = await plan('30.00', false);
    const s = await onClock('2027-03-01T00:00:00Z', { plan_id: p.id, start_date: '2027-03-01' });
    await s.advance('2027-03-28T00:00:00Z');
    const paused = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/pause`)
      .send({ resumes_at: '2027-04-10' });
    expect(paused.status, paused.text).toBe(200);
    // April's renewal, during the pause, bills nothing. The resume charges April 10 to May 1
    // (21.00), less the pause's credit of March 28 to April 1 (3.87), on an invoice of its own.
    const res = await s.upcoming();
    expect(res.status, res.text).toBe(200);
    const upcoming = res.body as Schemas['UpcomingInvoice'];
    expect(upcoming).toMatchObject({ issues_at: '2027-04-10T00:00:00.000Z', subtotal: '17.13' });
    await s.advance('2027-04-11T00:00:00Z');
    const made = (await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id }))
      .body as Schemas['InvoiceList'];
    const resumed = made.data.filter((i) => i.invoice_date === '2027-04-10');
    expect(resumed).toHaveLength(1);
    // The preview's charge was not made: its line names no item; the invoice's line does.
    const charge = (i: Schemas['UpcomingInvoice'] | Schemas['Invoice']) =>
      i.lines.find((line) => line.description.startsWith('Remaining time'))!;
    expect(charge(upcoming).invoice_item_id).toBeUndefined();
    const items = await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`);
    expect((items.body as Schemas['InvoiceItemList']).data.map((item) => item.id)).toContain(
      charge(resumed[0]!).invoice_item_id,
    );
    delete charge(resumed[0]!).invoice_item_id;
    expect(billed(resumed[0]!)).toEqual(billed(upcoming));
  });

  it('is 404 for a paused subscription, one that ends before its next renewal and an unknown one', async () => {
    const p = await plan('30.00', false);
    const paused = await onClock('2027-03-05T00:00:00Z', { plan_id: p.id, start_date: '2027-03-01' });
    await t.api.post(`/api/v1/subscriptions/${paused.sub.id}/pause`).send({}).expect(200);
    expect(((await paused.upcoming()).body as Schemas['Problem']).detail).toMatch(/paused/);
    const user = await createUser(t);
    const ended = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '5.00',
      start_date: '2020-01-01',
      end_date: '2020-03-01',
    });
    expect(ended.status, ended.text).toBe(201);
    const res = await t.api.get(
      `/api/v1/subscriptions/${(ended.body as Schemas['Subscription']).id}/upcoming-invoice`,
    );
    expect(expectProblem(res, 404, 'not-found').detail).toMatch(/ends \(cancel_at or end_date\) before/);
    // Canceled at the end of a period, on a plan without usage: nothing comes after it.
    const ending = await onClock('2027-03-05T00:00:00Z', { plan_id: p.id, start_date: '2027-03-01' });
    await t.api.post(`/api/v1/subscriptions/${ending.sub.id}/cancel`).send({ at: 'period_end' }).expect(200);
    expect(expectProblem(await ending.upcoming(), 404, 'not-found').detail).toMatch(/ends/);
    expectProblem(await t.api.get(`/api/v1/subscriptions/${user.id}/upcoming-invoice`), 404, 'not-found');
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
