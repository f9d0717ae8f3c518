// Coupons and discounts: a coupon's terms and redemption rules, the discount line of the invoices
// it reduces (percent half up, amount capped at the subtotal, before tax), its end (once, after
// its months), and MRR net of recurring discounts.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { fingerprint } from '../helpers/db-state.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

type Coupon = Schemas['Coupon'];
type Subscription = Schemas['Subscription'];
type Invoice = Schemas['Invoice'];

let tag = 0;
async function plan(amount: string, interval: 'month' | 'year' = 'month') {
  const res = await t.api
    .post('/api/v1/plans')
    .send({ code: `plan-${++tag}`, name: `Plan ${tag}`, interval, price: { model: 'flat', amount } });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Plan'];
}

async function coupon(body: Record<string, unknown>) {
  const res = await t.api.post('/api/v1/coupons').send({ name: `Coupon ${++tag}`, ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as Coupon;
}

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
});

/**
 * A customer in DE (19% VAT) on `planId` from 2026-01-01, on a clock at `frozenTime`, with `extra`
 * at creation.
 */
async function subscribed(
  planId: string,
  extra: Record<string, unknown> = {},
  frozenTime = '2026-01-01T00:00:00Z',
) {
  const clock = (await t.api.post('/api/v1/test-clocks').send({ name: 'coupons', frozen_time: frozenTime }))
    .body as Schemas['TestClock'];
  const user = await createUser(t, { region: 'DE' });
  const res = await t.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'active',
    plan_id: planId,
    start_date: '2026-01-01',
    test_clock_id: clock.id,
    ...extra,
  });
  expect(res.status, res.text).toBe(201);
  const sub = res.body as Subscription;
  const work = () =>
    performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  await work();
  return {
    sub,
    async advance(to: string) {
      const advanced = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
      expect(advanced.status, advanced.text).toBe(202);
      await work();
    },
    async get() {
      return (await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body as Subscription;
    },
    async invoices() {
      const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 });
      expect(res.status, res.text).toBe(200);
      return (res.body as Schemas['InvoiceList']).data.reverse(); // oldest first
    },
  };
}

const amounts = (i: Invoice) => ({
  period_start: i.period_start,
  lines: i.lines.map((l) => [l.type, l.amount]),
  subtotal: i.subtotal,
  tax_total: i.tax_total,
  total: i.total,
});

