// A subscription imported from a system that billed it through its current period (billed_until
// on creation): that period is not invoiced again here, the first renewal bills the next one on
// its first day, and a change in the current period credits its days as paid there (import1 #2).
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let planId: string;
let proId: string;

beforeAll(async () => {
  t = await ctx.newTenant();
  const plan = async (code: string, amount: string) => {
    const res = await t.api
      .post('/api/v1/plans')
      .send({ code, name: code, interval: 'month', price: { model: 'flat', amount } });
    expect(res.status, res.text).toBe(201);
    return (res.body as Schemas['Plan']).id;
  };
  planId = await plan('basic', '31.00');
  proId = await plan('pro', '62.00');
});

/** On a clock at 2026-05-15, a subscription started 2026-01-31: its current period is Apr 30 - May 31. */
async function imported(extra: Record<string, unknown>, frozenTime = '2026-05-15T00:00:00Z') {
  const clock = (await t.api.post('/api/v1/test-clocks').send({ name: 'import', frozen_time: frozenTime }))
    .body as Schemas['TestClock'];
  const user = await createUser(t);
  const res = await t.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'active',
    plan_id: planId,
    start_date: '2026-01-31',
    test_clock_id: clock.id,
    ...extra,
  });
  const work = () =>
    performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  return {
    res,
    sub: res.body as Schemas['Subscription'],
    work,
    async advance(to: string) {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to }).expect(202);
      await work();
    },
  };
}

const invoicesOf = async (id: string) =>
  ((await t.api.get('/api/v1/invoices').query({ subscription_id: id })).body as Schemas['InvoiceList']).data
    .reverse()
    .map((i) => [i.kind, i.period_start, i.period_end, i.subtotal]);

