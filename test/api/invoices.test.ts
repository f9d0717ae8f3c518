// Tax rates with history, invoices priced and taxed once and never changed after issue, gapless
// numbers under concurrency, and the tax report.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { withTenant } from '../../src/database/connection.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let plan: Schemas['Plan'];

async function subscribe(region: string | null, start = '2026-01-31', quantity = 3) {
  const user = await createUser(t, { region });
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', start_date: start, plan_id: plan.id, quantity });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

async function invoice(subscriptionId: string, date?: string) {
  const res = await t.api.post(`/api/v1/subscriptions/${subscriptionId}/invoices`).send(date ? { date } : {});
  expect([200, 201], res.text).toContain(res.status);
  return res;
}

beforeAll(async () => {
  t = await ctx.newTenant();
  plan = (
    await t.api.post('/api/v1/plans').send({
      code: 'seats',
      name: 'Seats',
      interval: 'month',
      price: { model: 'per_unit', amount: '3.33' },
    })
  ).body as Schemas['Plan'];
  for (const rate of [
    { code: 'VAT', name: 'German VAT', percentage: '19', region: 'DE', effective_from: '2020-01-01' },
    {
      code: 'SALES',
      name: 'US federal (example)',
      percentage: '1.5',
      region: 'US',
      effective_from: '2020-01-01',
    },
    { code: 'STATE', name: 'California', percentage: '7.25', region: 'US-CA', effective_from: '2020-01-01' },
  ]) {
    expect((await t.api.post('/api/v1/tax-rates').send(rate)).status).toBe(201);
  }
});

describe('tax rates', () => {
  it('changes a rate made with an end before that end: the successor keeps it (tax1 F1)', async () => {
    const other = await ctx.newTenant();
    const made = await other.api.post('/api/v1/tax-rates').send({
      code: 'IVA',
      name: 'IVA',
      percentage: '23',
      region: 'PT',
      effective_from: '2026-01-01',
      effective_until: '2026-12-01',
    });
    expect(made.status, made.text).toBe(201);
    const id = (made.body as Schemas['TaxRate']).id;
    const before = await fingerprint(ctx.db);
    for (const effective_from of ['2026-12-01', '2027-03-01']) {
      const late = expectProblem(
        await other.api.post(`/api/v1/tax-rates/${id}/supersede`).send({ percentage: '21', effective_from }),
        422,
        'unprocessable',
      );
      expect(late.errors).toEqual([
        expect.objectContaining({ field: '/effective_from', message: 'must be before 2026-12-01' }),
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    const changed = await other.api
      .post(`/api/v1/tax-rates/${id}/supersede`)
      .send({ percentage: '21', effective_from: '2026-06-01' });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toMatchObject({
      closed: { id, percentage: '23.0000', effective_from: '2026-01-01', effective_until: '2026-06-01' },
      rate: {
        code: 'IVA',
        percentage: '21.0000',
        effective_from: '2026-06-01',
        effective_until: '2026-12-01',
      },
    });
    const on = async (date: string) =>
      (
        (await other.api.get(`/api/v1/tax-rates?region=PT&on=${date}`)).body as Schemas['TaxRateList']
      ).data.map((r) => r.percentage);
    expect([await on('2026-05-31'), await on('2026-06-01'), await on('2026-12-01')]).toEqual([
      ['23.0000'],
      ['21.0000'],
      [],
    ]);
    const feed = (await other.api.get(`/api/v1/events?resource_id=${id}&type=tax_rate.superseded`))
      .body as Schemas['EventList'];
    expect(feed.data.map((e) => e.previous)).toEqual([{ effective_until: '2026-12-01' }]);
  });

  it('refuses overlapping rates of one code and region, and changes a rate only by superseding it', async () => {
    const other = await ctx.newTenant();
    const first = await other.api
      .post('/api/v1/tax-rates')
      .send({ code: 'GST', name: 'GST', percentage: '10', region: 'AU', effective_from: '2024-01-01' });
    const id = (first.body as Schemas['TaxRate']).id;
    const before = await fingerprint(ctx.db);
    expectProblem(
      await other.api
        .post('/api/v1/tax-rates')
        .send({ code: 'GST', name: 'GST', percentage: '12', region: 'AU', effective_from: '2025-06-01' }),
      409,
      'conflict',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);

    const changed = await other.api
      .post(`/api/v1/tax-rates/${id}/supersede`)
      .send({ percentage: '12.5', effective_from: '2027-01-01' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      closed: { id, percentage: '10.0000', effective_until: '2027-01-01' },
      rate: {
        code: 'GST',
        region: 'AU',
        percentage: '12.5000',
        effective_from: '2027-01-01',
        effective_until: null,
      },
    });
    const twice = expectProblem(
      await other.api
        .post(`/api/v1/tax-rates/${id}/supersede`)
        .send({ percentage: '1', effective_from: '2028-01-01' }),
      409,
      'conflict',
    );
    const successor = (changed.body as Schemas['TaxRateSuperseded']).rate.id;
    expect(twice.detail).toBe(
      `The rate ends on 2027-01-01, where rate ${successor} follows it: supersede that one.`,
    );
    // Changed again within its dates: closed earlier, and the rate made ends where it ended
    // (also with the rate after it made on its own, not by a supersede: retest16 #1).
    const within = await other.api
      .post(`/api/v1/tax-rates/${id}/supersede`)
      .send({ percentage: '11', effective_from: '2026-07-01' });
    expect(within.status, within.text).toBe(200);
    expect(within.body).toMatchObject({
      closed: { id, effective_until: '2026-07-01' },
      rate: { percentage: '11.0000', effective_from: '2026-07-01', effective_until: '2027-01-01' },
    });
    const got = await other.api.get(`/api/v1/tax-rates/${id}`);
    expect(got.body).toMatchObject({ id, effective_until: '2026-07-01' });
    expectProblem(await t.api.get(`/api/v1/tax-rates/${id}`), 404, 'not-found'); // another tenant's
    const onDate = (await other.api.get('/api/v1/tax-rates?region=AU&on=2026-12-31'))
      .body as Schemas['TaxRateList'];
    expect(onDate.data.map((r) => r.percentage)).toEqual(['11.0000']);
    // The database refuses an edit in place, to the app role and to the owner.
    await expect(
      withTenant(ctx.appDb, { tenantId: other.id }, (trx) =>
        sql`update tax_rates set percentage = 99 where id = ${id}`.execute(trx),
      ),
    ).rejects.toThrow(/never edited/);
    await expect(sql`update tax_rates set percentage = 99 where id = ${id}`.execute(ctx.db)).rejects.toThrow(
      /never edited/,
    );
  });
});

describe('POST /subscriptions/{id}/invoices', () => {
  it('invoices a period with its price and the taxes of the region and its country', async () => {
    const s = await subscribe('US-CA');
    const res = await invoice(s.id, '2026-03-15');
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/api/v1/invoices/${(res.body as Schemas['Invoice']).id}`);
    expect(res.body).toMatchObject({
      status: 'draft',
      number: null,
      period_start: '2026-02-28',
      period_end: '2026-03-31',
      invoice_date: '2026-02-28',
      region: 'US-CA',
      subtotal: '9.99',
      tax_total: '0.87', // 0.14985 → 0.15, 0.7242... → 0.72
      total: '10.86',
      lines: [
        { quantity: 3, amount: '9.99', breakdown: [{ tier: null, quantity: 3, unit_amount: '3.3300' }] },
      ],
    });
    expect((res.body as Schemas['Invoice']).taxes.map((x) => [x.code, x.region, x.amount])).toEqual([
      ['SALES', 'US', '0.15'],
      ['STATE', 'US-CA', '0.72'],
    ]);
  });

  it('answers the same invoice for the same period, also for 10 concurrent requests', async () => {
    const s = await subscribe('DE');
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        t.api
          .post(`/api/v1/subscriptions/${s.id}/invoices`)
          .send({ date: '2026-05-01' })
          .then((r) => r),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(9);
    expect(new Set(results.map((r) => (r.body as Schemas['Invoice']).id)).size).toBe(1);
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from invoices where subscription_id = ${s.id}`.execute(ctx.db);
    expect(rows[0]?.n).toBe(1);
  });

  it('invoices a voided period again, in a new draft, once also for concurrent requests', async () => {
    const s = await subscribe('DE');
    const first = (await invoice(s.id, '2026-05-01')).body as Schemas['Invoice'];
    const finalized = await t.api.post(`/api/v1/invoices/${first.id}/finalize`);
    expect(finalized.status).toBe(200);
    expect((await t.api.post(`/api/v1/invoices/${first.id}/void`)).status).toBe(200);
    const again = await Promise.all(
      Array.from({ length: 5 }, () =>
        t.api.post(`/api/v1/subscriptions/${s.id}/invoices`).send({ date: '2026-05-20' }),
      ),
    );
    expect(again.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
    const redone = again.find((r) => r.status === 201)!.body as Schemas['Invoice'];
    expect(new Set(again.map((r) => (r.body as Schemas['Invoice']).id))).toEqual(new Set([redone.id]));
    expect(redone).toMatchObject({
      status: 'draft',
      period_start: first.period_start,
      period_end: first.period_end,
      subtotal: first.subtotal,
      total: first.total,
    });
    expect(redone.id).not.toBe(first.id);
    // The voided invoice stays as it was.
    expect((await t.api.get(`/api/v1/invoices/${first.id}`)).body).toMatchObject({
      status: 'void',
      number: 1,
    });
  });

  it('refuses a date before the subscription starts; back-bills a period before billed_until by hand', async () => {
    const s = await subscribe(null, '2026-06-10');
    expectProblem(
      await t.api.post(`/api/v1/subscriptions/${s.id}/invoices`).send({ date: '2026-06-01' }),
      422,
      'unprocessable',
    );
    // Created in the past: its renewals bill from its current period on, never June.
    expect(s.billed_until! > '2026-07-10').toBe(true);
    const created = await invoice(s.id, '2026-06-10');
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      status: 'draft',
      period_start: '2026-06-10',
      period_end: '2026-07-10',
    });
    expect((created.body as Schemas['Invoice']).taxes).toEqual([]); // no region, no tax
    const after = (await t.api.get(`/api/v1/subscriptions/${s.id}`)).body as Schemas['Subscription'];
    expect(after.billed_until).toBe(s.billed_until);
    expectProblem(await t.api.delete(`/api/v1/subscriptions/${s.id}`), 409, 'conflict');
  });

  it('refuses a period not started yet, which its renewal invoices then with what is true then', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'ahead', frozen_time: '2026-01-11T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const res = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-01',
      plan_id: plan.id,
      test_clock_id: clock.id,
    });
    expect(res.status, res.text).toBe(201);
    const s = res.body as Schemas['Subscription'];
    await invoice(s.id); // January, started
    const before = await fingerprint(ctx.db);
    for (const date of ['2026-02-01', '2026-02-15', '2027-01-01']) {
      const ahead = await t.api.post(`/api/v1/subscriptions/${s.id}/invoices`).send({ date });
      const problem = expectProblem(ahead, 422, 'unprocessable');
      expect(problem.detail).toContain('upcoming-invoice');
      expect(problem.errors).toEqual([expect.objectContaining({ field: '/date' })]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // Within the period started (a later day of it, the clock's today): the same invoice.
    expect((await invoice(s.id, '2026-01-31')).status).toBe(200);
  });
});

describe('issued invoices', () => {
  it('numbers 16 concurrent finalizations without gaps or duplicates', async () => {
    const fresh = await ctx.newTenant();
    const freshPlan = (
      await fresh.api
        .post('/api/v1/plans')
        .send({ code: 'p', name: 'P', interval: 'month', price: { model: 'flat', amount: '1' } })
    ).body as Schemas['Plan'];
    const user = await createUser(fresh);
    const drafts: string[] = [];
    for (let i = 0; i < 16; i++) {
      const s = await fresh.api
        .post('/api/v1/subscriptions')
        .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: freshPlan.id });
      const inv = await fresh.api
        .post(`/api/v1/subscriptions/${(s.body as Schemas['Subscription']).id}/invoices`)
        .send({});
      drafts.push((inv.body as Schemas['Invoice']).id);
    }
    const finalized = await Promise.all(
      drafts.map((id) => fresh.api.post(`/api/v1/invoices/${id}/finalize`).then((r) => r)),
    );
    expect(finalized.map((r) => r.status)).toEqual(Array(16).fill(200));
    const numbers = finalized.map((r) => (r.body as Schemas['Invoice']).number!).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expectProblem(await fresh.api.post(`/api/v1/invoices/${drafts[0]}/finalize`), 409, 'conflict');
  });

  it('cannot be changed by any role, even with SQL as the app role or the owner; voiding keeps the number', async () => {
    const s = await subscribe('DE');
    const draft = (await invoice(s.id, '2026-08-01')).body as Schemas['Invoice'];
    const open = (await t.api.post(`/api/v1/invoices/${draft.id}/finalize`)).body as Schemas['Invoice'];
    expect(open).toMatchObject({ status: 'open', number: expect.any(Number) });
    const attempts = [
      sql`update invoices set total = 0 where id = ${draft.id}`,
      sql`update invoices set number = number + 1000 where id = ${draft.id}`,
      sql`update invoices set taxes = '[]' where id = ${draft.id}`,
      sql`update invoices set status = 'draft' where id = ${draft.id}`,
      sql`delete from invoices where id = ${draft.id}`,
    ];
    for (const attempt of attempts) {
      await expect(withTenant(ctx.appDb, { tenantId: t.id }, (trx) => attempt.execute(trx))).rejects.toThrow(
        /invoice/,
      );
      await expect(attempt.execute(ctx.db)).rejects.toThrow(/invoice/);
    }
    const voided = await t.api.post(`/api/v1/invoices/${draft.id}/void`);
    expect(voided.body).toMatchObject({ status: 'void', number: open.number, total: open.total });
    expect(expectProblem(await t.api.post(`/api/v1/invoices/${draft.id}/void`), 409, 'conflict').detail).toBe(
      'The invoice is void; only a draft, open, uncollectible invoice, or a paid one of 0.00 that prepaid credits alone paid, can be voided.',
    );
  });

  it('keep the taxes they were issued with when a rate changes; the tax report follows the invoices', async () => {
    const fresh = await ctx.newTenant();
    const vat = (
      await fresh.api
        .post('/api/v1/tax-rates')
        .send({ code: 'VAT', name: 'VAT', percentage: '19', region: 'DE', effective_from: '2020-01-01' })
    ).body as Schemas['TaxRate'];
    const freshPlan = (
      await fresh.api
        .post('/api/v1/plans')
        .send({ code: 'p', name: 'P', interval: 'month', price: { model: 'flat', amount: '100' } })
    ).body as Schemas['Plan'];
    const user = await createUser(fresh, { region: 'DE' });
    const s = (
      await fresh.api
        .post('/api/v1/subscriptions')
        .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: freshPlan.id })
    ).body as Schemas['Subscription'];
    const march = (
      await fresh.api.post(`/api/v1/subscriptions/${s.id}/invoices`).send({ date: '2026-03-01' })
    ).body as Schemas['Invoice'];
    await fresh.api.post(`/api/v1/invoices/${march.id}/finalize`).expect(200);
    const report = async () =>
      ((await fresh.api.get('/api/v1/reports/taxes?from=2026-02&to=2026-05')).body as Schemas['TaxReport'])
        .months;
    const before = await report();
    expect(before.find((m) => m.month === '2026-03')?.taxes).toEqual([
      {
        code: 'VAT',
        region: 'DE',
        taxable_amount: '100.00',
        tax_amount: '19.00',
        invoice_count: 1,
        credit_note_count: 0,
        ending_credit_count: 0,
      },
    ]);

    const superseded = await fresh.api
      .post(`/api/v1/tax-rates/${vat.id}/supersede`)
      .send({ percentage: '21', effective_from: '2026-04-01' })
      .expect(200);
    const after = (await fresh.api.get(`/api/v1/invoices/${march.id}`)).body as Schemas['Invoice'];
    expect(after).toMatchObject({ tax_total: '19.00', total: '119.00' });
    expect(await report()).toEqual(before);
    const april = (
      await fresh.api.post(`/api/v1/subscriptions/${s.id}/invoices`).send({ date: '2026-04-01' })
    ).body as Schemas['Invoice'];
    expect(april).toMatchObject({ tax_total: '21.00', total: '121.00' });
    await fresh.api.post(`/api/v1/invoices/${april.id}/finalize`).expect(200);
    const months = await report();
    expect(months.map((m) => m.month)).toEqual(['2026-02', '2026-03', '2026-04', '2026-05']);
    expect(months.find((m) => m.month === '2026-04')?.taxes[0]).toMatchObject({ tax_amount: '21.00' });

    // A draft is taxed as it is issued: a rate superseded for its date since the draft was made
    // is the one the invoice carries (monthend1 #1).
    const may = (await fresh.api.post(`/api/v1/subscriptions/${s.id}/invoices`).send({ date: '2026-05-01' }))
      .body as Schemas['Invoice'];
    expect(may).toMatchObject({ tax_total: '21.00', total: '121.00' });
    const rate21 = (superseded.body as { rate: Schemas['TaxRate'] }).rate;
    await fresh.api
      .post(`/api/v1/tax-rates/${rate21.id}/supersede`)
      .send({ percentage: '7', effective_from: '2026-05-01' })
      .expect(200);
    const issued = (await fresh.api.post(`/api/v1/invoices/${may.id}/finalize`).expect(200))
      .body as Schemas['Invoice'];
    expect(issued).toMatchObject({
      subtotal: '100.00',
      tax_total: '7.00',
      total: '107.00',
      amount_due: '107.00',
    });
    expect(issued.taxes.map((x) => [x.percentage, x.amount])).toEqual([['7.0000', '7.00']]);
    expect((await report()).find((m) => m.month === '2026-05')?.taxes[0]).toMatchObject({
      tax_amount: '7.00',
    });
    expectProblem(
      await fresh.api.get('/api/v1/reports/taxes?from=2026-05&to=2026-02'),
      400,
      'validation-error',
    );
  });

  it('lists and filters invoices', async () => {
    const s = await subscribe('DE');
    const a = (await invoice(s.id, '2026-02-01')).body as Schemas['Invoice'];
    await invoice(s.id, '2026-03-01');
    const bySubscription = (await t.api.get(`/api/v1/invoices?subscription_id=${s.id}`))
      .body as Schemas['InvoiceList'];
    expect(bySubscription.data).toHaveLength(2);
    const byPeriod = (await t.api.get(`/api/v1/invoices?subscription_id=${s.id}&period=2026-02-15`))
      .body as Schemas['InvoiceList'];
    expect(byPeriod.data.map((i) => i.id)).toEqual([a.id]);
    const byStatus = (await t.api.get(`/api/v1/invoices?user_id=${s.user_id}&status=open&status=paid`))
      .body as Schemas['InvoiceList'];
    expect(byStatus.data).toEqual([]);
    const open = (await t.api.post(`/api/v1/invoices/${a.id}/finalize`)).body as Schemas['Invoice'];
    const byNumber = (await t.api.get(`/api/v1/invoices?number=${open.number}`))
      .body as Schemas['InvoiceList'];
    expect(byNumber.data.map((i) => i.id)).toEqual([a.id]);
    expect(
      (await t.api.get(`/api/v1/invoices/${a.id}`).set('If-None-Match', `"${open.version}"`)).status,
    ).toBe(304);
  });

  it('pays a zero invoice when finalize issues it, with invoice.finalized then invoice.paid as a renewal; paying 0.00 then is 409 and writes nothing', async () => {
    const s = await subscribe('DE');
    const free = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'Free for ever', percent_off: '100', duration: 'forever' });
    expect(free.status, free.text).toBe(201);
    const applied = await t.api
      .post(`/api/v1/subscriptions/${s.id}/discount`)
      .send({ coupon_id: (free.body as Schemas['Coupon']).id });
    expect(applied.status, applied.text).toBe(200);
    const draft = (await invoice(s.id, '2026-09-01')).body as Schemas['Invoice'];
    expect(draft).toMatchObject({ status: 'draft', total: '0.00', amount_due: '0.00' });

    const issued = await t.api.post(`/api/v1/invoices/${draft.id}/finalize`);
    expect(issued.status, issued.text).toBe(200);
    const paid = issued.body as Schemas['Invoice'];
    expect(paid).toMatchObject({
      status: 'paid',
      number: expect.any(Number),
      total: '0.00',
      amount_due: '0.00',
      paid_at: paid.finalized_at,
    });
    expect((await t.api.get(`/api/v1/invoices/${draft.id}`)).body).toEqual(paid);
    expect(
      (
        (await t.api.get(`/api/v1/invoices?subscription_id=${s.id}&status=open`))
          .body as Schemas['InvoiceList']
      ).data,
    ).toEqual([]);
    const events = (await t.api.get('/api/v1/events').query({ resource_id: draft.id, limit: 100 }))
      .body as Schemas['EventList'];
    expect(events.data.map((e) => [e.type, e.previous])).toEqual([
      ['invoice.created', null],
      ['invoice.finalized', { status: 'draft', number: null, finalized_at: null }],
      ['invoice.paid', { status: 'open', paid_at: null }],
    ]);
    expect(events.data.at(-1)!.data).toEqual(paid);

    // Nothing is left to pay: a payment of 0.00 is refused clearly, and writes nothing.
    const before = await fingerprint(ctx.db);
    const zero = await t.api
      .post(`/api/v1/invoices/${draft.id}/payments`)
      .send({ amount: '0.00', payment_method: 'pm_card_visa', rail: 'card' });
    expect(expectProblem(zero, 409, 'conflict').detail).toBe('The invoice is paid already.');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