describe('coupons', () => {
  it('keep redeem_by to the millisecond, truncated as every instant (not rounded into the next day)', async () => {
    const created = await coupon({
      percent_off: '10',
      duration: 'once',
      redeem_by: '2027-01-31T23:59:59.9999999Z',
    });
    expect(created.redeem_by).toBe('2027-01-31T23:59:59.999Z');
    expect((await t.api.get(`/api/v1/coupons/${created.id}`)).body).toEqual(created);
  });

  it('are created with final terms, listed, read and deleted (still readable, no longer valid)', async () => {
    const p = await plan('10.00');
    const created = await coupon({
      name: 'Launch',
      percent_off: '12.5',
      duration: 'repeating',
      duration_in_months: 3,
      max_redemptions: 5,
      plan_ids: [p.id.toUpperCase()], // ids in any case, as everywhere
    });
    expect(created).toMatchObject({
      name: 'Launch',
      percent_off: '12.50',
      amount_off: null,
      duration: 'repeating',
      duration_in_months: 3,
      max_redemptions: 5,
      redeem_by: null,
      plan_ids: [p.id],
      times_redeemed: 0,
      valid: true,
      deleted_at: null,
    });
    expect((await t.api.get(`/api/v1/coupons/${created.id}`)).body).toEqual(created);
    const list = (await t.api.get('/api/v1/coupons').query({ limit: 100 })).body as Schemas['CouponList'];
    expect(list.data.map((c) => c.id)).toContain(created.id);

    const deleted = await t.api.delete(`/api/v1/coupons/${created.id}`);
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.body).toMatchObject({ valid: false, deleted_at: expect.any(String) });
    const again = await t.api.delete(`/api/v1/coupons/${created.id}`);
    expect(again.body).toEqual(deleted.body);
    const events = (await t.api.get('/api/v1/events').query({ resource_id: created.id }))
      .body as Schemas['EventList'];
    expect(events.data.map((e) => e.type)).toEqual(['coupon.created', 'coupon.deleted']);
    expectProblem(await t.api.get('/api/v1/coupons/0193a6a2-7000-7000-8000-00000000dead'), 404, 'not-found');
  });

  it('keep the plans they are limited to: such a plan is not deleted while the coupon is (catalog7 #3)', async () => {
    const p = await plan('10.00');
    const other = await plan('20.00');
    const limited = await coupon({ percent_off: '10', duration: 'once', plan_ids: [other.id, p.id] });
    const refused = expectProblem(await t.api.delete(`/api/v1/plans/${p.id}`), 409, 'conflict');
    expect(refused.detail).toContain(limited.id);
    expect((await t.api.get(`/api/v1/coupons/${limited.id}`)).body).toMatchObject({
      plan_ids: [other.id, p.id],
    });
    // Deleted, the coupon holds the plan no more: the plan goes, the coupon's history keeps its id.
    expect((await t.api.delete(`/api/v1/coupons/${limited.id}`)).status).toBe(200);
    expect((await t.api.delete(`/api/v1/plans/${p.id}`)).status).toBe(204);
  });

  it('records each redemption as coupon.updated: its last event is the coupon as it is', async () => {
    const p = await plan('20.00');
    const c = await coupon({ percent_off: '10', duration: 'forever', max_redemptions: 2 });
    await subscribed(p.id, { coupon_id: c.id });
    await subscribed(p.id, { coupon_id: c.id });
    const events = (
      (await t.api.get('/api/v1/events').query({ resource_id: c.id })).body as Schemas['EventList']
    ).data;
    expect(events.map((e) => [e.type, e.previous])).toEqual([
      ['coupon.created', null],
      ['coupon.updated', { times_redeemed: 0 }],
      ['coupon.updated', { times_redeemed: 1, valid: true }],
    ]);
    expect(events.at(-1)!.data).toEqual((await t.api.get(`/api/v1/coupons/${c.id}`)).body);
  });

  it('gets back the redemption of a subscription deleted before any invoice', async () => {
    const p = await plan('20.00');
    const c = await coupon({ percent_off: '10', duration: 'forever', max_redemptions: 1 });
    // Created by mistake and deleted before the worker invoiced it: the coupon billed nothing.
    const mistake = await t.api.post('/api/v1/subscriptions').send({
      user_id: (await createUser(t)).id,
      status: 'active',
      plan_id: p.id,
      start_date: '2030-01-01',
      coupon_id: c.id,
    });
    expect(mistake.status, mistake.text).toBe(201);
    expect((await t.api.get(`/api/v1/coupons/${c.id}`)).body).toMatchObject({
      times_redeemed: 1,
      valid: false,
    });
    expect((await t.api.delete(`/api/v1/subscriptions/${(mistake.body as Subscription).id}`)).status).toBe(
      204,
    );
    expect((await t.api.get(`/api/v1/coupons/${c.id}`)).body).toMatchObject({
      times_redeemed: 0,
      valid: true,
    });
    const events = (
      (await t.api.get('/api/v1/events').query({ resource_id: c.id })).body as Schemas['EventList']
    ).data;
    expect(events.map((e) => [e.type, e.previous])).toEqual([
      ['coupon.created', null],
      ['coupon.updated', { times_redeemed: 0, valid: true }],
      ['coupon.updated', { times_redeemed: 1, valid: false }],
    ]);
    // So the coupon applies again; an invoiced subscription cannot be deleted, and keeps it.
    const kept = await subscribed(p.id, { coupon_id: c.id });
    expectProblem(await t.api.delete(`/api/v1/subscriptions/${kept.sub.id}`), 409, 'conflict');
    expect((await t.api.get(`/api/v1/coupons/${c.id}`)).body).toMatchObject({ times_redeemed: 1 });
  });

  it('refuses impossible terms with 422 naming the field, and editors with 403, writing nothing', async () => {
    const editorKey = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((editorKey.body as Schemas['ApiKeyWithSecret']).key);
    const known = await plan('1.00');
    const before = await fingerprint(ctx.db);
    const refused = async (body: Record<string, unknown>, field: string) => {
      const res = await t.api.post('/api/v1/coupons').send({ name: 'x', ...body });
      const problem = expectProblem(res, 422, 'unprocessable');
      expect(problem.errors?.map((e) => e.field)).toContain(field);
    };
    await refused({ percent_off: '10', amount_off: '5', duration: 'once' }, '/amount_off');
    await refused({ duration: 'once' }, '/percent_off');
    const both = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'x', percent_off: '10', amount_off: '5', duration: 'once' });
    expect(expectProblem(both, 422, 'unprocessable').detail).toContain(
      'amount_off cannot be sent with percent_off',
    );
    await refused({ percent_off: '0', duration: 'once' }, '/percent_off');
    await refused({ amount_off: '0.00', duration: 'forever' }, '/amount_off');
    await refused({ percent_off: '10', duration: 'repeating' }, '/duration_in_months');
    await refused({ percent_off: '10', duration: 'once', duration_in_months: 2 }, '/duration_in_months');
    await refused({ percent_off: '10', duration: 'once', redeem_by: '2020-01-01T00:00:00Z' }, '/redeem_by');
    await refused(
      { percent_off: '10', duration: 'once', plan_ids: ['0193a6a2-5000-7000-8000-00000000dead'] },
      '/plan_ids/0',
    );
    await refused(
      { percent_off: '10', duration: 'once', plan_ids: [known.id, known.id.toUpperCase()] },
      '/plan_ids/1',
    );
    expectProblem(
      await t.api.post('/api/v1/coupons').send({ name: 'x', percent_off: '100.5', duration: 'once' }),
      400,
      'validation-error',
    );
    expectProblem(
      await editor.post('/api/v1/coupons').send({ name: 'x', percent_off: '10', duration: 'once' }),
      403,
      'forbidden',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('a discount', () => {
  it('repeating: takes 25% off, before tax, of the periods starting within its months, then ends', async () => {
    const p = await plan('100.00');
    const c = await coupon({ percent_off: '25', duration: 'repeating', duration_in_months: 3 });
    const s = await subscribed(p.id, { coupon_id: c.id });
    expect(s.sub.discount).toEqual({
      coupon_id: c.id,
      name: c.name,
      percent_off: '25.00',
      amount_off: null,
      duration: 'repeating',
      duration_in_months: 3,
      plan_ids: [],
      start: '2026-01-01T00:00:00.000Z',
      end: '2026-04-01T00:00:00.000Z',
    });
    await s.advance('2026-04-15T00:00:00Z');
    const invoices = await s.invoices();
    const discounted = {
      lines: [
        ['subscription', '100.00'],
        ['discount', '-25.00'],
      ],
      subtotal: '75.00',
      tax_total: '14.25',
      total: '89.25',
    };
    expect(invoices.map(amounts)).toEqual([
      { period_start: '2026-01-01', ...discounted },
      { period_start: '2026-02-01', ...discounted },
      { period_start: '2026-03-01', ...discounted },
      {
        period_start: '2026-04-01',
        lines: [['subscription', '100.00']],
        subtotal: '100.00',
        tax_total: '19.00',
        total: '119.00',
      },
    ]);
    expect(invoices[0]!.lines[1]).toMatchObject({ coupon_id: c.id, description: `${c.name} (25% off)` });
    expect(invoices[0]!.taxes[0]).toMatchObject({ taxable_amount: '75.00', amount: '14.25' });
    expect((await s.get()).discount).toBeNull();
    expect((await t.api.get(`/api/v1/coupons/${c.id}`)).body).toMatchObject({ times_redeemed: 1 });
    const events = (await t.api.get('/api/v1/events').query({ resource_id: s.sub.id, limit: 100 }))
      .body as Schemas['EventList'];
    const ended = events.data.filter(
      (e) =>
        e.type === 'subscription.updated' &&
        e.previous &&
        'discount' in e.previous &&
        (e.data as unknown as Subscription).discount === null,
    );
    expect(ended).toHaveLength(1);
  });

  it('once: takes an amount off the first invoice only, never more than its subtotal', async () => {
    const p = await plan('8.00');
    const c = await coupon({ amount_off: '10', duration: 'once' });
    const s = await subscribed(p.id, { coupon_id: c.id });
    await s.advance('2026-02-15T00:00:00Z');
    const invoices = await s.invoices();
    expect(invoices.map(amounts)).toEqual([
      {
        period_start: '2026-01-01',
        lines: [
          ['subscription', '8.00'],
          ['discount', '-8.00'],
        ],
        subtotal: '0.00',
        tax_total: '0.00',
        total: '0.00',
      },
      {
        period_start: '2026-02-01',
        lines: [['subscription', '8.00']],
        subtotal: '8.00',
        tax_total: '1.52',
        total: '9.52',
      },
    ]);
    expect(invoices[0]!.status).toBe('paid'); // nothing to pay
    expect((await s.get()).discount).toBeNull();
  });

  it('once, used up by the invoice a change issues: the change answers the subscription without it', async () => {
    const [p30, p60] = [await plan('30.00'), await plan('60.00')];
    const c = await coupon({ percent_off: '20', duration: 'once' });
    const s = await subscribed(p30.id);
    await s.advance('2026-01-11T00:00:00Z');
    const applied = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/discount`).send({ coupon_id: c.id });
    expect(applied.status, applied.text).toBe(200);
    const changed = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .set('If-Match', applied.headers.etag!)
      .send({ plan_id: p60.id, proration_behavior: 'always_invoice' });
    expect(changed.status, changed.text).toBe(200);
    const after = await s.get();
    expect(after.discount).toBeNull();
    expect(changed.body).toEqual(after);
    expect(changed.headers.etag).toBe(`"${after.version}"`);
    const proration = (await s.invoices()).find((i) => i.kind === 'proration')!;
    expect(proration.lines.map((l) => l.type)).toContain('discount');
  });

  it("forever, a fixed amount: one per period, so a change invoiced at once takes only what the period's invoice left", async () => {
    // 3 seats at 10.00, 25.00 off; a fourth seat from January 11, a fifth from the 12th. January's
    // invoice took the 25.00: invoiced at once or with the next invoice, the changes cost the same.
    // Taken again by each change's invoice, the amount made the seats lower the month's bill.
    const seats = (
      await t.api.post('/api/v1/plans').send({
        code: `seats-${++tag}`,
        name: 'Seats',
        interval: 'month',
        price: { model: 'per_unit', amount: '10.00' },
      })
    ).body as Schemas['Plan'];
    const c = await coupon({ amount_off: '25.00', duration: 'forever' });
    const run = async (proration_behavior: 'always_invoice' | 'create_prorations') => {
      const s = await subscribed(seats.id, { coupon_id: c.id, quantity: 3 });
      for (const [day, quantity] of [
        ['2026-01-11', 4],
        ['2026-01-12', 5],
      ] as const) {
        await s.advance(`${day}T10:00:00Z`);
        const changed = await t.api
          .patch(`/api/v1/subscriptions/${s.sub.id}`)
          .send({ quantity, proration_behavior });
        expect(changed.status, changed.text).toBe(200);
      }
      await s.advance('2026-02-01T10:00:00Z');
      return s.invoices();
    };
    const atOnce = await run('always_invoice');
    const later = await run('create_prorations');
    const total = (invoices: Invoice[]) =>
      invoices.reduce((sum, i) => sum + Math.round(Number(i.subtotal) * 100), 0);
    expect(atOnce.map((i) => i.kind)).toEqual(['period', 'proration', 'proration', 'period']);
    expect(later.map((i) => i.kind)).toEqual(['period', 'period']);
    // The fourth seat: 4 × 10.00 × 21/31 = 27.10, less what January paid for 3 seats' 21 days
    // (5.00 × 21/31 = 3.39), with no discount.
    expect(atOnce[1]!.subtotal).toBe('23.71');
    for (const change of atOnce.slice(1, 3))
      expect(change.lines.some((l) => l.type === 'discount')).toBe(false);
    expect(atOnce[0]!.subtotal).toBe('5.00');
    expect(atOnce[3]!.subtotal).toBe('25.00'); // 5 seats, 25.00 off: a new period
    expect(total(atOnce)).toBe(total(later));
  });

  it("repeating: a change's charges it takes to nothing are invoiced at once (0.00), not billed whole once it ended", async () => {
    // 20% off January only; from 30.00 to 28.00 on January 11, invoiced at once.
    const [p30, p28] = [await plan('30.00'), await plan('28.00')];
    const c = await coupon({ percent_off: '20', duration: 'repeating', duration_in_months: 1 });
    const s = await subscribed(p30.id, { coupon_id: c.id });
    await s.advance('2026-01-11T10:00:00Z');
    const changed = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ plan_id: p28.id, proration_behavior: 'always_invoice' });
    expect(changed.status, changed.text).toBe(200);
    await s.advance('2026-02-01T10:00:00Z');
    const [january, change, february] = await s.invoices();
    expect(amounts(january!)).toMatchObject({ subtotal: '24.00', total: '28.56' });
    // 21 of 31 days: 28.00's charge 18.97 less 20% (3.79), against the credit of what January
    // paid for them (24.00: 16.26), applied up to zero; the 1.08 left is carried forward.
    expect([change!.kind, change!.status, change!.subtotal, change!.total]).toEqual([
      'proration',
      'paid',
      '0.00',
      '0.00',
    ]);
    expect(change!.lines.map((l) => [l.type, l.amount]).sort()).toEqual(
      [
        ['discount', '-3.79'],
        ['proration', '-15.18'],
        ['proration', '18.97'],
      ].sort(),
    );
    // February, with the coupon ended: its price less the credit carried, nothing of January's.
    expect(amounts(february!)).toMatchObject({ period_start: '2026-02-01', subtotal: '26.92' });
  });

  it('once, on a draft voided to change it: the invoice made again still takes it', async () => {
    const p = await plan('30.00');
    const c = await coupon({ percent_off: '50', duration: 'once' });
    const s = await subscribed(p.id);
    await s.advance('2026-01-11T00:00:00Z');
    const [january] = await s.invoices();
    expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`)).status).toBe(200);
    const applied = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/discount`).send({ coupon_id: c.id });
    expect(applied.status, applied.text).toBe(200);
    const invoiceAgain = async () => {
      const res = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/invoices`).send({});
      expect(res.status, res.text).toBe(201);
      return res.body as Invoice;
    };
    const draft = await invoiceAgain();
    expect(draft.lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '30.00'],
      ['discount', '-15.00'],
    ]);
    expect((await s.get()).discount).toBeNull();
    // The draft never billed anyone: voiding it gives the discount back.
    expect((await t.api.post(`/api/v1/invoices/${draft.id}/void`)).status).toBe(200);
    expect((await s.get()).discount).toMatchObject({ coupon_id: c.id, duration: 'once' });
    const again = await invoiceAgain();
    const issued = await t.api.post(`/api/v1/invoices/${again.id}/finalize`);
    expect(issued.status, issued.text).toBe(200);
    expect((issued.body as Invoice).lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '30.00'],
      ['discount', '-15.00'],
    ]);
    expect((await s.get()).discount).toBeNull();
  });

  it('repeating: counts its months from the next period to invoice, so N months are N monthly invoices', async () => {
    const p = await plan('100.00');
    const oneMonth = await coupon({ percent_off: '50', duration: 'repeating', duration_in_months: 1 });
    const subtotals = async (s: Awaited<ReturnType<typeof subscribed>>) =>
      (await s.invoices()).map((i) => [i.period_start, i.subtotal]);

    // Applied on January 31st to a subscription billed on the 30th: its next period starts on
    // February 28th, the day a month after January 31st. Counted from the day applied, the
    // discount ended as that period began, and reduced no invoice.
    const monthEnd = await subscribed(p.id, { start_date: '2026-01-30' }, '2026-01-30T00:00:00Z');
    await monthEnd.advance('2026-01-31T10:00:00Z');
    const applied = await t.api
      .post(`/api/v1/subscriptions/${monthEnd.sub.id}/discount`)
      .send({ coupon_id: oneMonth.id });
    expect(applied.status, applied.text).toBe(200);
    expect((applied.body as Subscription).discount).toMatchObject({
      start: '2026-01-31T10:00:00.000Z',
      end: '2026-03-28T00:00:00.000Z',
    });
    await monthEnd.advance('2026-04-01T00:00:00Z');
    expect(await subtotals(monthEnd)).toEqual([
      ['2026-01-30', '100.00'],
      ['2026-02-28', '50.00'],
      ['2026-03-30', '100.00'],
    ]);

    // Given with a subscription created on January 10th that began on January 1st: its first
    // invoice is January's, and the month counts from there (it discounted February's too).
    const backdated = await subscribed(p.id, { coupon_id: oneMonth.id }, '2026-01-10T10:00:00Z');
    expect(backdated.sub.discount).toMatchObject({ end: '2026-02-01T00:00:00.000Z' });
    await backdated.advance('2026-03-02T00:00:00Z');
    expect(await subtotals(backdated)).toEqual([
      ['2026-01-01', '50.00'],
      ['2026-02-01', '100.00'],
      ['2026-03-01', '100.00'],
    ]);

    // One starting on February 15th: its first invoice (the month ran out before it began).
    const future = await subscribed(
      p.id,
      { coupon_id: oneMonth.id, start_date: '2026-02-15' },
      '2026-01-10T10:00:00Z',
    );
    expect(future.sub.discount).toMatchObject({ end: '2026-03-15T00:00:00.000Z' });
    await future.advance('2026-04-16T00:00:00Z');
    expect(await subtotals(future)).toEqual([
      ['2026-02-15', '50.00'],
      ['2026-03-15', '100.00'],
      ['2026-04-15', '100.00'],
    ]);
  });

  it('repeating: applied while paused until a day, counts its months from the period it resumes in', async () => {
    const p = await plan('30.00');
    const c = await coupon({ percent_off: '10', duration: 'repeating', duration_in_months: 3 });
    const s = await subscribed(p.id);
    await s.advance('2026-01-11T10:00:00Z');
    const paused = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/pause`)
      .send({ resumes_at: '2026-04-01' });
    expect(paused.status, paused.text).toBe(200);
    await s.advance('2026-02-10T10:00:00Z');
    const applied = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/discount`).send({ coupon_id: c.id });
    expect(applied.status, applied.text).toBe(200);
    // Not from March 1st, the next renewal, which a pause invoices nothing of.
    expect((applied.body as Subscription).discount).toMatchObject({ end: '2026-07-01T00:00:00.000Z' });
    await s.advance('2026-07-02T10:00:00Z');
    // Each period's discount line (April's invoice also takes the credit of January's paused days).
    const discounts = (await s.invoices())
      .filter((i) => i.lines.some((l) => l.type === 'subscription'))
      .map((i) => [i.period_start, i.lines.find((l) => l.type === 'discount')?.amount ?? null]);
    expect(discounts).toEqual([
      ['2026-01-01', null],
      ['2026-04-01', '-3.00'],
      ['2026-05-01', '-3.00'],
      ['2026-06-01', '-3.00'],
      ['2026-07-01', null],
    ]);
  });

  it('repeating: whose months run past the calendar ends with it (9999-12-31), not with a 500', async () => {
    const p = await plan('30.00');
    const c = await coupon({ percent_off: '10', duration: 'repeating', duration_in_months: 120 });
    const user = await createUser(t);
    const res = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: p.id,
      start_date: '9990-06-30',
      coupon_id: c.id,
    });
    expect(res.status, res.text).toBe(201);
    expect((res.body as Subscription).discount).toMatchObject({ end: '9999-12-31T00:00:00.000Z' });
  });

  it('forever, applied mid-period: from the next invoice on, half up to the cent', async () => {
    const p = await plan('33.33');
    const c = await coupon({ percent_off: '15', duration: 'forever' });
    const s = await subscribed(p.id);
    await s.advance('2026-01-20T00:00:00Z');
    const applied = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/discount`).send({ coupon_id: c.id });
    expect(applied.status, applied.text).toBe(200);
    expect((applied.body as Subscription).discount).toMatchObject({
      start: '2026-01-20T00:00:00.000Z',
      end: null,
    });
    await s.advance('2026-03-15T00:00:00Z');
    // 15% of 33.33 is 4.9995: 5.00.
    expect((await s.invoices()).map((i) => [i.period_start, i.subtotal])).toEqual([
      ['2026-01-01', '33.33'],
      ['2026-02-01', '28.33'],
      ['2026-03-01', '28.33'],
    ]);
    expect((await s.get()).discount).not.toBeNull();

    const removed = await t.api.delete(`/api/v1/subscriptions/${s.sub.id}/discount`);
    expect(removed.status, removed.text).toBe(200);
    expect((removed.body as Subscription).discount).toBeNull();
    expectProblem(await t.api.delete(`/api/v1/subscriptions/${s.sub.id}/discount`), 404, 'not-found');
    await s.advance('2026-04-02T00:00:00Z');
    expect((await s.invoices()).at(-1)!.subtotal).toBe('33.33');
  });

  it('is refused for a coupon deleted, past redeem_by, used up or for other plans (422), a canceled subscription (409)', async () => {
    const p = await plan('20.00');
    const other = await plan('30.00');
    const s = await subscribed(p.id);
    const apply = (couponId: string, id = s.sub.id) =>
      t.api.post(`/api/v1/subscriptions/${id}/discount`).send({ coupon_id: couponId });
    const reason = async (couponId: string, id = s.sub.id) =>
      expectProblem(await apply(couponId, id), 422, 'unprocessable').errors![0]!.message;

    const deleted = await coupon({ percent_off: '10', duration: 'once' });
    await t.api.delete(`/api/v1/coupons/${deleted.id}`);
    expect(await reason(deleted.id)).toBe('the coupon was deleted');
    expect(await reason('0193a6a2-7000-7000-8000-00000000dead')).toBe('no such coupon');
    // redeem_by in the subscription's time: its clock's, here 2026-01-01, before it; a subscription
    // whose clock is past it meets the coupon closed, though it is open in real time.
    const redeemBy = new Date(Date.now() + 86_400_000);
    const closing = await coupon({ percent_off: '10', duration: 'once', redeem_by: redeemBy.toISOString() });
    const later = (
      await t.api.post('/api/v1/test-clocks').send({
        name: 'after redeem_by',
        frozen_time: new Date(redeemBy.getTime() + 86_400_000).toISOString(),
      })
    ).body as Schemas['TestClock'];
    const late = await t.api.post('/api/v1/subscriptions').send({
      user_id: (await createUser(t)).id,
      status: 'active',
      plan_id: p.id,
      start_date: later.frozen_time.slice(0, 10),
      test_clock_id: later.id,
    });
    expect(late.status, late.text).toBe(201);
    expect(await reason(closing.id, (late.body as Schemas['Subscription']).id)).toBe(
      `the coupon could be applied until ${redeemBy.toISOString()}`,
    );
    expect((await apply(closing.id)).status).toBe(200);
    const forOther = await coupon({ percent_off: '10', duration: 'once', plan_ids: [other.id] });
    expect(await reason(forOther.id)).toBe("the coupon is for other plans than the subscription's");
    // For its plan, named in any case when the subscription is created.
    const forOtherSub = await t.api.post('/api/v1/subscriptions').send({
      user_id: (await createUser(t)).id,
      status: 'active',
      plan_id: other.id.toUpperCase(),
      start_date: '2026-01-01',
      coupon_id: forOther.id,
    });
    expect(forOtherSub.status, forOtherSub.text).toBe(201);
    const single = await coupon({ percent_off: '10', duration: 'once', max_redemptions: 1 });
    expect((await apply(single.id)).status).toBe(200);
    const second = await subscribed(p.id);
    expect(
      expectProblem(await apply(single.id, second.sub.id), 422, 'unprocessable').errors![0]!.message,
    ).toBe('the coupon was used up: applied 1 time, its max_redemptions');
    expect((await t.api.get(`/api/v1/coupons/${single.id}`)).body).toMatchObject({
      times_redeemed: 1,
      valid: false,
    });
    // At creation too, naming coupon_id.
    const user = await createUser(t);
    const create = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: p.id,
      start_date: '2026-01-01',
      coupon_id: single.id,
    });
    expect(expectProblem(create, 422, 'unprocessable').errors![0]).toMatchObject({ field: '/coupon_id' });
    // A create refused for another reason redeems nothing: the count stays, the coupon still works.
    const spare = await coupon({ percent_off: '10', duration: 'once', max_redemptions: 1 });
    const refused = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'trialing',
      plan_id: p.id,
      start_date: '2020-01-01',
      trial_end: '2020-01-15',
      coupon_id: spare.id,
    });
    expect(expectProblem(refused, 422, 'unprocessable').errors![0]).toMatchObject({ field: '/trial_end' });
    expect((await t.api.get(`/api/v1/coupons/${spare.id}`)).body).toMatchObject({
      times_redeemed: 0,
      valid: true,
    });
    const accepted = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: p.id,
      start_date: '2026-01-01',
      coupon_id: spare.id,
    });
    expect(accepted.status, accepted.text).toBe(201);

    const canceled = await subscribed(p.id);
    expect(
      (await t.api.post(`/api/v1/subscriptions/${canceled.sub.id}/cancel`).send({ at: 'now' })).status,
    ).toBe(200);
    const ok = await coupon({ percent_off: '10', duration: 'once' });
    expectProblem(await apply(ok.id, canceled.sub.id), 409, 'conflict');
    expectProblem(
      await t.api
        .post(`/api/v1/subscriptions/${s.sub.id}/discount`)
        .set('If-Match', '"999"')
        .send({ coupon_id: ok.id }),
      412,
      'precondition-failed',
    );
  });

  it('takes max_redemptions exactly with concurrent redemptions', async () => {
    const p = await plan('5.00');
    const c = await coupon({ percent_off: '50', duration: 'forever', max_redemptions: 3 });
    const subs = await Promise.all(Array.from({ length: 6 }, () => subscribed(p.id)));
    const answers = await Promise.all(
      subs.map((s) => t.api.post(`/api/v1/subscriptions/${s.sub.id}/discount`).send({ coupon_id: c.id })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 422, 422, 422]);
    expect((await t.api.get(`/api/v1/coupons/${c.id}`)).body).toMatchObject({ times_redeemed: 3 });
  });
});

describe('MRR', () => {
  it('is net of recurring discounts while the subscription has them, not of once discounts', async () => {
    const m = await ctx.newTenant();
    const user = await createUser(m);
    const post = async (path: string, body: Record<string, unknown>) => {
      const res = await m.api.post(path).send(body);
      expect(res.status, res.text).toBeLessThan(300);
      return res.body as { id: string };
    };
    const forever = await post('/api/v1/coupons', { name: 'f', percent_off: '20', duration: 'forever' });
    const once = await post('/api/v1/coupons', { name: 'o', amount_off: '50', duration: 'once' });
    const yearly = await post('/api/v1/coupons', {
      name: 'y',
      amount_off: '120',
      duration: 'repeating',
      duration_in_months: 12,
    });
    const today = new Date().toISOString().slice(0, 10);
    const month = today.slice(0, 7);
    const sub = (cost: string, interval: string, couponId: string) =>
      post('/api/v1/subscriptions', {
        user_id: user.id,
        status: 'active',
        plan_cost: cost,
        billing_interval: interval,
        start_date: today,
        coupon_id: couponId,
      });
    const a = await sub('100.00', 'month', forever.id); // 80.00 a month
    await sub('100.00', 'month', once.id); // 100.00: a once discount is not recurring
    await sub('1200.00', 'year', yearly.id); // (1200 - 120) / 12 = 90.00
    const mrr = async () =>
      (
        (await m.api.get('/api/v1/metrics/mrr').query({ from: month, to: month }))
          .body as Schemas['MrrMetrics']
      ).months[0]!;
    expect((await mrr()).mrr).toBe('270.00');
    await m.api.delete(`/api/v1/subscriptions/${a.id}/discount`);
    const after = await mrr();
    expect(after.mrr).toBe('290.00');
  });
});