describe('POST /subscriptions with billed_until', () => {
  it('keeps billed_until with an end_date in the period billed elsewhere: a change there is prorated (retest14 #2)', async () => {
    const s = await imported({ billed_until: '2026-05-31', end_date: '2026-05-25' });
    expect(s.res.status, s.res.text).toBe(201);
    expect(s.sub.billed_until).toBe('2026-05-31');
    await s.work();
    const up = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: proId });
    expect(up.status, up.text).toBe(200);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data.map((i) => i.kind).sort()).toEqual(['proration_charge', 'proration_credit']);
    expect(await invoicesOf(s.sub.id)).toEqual([]);
  });

  it('does not invoice the current period billed elsewhere; renewals start with the next', async () => {
    const s = await imported({ billed_until: '2026-05-31' });
    expect(s.res.status, s.res.text).toBe(201);
    expect(s.sub.billed_until).toBe('2026-05-31');
    await s.work();
    expect(await invoicesOf(s.sub.id)).toEqual([]);
    const upcoming = (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/upcoming-invoice`))
      .body as Schemas['UpcomingInvoice'];
    expect([upcoming.period_start, upcoming.subtotal]).toEqual(['2026-05-31', '31.00']);

    // A change in the current period credits its days left as paid there: 16 of 31 days.
    await s.advance('2026-05-15T12:00:00Z');
    const up = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: proId });
    expect(up.status, up.text).toBe(200);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data.map((i) => [i.kind, i.amount]).sort()).toEqual([
      ['proration_charge', '32.00'],
      ['proration_credit', '-16.00'],
    ]);

    await s.advance('2026-05-31T01:00:00Z');
    expect(await invoicesOf(s.sub.id)).toEqual([['period', '2026-05-31', '2026-06-30', '78.00']]);
  });

  it('a start date moved keeps the period billed elsewhere billed: only the days up to the new schedule are charged (retest15 #5)', async () => {
    // A day later: periods on the 1st; May 31 (1 of May's 31 days) charged, June invoiced with it.
    const later = await imported({ billed_until: '2026-05-31' });
    await later.work();
    const moved = await t.api
      .patch(`/api/v1/subscriptions/${later.sub.id}`)
      .send({ start_date: '2026-02-01' });
    expect(moved.status, moved.text).toBe(200);
    expect((moved.body as Schemas['Subscription']).billed_until).toBe('2026-06-01');
    await later.advance('2026-06-01T01:00:00Z');
    expect(await invoicesOf(later.sub.id)).toEqual([['period', '2026-06-01', '2026-07-01', '32.00']]);

    // A month earlier: the same periods, nothing charged, nothing invoiced before May 31.
    const earlier = await imported({ billed_until: '2026-05-31' });
    await earlier.work();
    const same = await t.api
      .patch(`/api/v1/subscriptions/${earlier.sub.id}`)
      .send({ start_date: '2025-12-31' });
    expect(same.status, same.text).toBe(200);
    expect((same.body as Schemas['Subscription']).billed_until).toBe('2026-05-31');
    await earlier.advance('2026-05-30T01:00:00Z');
    expect(await invoicesOf(earlier.sub.id)).toEqual([]);
    await earlier.advance('2026-05-31T01:00:00Z');
    expect(await invoicesOf(earlier.sub.id)).toEqual([['period', '2026-05-31', '2026-06-30', '31.00']]);
  });

  it('after a start date moved, a change credits the days paid elsewhere (retest16 #4)', async () => {
    const s = await imported({ billed_until: '2026-05-31' });
    await s.work();
    const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: '2026-02-01' });
    expect(moved.status, moved.text).toBe(200);
    await s.advance('2026-05-20T12:00:00Z');
    const up = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: proId });
    expect(up.status, up.text).toBe(200);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    // Basic May 20-30 credited (paid elsewhere to May 31), the May 31 charge dropped, Pro charged
    // from May 20 to the new schedule's June 1.
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end]).sort()).toEqual([
      ['proration_charge', '24.00', '2026-05-20', '2026-06-01'],
      ['proration_credit', '-11.00', '2026-05-20', '2026-05-31'],
    ]);
    await s.advance('2026-06-01T01:00:00Z');
    expect(await invoicesOf(s.sub.id)).toEqual([['period', '2026-06-01', '2026-07-01', '75.00']]);

    // Paused May 20 to 25 instead: the 5 days credited, the May 31 charge back with the resume.
    const p = await imported({ billed_until: '2026-05-31' });
    await p.work();
    await t.api.patch(`/api/v1/subscriptions/${p.sub.id}`).send({ start_date: '2026-02-01' }).expect(200);
    await p.advance('2026-05-20T12:00:00Z');
    await t.api.post(`/api/v1/subscriptions/${p.sub.id}/pause`).expect(200);
    await p.advance('2026-05-25T12:00:00Z');
    await t.api.post(`/api/v1/subscriptions/${p.sub.id}/resume`).expect(200);
    await p.advance('2026-06-01T01:00:00Z');
    expect(await invoicesOf(p.sub.id)).toEqual([['period', '2026-06-01', '2026-07-01', '27.00']]);

    // Upgraded, then back to Basic on May 25: Pro May 20-24, and the May 31 charge back (retest17 #2).
    const back = await imported({ billed_until: '2026-05-31' });
    await back.work();
    await t.api.patch(`/api/v1/subscriptions/${back.sub.id}`).send({ start_date: '2026-02-01' }).expect(200);
    await back.advance('2026-05-20T12:00:00Z');
    await t.api.patch(`/api/v1/subscriptions/${back.sub.id}`).send({ plan_id: proId }).expect(200);
    await back.advance('2026-05-25T12:00:00Z');
    await t.api.patch(`/api/v1/subscriptions/${back.sub.id}`).send({ plan_id: planId }).expect(200);
    const items = (
      await t.api.get(`/api/v1/subscriptions/${back.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(items.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end]).sort()).toEqual([
      ['proration_charge', '1.00', '2026-05-31', '2026-06-01'],
      ['proration_charge', '10.00', '2026-05-20', '2026-05-25'],
      ['proration_credit', '-5.00', '2026-05-20', '2026-05-25'],
    ]);
    await back.advance('2026-06-01T01:00:00Z');
    expect(await invoicesOf(back.sub.id)).toEqual([['period', '2026-06-01', '2026-07-01', '37.00']]);

    // The same with the period invoiced here, by the old schedule's invoice.
    const here = await imported({});
    await here.work();
    await t.api.patch(`/api/v1/subscriptions/${here.sub.id}`).send({ start_date: '2026-02-01' }).expect(200);
    await here.advance('2026-05-20T12:00:00Z');
    await t.api.patch(`/api/v1/subscriptions/${here.sub.id}`).send({ plan_id: proId }).expect(200);
    await here.advance('2026-06-01T01:00:00Z');
    expect(await invoicesOf(here.sub.id)).toEqual([
      ['period', '2026-04-30', '2026-05-31', '31.00'],
      ['period', '2026-06-01', '2026-07-01', '75.00'],
    ]);
  });

  it('a start date moved earlier goes on from the new period holding billed_until, its day billed credited back (retest17 #1)', async () => {
    const s = await imported({ billed_until: '2026-05-31' });
    await s.work();
    // Periods on the 30th: May 30 - Jun 30 holds May 31, and starts after today (May 15).
    const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: '2026-01-30' });
    expect(moved.status, moved.text).toBe(200);
    expect((moved.body as Schemas['Subscription']).billed_until).toBe('2026-05-30');
    const items = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(items.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end])).toEqual([
      ['proration_credit', '-1.00', '2026-05-30', '2026-05-31'],
    ]);
    // Paused May 20 to Jun 10: the days paid to May 30 credited, June's period billed from the
    // resume only, with May 30 (paid, paused) credited too.
    await s.advance('2026-05-20T12:00:00Z');
    await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).expect(200);
    await s.advance('2026-06-10T12:00:00Z');
    await t.api.post(`/api/v1/subscriptions/${s.sub.id}/resume`).expect(200);
    // May 20-29 credited (10 of 30 days: 10.33) and May 30 (1.00); Jun 10-29 charged (20 of 31: 20.00).
    const invoices = await invoicesOf(s.sub.id);
    expect(invoices).toEqual([['proration', '2026-06-10', '2026-06-30', '8.67']]);
  });

  it('after a start date moved, a period sharing days with an invoice of the old schedule is not invoiced by hand (retest20 #2)', async () => {
    const s = await imported({}); // invoiced here: Apr 30 - May 31, 31.00
    await s.work();
    await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: '2026-02-10' }).expect(200);
    // May 10 - Jun 10 holds today: May 10-30 are billed by the old schedule's invoice.
    for (const body of [{}, { date: '2026-05-15' }]) {
      const res = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/invoices`).send(body);
      const problem = expectProblem(res, 422, 'unprocessable');
      expect(problem.detail).toContain(
        'The days 2026-05-10 to 2026-05-31 of the period 2026-05-10 to 2026-06-10',
      );
    }
  });

  it('canceled at the period end after moves charged days forward, its last invoice bills no day after it (retest20 #7)', async () => {
    const s = await imported({}); // invoiced here: Apr 30 - May 31, 31.00
    await s.work();
    const move = async (start_date: string) =>
      t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date }).expect(200);
    await move('2026-02-02'); // May 31 - Jun 1 charged
    const back = await move('2026-01-31'); // charged forward: Jun 2 - Jun 29 too
    expect((back.body as Schemas['Subscription']).billed_until).toBe('2026-06-30');
    const cancel = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'period_end' });
    expect(cancel.status, cancel.text).toBe(200);
    expect((cancel.body as Schemas['Subscription']).cancel_at).toBe('2026-05-31T00:00:00.000Z');
    await s.advance('2026-06-02T00:00:00Z');
    // Served Apr 30 - May 30: nothing after it is billed, the charges of those days dropped.
    expect(await invoicesOf(s.sub.id)).toEqual([['period', '2026-04-30', '2026-05-31', '31.00']]);
    const items = (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`))
      .body as Schemas['InvoiceItemList'];
    expect(items.data).toEqual([]);
  });

  it('canceled before its moved start date, its last invoice bills no day from that date on (invariants5 #5)', async () => {
    const plan = await t.api.post('/api/v1/plans').send({
      code: `p120-${Date.now()}`,
      name: 'p120',
      interval: 'month',
      price: { model: 'flat', amount: '120.00' },
    });
    const s = await imported(
      { plan_id: (plan.body as Schemas['Plan']).id, start_date: '2026-02-04' },
      '2026-02-04T10:00:00Z',
    );
    await s.work(); // Feb 4 - Mar 4: 120.00
    const move = async (start_date: string) =>
      t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date }).expect(200);
    await move('2026-02-07');
    await s.advance('2026-02-11T10:00:00Z'); // Feb 7 - Mar 7, less Feb 7 - Mar 4 paid: 12.86
    await move('2026-02-19');
    await move('2026-03-03');
    await s.advance('2026-02-20T10:00:00Z');
    // Billed until Mar 21 now: Mar 3 - Mar 21 charged forward (77.14).
    expect((await move('2026-02-21')).body).toMatchObject({ billed_until: '2026-03-21' });
    const cancel = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(cancel.status, cancel.text).toBe(200);
    await s.advance('2026-02-23T10:00:00Z');
    // Served Feb 4 - Feb 20, before the schedule's first day: the charge of Mar 3 - 21 is dropped,
    // and no last invoice bills it (before, 8.57 more was collected for days after the end).
    expect(await invoicesOf(s.sub.id)).toEqual([
      ['period', '2026-02-04', '2026-03-04', '120.00'],
      ['period', '2026-02-07', '2026-03-07', '12.86'],
    ]);
    const items = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(items.data).toEqual([]);
  });

  it('after a downgrade invoiced at once and a start date moved back, an upgrade credits no more than its price (invariants5 #4)', async () => {
    const plan = async (amount: string) =>
      (
        (
          await t.api.post('/api/v1/plans').send({
            code: `p${amount}-${Date.now()}`,
            name: `p${amount}`,
            interval: 'month',
            price: { model: 'flat', amount },
          })
        ).body as Schemas['Plan']
      ).id;
    const [p99, p45, p120] = [await plan('99.99'), await plan('45.00'), await plan('120.00')];
    const s = await imported({ plan_id: p99, start_date: '2026-04-02' }, '2026-04-02T10:00:00Z');
    await s.work(); // Apr 2 - May 2: 99.99
    const change = async (body: Record<string, unknown>) => {
      const res = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send(body);
      expect(res.status, res.text).toBe(200);
    };
    // 99.99 credited whole and 45.00 charged (pending: they net to a credit); then the period is
    // Mar 23 - Apr 23, and May 2 - 23 is charged forward.
    await change({ plan_id: p45, proration_behavior: 'always_invoice' });
    await change({ start_date: '2026-03-23' });
    const preview = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/preview-change`)
      .send({ plan_id: p120, proration_behavior: 'always_invoice' });
    expect(preview.status, preview.text).toBe(200);
    // Those 21 days are credited at 45.00 at most (30.48 of 31 days), not "at 103.32 paid of
    // 45.00" (69.99): the 99.99 that paid them once was credited already.
    const lines = (preview.body as Schemas['SubscriptionChangePreview']).invoice!.lines;
    expect(lines.map((l) => l.amount).sort()).toEqual(['-30.48', '-99.99', '31.50', '45.00', '81.29']);
  });

  it("after a start date moved later, a pause credits the old schedule's days at what was paid for each (retest20 #5)", async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'moved', frozen_time: '2027-01-22T01:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const created = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: planId,
      start_date: '2026-11-22',
      test_clock_id: clock.id,
    });
    expect(created.status, created.text).toBe(201);
    const id = (created.body as Schemas['Subscription']).id;
    const work = () =>
      performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    await work();
    expect(await invoicesOf(id)).toEqual([['period', '2027-01-22', '2027-02-22', '31.00']]); // 1.00 a day
    // On Feb 1, periods on the 30th: Jan 30 - Feb 28 has 29 days; Feb 22-27 charged.
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2027-02-01T01:00:00Z' })
      .expect(202);
    await work();
    const moved = await t.api
      .patch(`/api/v1/subscriptions/${id}`)
      .send({ start_date: '2026-12-30' })
      .expect(200);
    expect((moved.body as Schemas['Subscription']).billed_until).toBe('2027-02-28');
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2027-02-05T01:00:00Z' })
      .expect(202);
    await work();
    await t.api.post(`/api/v1/subscriptions/${id}/pause`).expect(200);
    const pending = (await t.api.get(`/api/v1/subscriptions/${id}/invoice-items`).query({ pending: true }))
      .body as Schemas['InvoiceItemList'];
    // Feb 5-21, paid 1.00 a day by the old invoice: 17.00 (not 17 of 29 days of 31.00: 18.17).
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end])).toEqual([
      ['proration_credit', '-17.00', '2027-02-05', '2027-02-22'],
    ]);
    // Resumed on Feb 10: Feb 5-9 credited (5.00), Feb 22-27 charged again (6 of 29 days: 6.41).
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2027-02-10T01:00:00Z' })
      .expect(202);
    await work();
    await t.api.post(`/api/v1/subscriptions/${id}/resume`).expect(200);
    await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2027-03-01T01:00:00Z' })
      .expect(202);
    await work();
    expect(await invoicesOf(id)).toEqual([
      ['period', '2027-01-22', '2027-02-22', '31.00'],
      ['period', '2027-02-28', '2027-03-30', '32.41'],
    ]);
  });

  it('after a start date moved later, a pause in the new period voided credits nothing it did not pay (retest22 #2)', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'moved', frozen_time: '2027-01-10T01:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const created = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: planId,
      start_date: '2027-01-07',
      test_clock_id: clock.id,
    });
    expect(created.status, created.text).toBe(201);
    const id = (created.body as Schemas['Subscription']).id;
    const advance = async (to: string) => {
      await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to }).expect(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    };
    await advance('2027-02-12T01:00:00Z');
    await t.api.patch(`/api/v1/subscriptions/${id}`).send({ start_date: '2027-01-19' }).expect(200);
    await advance('2027-02-22T01:00:00Z');
    const invoices = (
      (await t.api.get('/api/v1/invoices').query({ subscription_id: id })).body as Schemas['InvoiceList']
    ).data;
    const moved = invoices.find((i) => i.period_start === '2027-02-19')!;
    expect(moved.subtotal).toBe('13.29'); // 31.00 less Feb 19 - Mar 6, paid by the Feb 7 invoice
    // Voided: the new schedule's period can never be invoiced again (the Feb 7 invoice bills
    // some of its days), so its price is forgiven for good, and the pause credits nothing.
    await t.api.post(`/api/v1/invoices/${moved.id}/void`).expect(200);
    await t.api.post(`/api/v1/subscriptions/${id}/pause`).expect(200);
    const pending = (await t.api.get(`/api/v1/subscriptions/${id}/invoice-items`).query({ pending: true }))
      .body as Schemas['InvoiceItemList'];
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start])).toEqual([
      ['proration_credit', '-17.71', '2027-02-19'],
    ]);
  });

  it('a start date moved earlier, back and earlier again bills each day once (retest19 #1)', async () => {
    const s = await imported({}); // invoiced here: Apr 30 - May 31, 31.00
    await s.work();
    const move = async (start_date: string) =>
      t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date }).expect(200);
    await move('2026-02-20'); // credited back: May 20-30, billing from May 20
    await move('2026-01-31'); // charged forward: May 20-30 again
    const again = await move('2026-02-20'); // an earlier move's items pending: charged forward
    expect((again.body as Schemas['Subscription']).billed_until).toBe('2026-06-20');
    await s.advance('2026-06-20T01:00:00Z');
    // Paid to May 30; May 31 - Jun 19 (20 of 31 days) charged, then the period: 20.00 + 31.00.
    expect(await invoicesOf(s.sub.id)).toEqual([
      ['period', '2026-04-30', '2026-05-31', '31.00'],
      ['period', '2026-06-20', '2026-07-20', '51.00'],
    ]);
  });

  it('the current period start is as without it; any other day, a trial or canceled is 422', async () => {
    const usual = await imported({ billed_until: '2026-04-30' });
    expect(usual.res.status, usual.res.text).toBe(201);
    await usual.work();
    expect(await invoicesOf(usual.sub.id)).toEqual([['period', '2026-04-30', '2026-05-31', '31.00']]);

    const wrong = expectProblem((await imported({ billed_until: '2026-06-01' })).res, 422, 'unprocessable');
    expect(wrong.errors).toEqual([
      expect.objectContaining({
        field: '/billed_until',
        message: 'must be 2026-05-31 (the current period billed elsewhere) or 2026-04-30 (invoiced here)',
      }),
    ]);
    for (const extra of [
      { status: 'trialing', trial_end: '2026-06-01' },
      { status: 'trialing' }, // a trial without an end (retest14 #3)
      { status: 'canceled' },
      { start_date: '2026-06-01' }, // not started: no period is current
      { end_date: '2026-04-01' }, // ended before its current period
    ]) {
      const refused = expectProblem(
        (await imported({ billed_until: '2026-05-31', ...extra })).res,
        422,
        'unprocessable',
      );
      expect(refused.errors?.map((e) => e.field)).toEqual(['/billed_until']);
    }
  });
});

describe('a pause of an imported subscription', () => {
  it("paused and resumed on its period's first day leaves nothing: a change then credits the days as paid there (invariants4 #3)", async () => {
    // Imported on pro (62.00 paid there) from May 15 through Jun 15, paused and resumed on May 15.
    // Before, the resume invoiced the period whole (62.00, less the pause's credit: 0.00), and a
    // move down to basic then credited none of the old system's 62.00 and charged basic's 31.00.
    const s = await imported(
      { plan_id: proId, start_date: '2026-05-15', billed_until: '2026-06-15' },
      '2026-05-15T10:00:00Z',
    );
    expect(s.res.status, s.res.text).toBe(201);
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).send({})).status).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/resume`)).status).toBe(200);
    const pending = async () =>
      (
        (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true }))
          .body as Schemas['InvoiceItemList']
      ).data
        .map((i) => i.amount)
        .sort();
    expect(await invoicesOf(s.sub.id)).toEqual([]);
    expect(await pending()).toEqual([]);
    const down = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: planId });
    expect(down.status, down.text).toBe(200);
    expect(await pending()).toEqual(['-62.00', '31.00']);
    // A cancellation is not prorated: the month costs basic's 31.00, and the rest of the 62.00
    // paid there goes to the balance.
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await s.work();
    const user = (await t.api.get(`/api/v1/users/${s.sub.user_id}`)).body as Schemas['User'];
    expect(user.balance).toBe('31.00');
  });
});

describe('the end of an imported subscription', () => {
  it('after its start date moved back, gives back the import credit carried forward (invariants5 #1)', async () => {
    const plan = async (amount: string) =>
      (
        (
          await t.api.post('/api/v1/plans').send({
            code: `e${amount}-${Date.now()}`,
            name: `e${amount}`,
            interval: 'month',
            price: { model: 'flat', amount },
          })
        ).body as Schemas['Plan']
      ).id;
    const [p45, p19] = [await plan('45.00'), await plan('19.99')];
    // 45.00 paid there for Apr 4 - May 4; on Apr 7 the start moves back to Mar 15 (periods to
    // Apr 15, then Apr 15 - May 15) and the plan down to 19.99. Apr 15's renewal (19.99 and the
    // days to it) nets most of the import's credit of Apr 15 - May 4 (28.50); 3.35 is carried.
    const s = await imported(
      {
        plan_id: p45,
        start_date: '2026-04-04',
        billed_until: '2026-05-04',
        payment_method: 'pm_card_visa',
        payment_rail: 'card',
      },
      '2026-04-07T10:00:00Z',
    );
    expect(s.res.status, s.res.text).toBe(201);
    await s.work();
    for (const body of [{ start_date: '2026-03-15' }, { plan_id: p19 }]) {
      const res = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send(body);
      expect(res.status, res.text).toBe(200);
    }
    await s.advance('2026-04-22T10:00:00Z');
    const pending = (
      (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true }))
        .body as Schemas['InvoiceItemList']
    ).data.map((i) => i.amount);
    expect(pending.sort()).toEqual(['-11.61', '-3.35']);
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await s.advance('2026-04-25T10:00:00Z');
    // Both go back (before, the 3.35 was cut: only credits of days before the first invoice
    // counted as paid there).
    const user = (await t.api.get(`/api/v1/users/${s.sub.user_id}`)).body as Schemas['User'];
    expect(user.balance).toBe('14.96');
  });

  it('gives back the days a credit of the imported period paid (invariants3 #3)', async () => {
    // Imported on pro (62.00) through May 31, down to basic on May 15: pro's 16 days credited
    // (32.00), basic's charged (16.00). June's invoice nets them: 15.00. A pause on Jun 10 credits
    // June's 20 days left (20.67), paid by the card and by the old system's money. The end gives
    // it all back: before, only what invoices here billed (15.00) went back.
    const s = await imported({
      plan_id: proId,
      billed_until: '2026-05-31',
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    expect(s.res.status, s.res.text).toBe(201);
    expect((await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: planId })).status).toBe(
      200,
    );
    await s.advance('2026-06-10T00:00:00Z');
    expect(await invoicesOf(s.sub.id)).toEqual([['period', '2026-05-31', '2026-06-30', '15.00']]);
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).send({})).status).toBe(200);
    const pending = (
      (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true }))
        .body as Schemas['InvoiceItemList']
    ).data;
    expect(pending.map((i) => i.amount)).toEqual(['-20.67']);
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await s.work();
    const user = (await t.api.get(`/api/v1/users/${s.sub.user_id}`)).body as Schemas['User'];
    expect(user.balance).toBe('20.67');
  });

  it('credits the imported days at the price paid there, after a change with none (invariants3 #1)', async () => {
    // Imported on basic (31.00 paid there) through May 31; on May 15 to pro with `none`: the 16
    // days left are still paid at 31.00. A pause credits them at that (16.00, not pro's 32.00),
    // and a change back to basic credits and charges nothing.
    const paused = await imported({ billed_until: '2026-05-31' });
    expect(
      (
        await t.api
          .patch(`/api/v1/subscriptions/${paused.sub.id}`)
          .send({ plan_id: proId, proration_behavior: 'none' })
      ).status,
    ).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${paused.sub.id}/pause`).send({})).status).toBe(200);
    const pending = async (id: string) =>
      (
        (await t.api.get(`/api/v1/subscriptions/${id}/invoice-items`).query({ pending: true }))
          .body as Schemas['InvoiceItemList']
      ).data.map((i) => i.amount);
    expect(await pending(paused.sub.id)).toEqual(['-16.00']);

    const back = await imported({ billed_until: '2026-05-31' });
    for (const [plan_id, proration_behavior] of [
      [proId, 'none'],
      [planId, 'create_prorations'],
    ])
      expect(
        (await t.api.patch(`/api/v1/subscriptions/${back.sub.id}`).send({ plan_id, proration_behavior }))
          .status,
      ).toBe(200);
    expect(await pending(back.sub.id)).toEqual([]);
  });

  it("credits an upgrade invoiced at once with the import's payment in it (invariants3 #2)", async () => {
    // Imported on basic (31.00 paid there); on May 15 to pro with `always_invoice`: its invoice
    // credits basic's 16 days (16.00) and charges pro's (32.00). On May 20 a pause: pro's 11 days
    // left were paid 62.00 a period (31.00 there, 31.00 here), so 22.00 (not "31.00 paid of 62.00").
    const s = await imported({
      billed_until: '2026-05-31',
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    const changed = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ plan_id: proId, proration_behavior: 'always_invoice' });
    expect(changed.status, changed.text).toBe(200);
    await s.advance('2026-05-20T00:00:00Z');
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).send({})).status).toBe(200);
    const pending = (
      (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true }))
        .body as Schemas['InvoiceItemList']
    ).data;
    expect(pending.map((i) => i.amount)).toEqual(['-22.00']);
  });

  it('gives back no more than the old system was paid, after a change with none (invariants3 #1)', async () => {
    // Imported on basic (31.00 paid there) through May 31; on May 15 to pro (62.00) with `none`,
    // which bills nothing; a pause, then the end. Pro's days were never paid: at most the 31.00
    // paid there may go back (the pause credits pro's 16 days at its list price, 32.00).
    const s = await imported({ billed_until: '2026-05-31' });
    expect(s.res.status, s.res.text).toBe(201);
    const changed = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ plan_id: proId, proration_behavior: 'none' });
    expect(changed.status, changed.text).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/pause`).send({})).status).toBe(200);
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await s.work();
    const user = (await t.api.get(`/api/v1/users/${s.sub.user_id}`)).body as Schemas['User'];
    expect(Number(user.balance)).toBeGreaterThan(0);
    expect(Number(user.balance)).toBeLessThanOrEqual(31);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
