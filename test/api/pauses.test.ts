// Pauses on test clocks: nothing is invoiced for time paused (the unused days of a period paid
// are credited, renewals during the pause bill nothing, a resume charges the rest of its period),
// the worker resumes on resumes_at, and MRR counts a paused subscription as zero.
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

type Subscription = Schemas['Subscription'];

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
  const plan = await t.api
    .post('/api/v1/plans')
    .send({ code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '30.00' } });
  planId = (plan.body as Schemas['Plan']).id;
});

/**
 * A customer in DE on Basic (30.00 a month) from 2026-01-01, on a clock; January invoiced. `extra`
 * goes into the subscription's creation.
 */
async function subscribed(extra: Record<string, unknown> = {}) {
  const clock = (
    await t.api.post('/api/v1/test-clocks').send({ name: 'pauses', frozen_time: '2026-01-01T00:00:00Z' })
  ).body as Schemas['TestClock'];
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
      return (res.body as Schemas['InvoiceList']).data.reverse(); // oldest first
    },
    async pause(body?: Record<string, unknown>) {
      const req = t.api.post(`/api/v1/subscriptions/${sub.id}/pause`);
      const res = body ? await req.send(body) : await req;
      expect(res.status, res.text).toBe(200);
      return res.body as Subscription;
    },
    async resume() {
      const res = await t.api.post(`/api/v1/subscriptions/${sub.id}/resume`);
      expect(res.status, res.text).toBe(200);
      return res.body as Subscription;
    },
    async events() {
      const res = await t.api.get('/api/v1/events').query({ resource_id: sub.id, limit: 100 });
      return (res.body as Schemas['EventList']).data.map((e) => e.type);
    },
  };
}

const lines = (i: Schemas['Invoice']) => i.lines.map((l) => [l.type, l.amount, l.period_start, l.period_end]);

describe('a pause', () => {
  it('credits the unused days, invoices nothing while paused, and the worker resumes it on resumes_at', async () => {
    const s = await subscribed();
    await s.advance('2026-01-11T09:00:00Z');
    const paused = await s.pause({ resumes_at: '2026-03-16' });
    expect(paused).toMatchObject({
      status: 'paused',
      paused_at: '2026-01-11T09:00:00.000Z',
      resumes_at: '2026-03-16',
    });
    // 21 of January's 31 days: 30.00 × 21 / 31 = 20.32 (20.3225...).
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end])).toEqual([
      ['proration_credit', '-20.32', '2026-01-11', '2026-02-01'],
    ]);

    await s.advance('2026-03-20T00:00:00Z');
    // February and March 1-15 invoiced nothing; resumed on March 16: 16 of 31 days is 15.48,
    // less the credit, is a credit still: no invoice now, both wait for April's.
    expect((await s.invoices()).map((i) => i.period_start)).toEqual(['2026-01-01']);
    expect(await s.get()).toMatchObject({
      status: 'active',
      paused_at: null,
      resumes_at: null,
      billed_until: '2026-04-01',
    });
    await s.advance('2026-04-02T00:00:00Z');
    const april = (await s.invoices()).at(-1)!;
    expect(lines(april)).toEqual([
      ['subscription', '30.00', '2026-04-01', '2026-05-01'],
      ['proration', '-20.32', '2026-01-11', '2026-02-01'],
      ['proration', '15.48', '2026-03-16', '2026-04-01'],
    ]);
    expect(april).toMatchObject({ subtotal: '25.16', tax_total: '4.78', total: '29.94' });
    const events = await s.events();
    expect(events).toContain('subscription.paused');
    expect(events).toContain('subscription.resumed');
    expect(events.filter((e) => e === 'subscription.renewed').length).toBeGreaterThanOrEqual(3);
  });

  it("resumed by the worker mid-period, is invoiced and collected at the resume's time, not the advance's (lifecycle8 #1)", async () => {
    const s = await subscribed({ payment_method: 'pm_card_visa', payment_rail: 'card' });
    await s.advance('2026-01-25T00:00:00Z');
    await s.pause({ resumes_at: '2026-04-10' });
    // One advance well past the resume: its step happens on 2026-04-10 on the clock.
    await s.advance('2026-04-20T12:00:00Z');
    const resumed = (await s.invoices()).find((i) => i.period_start === '2026-04-10');
    expect(resumed, JSON.stringify((await s.invoices()).map((i) => i.period_start))).toBeDefined();
    expect(resumed).toMatchObject({ status: 'paid', finalized_at: '2026-04-10T00:00:00.000Z' });
    const payments = (await t.api.get(`/api/v1/invoices/${resumed!.id}/payments`))
      .body as Schemas['PaymentList'];
    // Collected on the resume's day, as the renewals around it are, not on the advance's.
    expect(
      payments.data.map((p) => [p.status, p.submitted_at?.slice(0, 10), p.settled_at?.slice(0, 10)]),
    ).toEqual([['succeeded', '2026-04-10', '2026-04-10']]);
  });

  it('resumed by hand mid-period: the rest of the period is invoiced at once with the credit', async () => {
    const s = await subscribed();
    await s.advance('2026-01-25T00:00:00Z');
    await s.pause();
    await s.advance('2026-02-15T00:00:00Z');
    expect((await s.invoices()).length).toBe(1);
    const resumed = await s.resume();
    expect(resumed).toMatchObject({ status: 'active', billed_until: '2026-03-01' });
    const invoices = await s.invoices();
    expect(invoices.length).toBe(2);
    // 7 of 31 days credited (6.77); 14 of February's 28 charged (15.00).
    expect(lines(invoices[1]!)).toEqual([
      ['proration', '-6.77', '2026-01-25', '2026-02-01'],
      ['proration', '15.00', '2026-02-15', '2026-03-01'],
    ]);
    expect(invoices[1]).toMatchObject({
      kind: 'proration',
      subtotal: '8.23',
      tax_total: '1.56',
      total: '9.79',
    });
    await s.advance('2026-03-01T00:00:00Z');
    expect((await s.invoices()).map((i) => [i.period_start, i.subtotal])).toEqual([
      ['2026-01-01', '30.00'],
      ['2026-02-15', '8.23'],
      ['2026-03-01', '30.00'],
    ]);
  });

  it('refuses invoicing by hand a period it was paused or resumed in (422), which would bill it whole (retest5)', async () => {
    const s = await subscribed();
    await s.advance('2026-01-25T00:00:00Z');
    await s.pause();
    await s.advance('2026-03-10T00:00:00Z');
    const byHand = (date: string) => t.api.post(`/api/v1/subscriptions/${s.sub.id}/invoices`).send({ date });
    // February, paused whole, while paused.
    const february = expectProblem(await byHand('2026-02-10'), 422, 'unprocessable');
    expect(february.errors).toEqual([
      expect.objectContaining({
        field: '/date',
        message: 'in the period 2026-02-01 to 2026-03-01, paused in part or whole',
      }),
    ]);
    await s.resume();
    // March, resumed in: its rest was invoiced by the resume; February still refused after it.
    for (const date of ['2026-03-20', '2026-02-10']) expectProblem(await byHand(date), 422, 'unprocessable');
    expect((await s.invoices()).map((i) => [i.kind, i.period_start])).toEqual([
      ['period', '2026-01-01'],
      ['proration', '2026-03-10'],
    ]);
    // January, invoiced before the pause: its invoice, as before.
    const january = await byHand('2026-01-10');
    expect(january.status, january.text).toBe(200);
  });

  it('refuses invoicing again a period voided before a pause in it, which would bill days twice (pause13 #2)', async () => {
    const byHand = (id: string, date: string) =>
      t.api.post(`/api/v1/subscriptions/${id}/invoices`).send({ date });
    // Voided on the 5th, paused on the 11th and resumed on the 12th: the resume invoices the 12th
    // to the end; January whole again would bill those days twice, and the paused day.
    const s = await subscribed();
    const [january] = await s.invoices();
    await s.advance('2026-01-05T00:00:00Z');
    expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`)).status).toBe(200);
    await s.advance('2026-01-11T09:00:00Z');
    await s.pause();
    const whilePaused = expectProblem(await byHand(s.sub.id, '2026-01-11'), 422, 'unprocessable');
    expect(whilePaused.errors).toEqual([
      expect.objectContaining({ message: 'in the period 2026-01-01 to 2026-02-01, paused in part or whole' }),
    ]);
    await s.advance('2026-01-12T10:00:00Z');
    await s.resume();
    expectProblem(await byHand(s.sub.id, '2026-01-11'), 422, 'unprocessable');
    expect((await s.invoices()).map((i) => [i.status, i.period_start, i.subtotal])).toEqual([
      ['void', '2026-01-01', '30.00'],
      ['open', '2026-01-12', '19.35'],
    ]);
    // Voided after the pause (its credit pending): invoiced again, the credit netting it; also
    // at the pause's very instant on the clock, and with a second pause after the void, priced
    // by the voided invoice too (the credits net it: pause14 #4). Not when the first pause was
    // undone the day it was made: nothing prices the period then, as if voided before it.
    const variants = [
      ['later', 9.68],
      ['same instant', 9.68],
      ['second pause', 14.52], // 30.00 less Jan 11-14 (3.87) and Jan 20-31 (11.61)
      ['undone first', undefined],
      ['undone, then voided', 30], // no day paused: the period is invoiced again whole (void15 #4)
    ] as const;
    for (const [variant, subtotal] of variants) {
      const t2 = await subscribed();
      const [first] = await t2.invoices();
      await t2.advance('2026-01-11T09:00:00Z');
      await t2.pause();
      if (variant === 'second pause') {
        await t2.advance('2026-01-15T09:00:00Z');
        await t2.resume();
      } else if (variant === 'undone first' || variant === 'undone, then voided') await t2.resume();
      if (variant !== 'same instant') await t2.advance('2026-01-15T10:00:00Z');
      expect((await t.api.post(`/api/v1/invoices/${first!.id}/void`)).status).toBe(200);
      if (variant === 'second pause' || variant === 'undone first') {
        await t2.advance('2026-01-20T09:00:00Z');
        await t2.pause();
      }
      const again = await byHand(t2.sub.id, '2026-01-11');
      if (subtotal === undefined) {
        expectProblem(again, 422, 'unprocessable');
        continue;
      }
      expect(again.status, `${variant}: ${again.text}`).toBe(201);
      expect((again.body as Schemas['Invoice']).subtotal, variant).toBe(subtotal.toFixed(2));
    }
  });

  it('after a void before any pause, a pause and a resume the same day count as none: the period is invoiced again whole (retest15 #2)', async () => {
    const s = await subscribed();
    const [january] = await s.invoices();
    await s.advance('2026-01-05T00:00:00Z');
    expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`)).status).toBe(200);
    await s.advance('2026-01-11T09:00:00Z');
    await s.pause();
    await s.advance('2026-01-11T10:00:00Z');
    await s.resume();
    expect((await s.invoices()).map((i) => [i.kind, i.status])).toEqual([['period', 'void']]);
    const pending = await t.api
      .get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`)
      .query({ pending: true });
    expect((pending.body as Schemas['InvoiceItemList']).data).toEqual([]);
    const again = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/invoices`).send({ date: '2026-01-11' });
    expect(again.status, again.text).toBe(201);
    expect((again.body as Schemas['Invoice']).subtotal).toBe('30.00');
  });

  it('after a void before any pause, the days a resume invoiced are credited by a later pause and prorated by a change (void15 #1, #2)', async () => {
    const pro = await t.api.post('/api/v1/plans').send({
      code: 'pro-after-void-resume',
      name: 'Pro',
      interval: 'month',
      price: { model: 'flat', amount: '60.00' },
    });
    const s = await subscribed();
    const [january] = await s.invoices();
    await s.advance('2026-01-07T09:00:00Z');
    expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`)).status).toBe(200);
    await s.advance('2026-01-08T09:00:00Z');
    await s.pause(); // nothing paid: nothing credited
    await s.advance('2026-01-12T09:00:00Z');
    await s.resume(); // Jan 12-31 invoiced at once: 30.00 x 20 / 31
    await s.advance('2026-01-20T09:00:00Z');
    await s.pause(); // Jan 20-31 were paid by the resume's invoice: credited
    await s.advance('2026-01-25T09:00:00Z');
    await s.resume(); // the credit ends: it keeps Jan 20-24 (5 days)
    await s.advance('2026-01-28T09:00:00Z');
    const up = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ plan_id: (pro.body as Schemas['Plan']).id });
    expect(up.status, up.text).toBe(200);
    expect((await s.invoices()).map((i) => [i.kind, i.status, i.subtotal])).toEqual([
      ['period', 'void', '30.00'],
      ['proration', 'open', '19.35'],
    ]);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    // Basic Jan 28-31 credited (3.87), Pro charged for them (7.74).
    const byDay = (a: string[], b: string[]) => a[2]!.localeCompare(b[2]!) || b[0]!.localeCompare(a[0]!);
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end]).sort(byDay)).toEqual([
      ['proration_credit', '-4.84', '2026-01-20', '2026-01-25'],
      ['proration_credit', '-3.87', '2026-01-28', '2026-02-01'],
      ['proration_charge', '7.74', '2026-01-28', '2026-02-01'],
    ]);
  });

  describe("after a void of the period's invoice, once a change was prorated against it (pause14)", () => {
    let proId: string;
    beforeAll(async () => {
      const pro = await t.api.post('/api/v1/plans').send({
        code: 'pro-voided-period',
        name: 'Pro',
        interval: 'month',
        price: { model: 'flat', amount: '60.00' },
      });
      proId = (pro.body as Schemas['Plan']).id;
    });
    const pending = async (id: string) =>
      (
        (await t.api.get(`/api/v1/subscriptions/${id}/invoice-items`).query({ pending: true }))
          .body as Schemas['InvoiceItemList']
      ).data
        .map((i) => [i.kind, i.amount, i.period_start, i.period_end])
        .sort((a, b) => a[2]!.localeCompare(b[2]!) || a[0]!.localeCompare(b[0]!));
    const invoiceAgain = async (id: string) => {
      const res = await t.api.post(`/api/v1/subscriptions/${id}/invoices`).send({ date: '2026-01-20' });
      expect(res.status, res.text).toBe(201);
      return res.body as Schemas['Invoice'];
    };
    /** Basic from Jan 1, moved to Pro on Jan 11 (prorated), January's invoice voided on Jan 13. */
    async function upgradedThenVoided() {
      const s = await subscribed();
      const [january] = await s.invoices();
      await s.advance('2026-01-11T09:00:00Z');
      const up = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: proId });
      expect(up.status, up.text).toBe(200);
      await s.advance('2026-01-13T09:00:00Z');
      expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`)).status).toBe(200);
      return s;
    }

    it('a change back is prorated against it: each day is billed at one price (#3)', async () => {
      const s = await upgradedThenVoided();
      await s.advance('2026-01-20T09:00:00Z');
      const back = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: planId });
      expect(back.status, back.text).toBe(200);
      // Basic's credit ends on the 20th (9 of 31 days: 8.71), Pro's charge too (17.42).
      expect(await pending(s.sub.id)).toEqual([
        ['proration_charge', '17.42', '2026-01-11', '2026-01-20'],
        ['proration_credit', '-8.71', '2026-01-11', '2026-01-20'],
      ]);
      // Invoiced again: Basic Jan 1-10, Pro Jan 11-19, Basic Jan 20-31 (9.68 + 17.42 + 11.61).
      const again = await invoiceAgain(s.sub.id);
      expect(again.subtotal).toBe('38.71');
    });

    it('a pause shortens the pending charge, and the resume brings it back (#1)', async () => {
      const s = await upgradedThenVoided();
      await s.advance('2026-01-15T09:00:00Z');
      await s.pause();
      await s.advance('2026-01-20T09:00:00Z');
      await s.resume();
      // Nothing invoiced at the resume: Basic's credit stands, Pro's charge is back from the 20th.
      expect((await s.invoices()).map((i) => [i.kind, i.status])).toEqual([['period', 'void']]);
      expect(await pending(s.sub.id)).toEqual([
        ['proration_charge', '7.74', '2026-01-11', '2026-01-15'],
        ['proration_credit', '-20.32', '2026-01-11', '2026-02-01'],
        ['proration_charge', '23.23', '2026-01-20', '2026-02-01'],
      ]);
      // As without the void: 30.00 - 20.32 + 7.74 + 23.23, the paused days unbilled.
      expect((await invoiceAgain(s.sub.id)).subtotal).toBe('40.65');
    });

    it('voided again once issued, it gives its items back: a change before the period is invoiced a third time is prorated as they were (retest16 #3)', async () => {
      const s = await upgradedThenVoided();
      const second = await invoiceAgain(s.sub.id);
      expect(second.subtotal).toBe('50.33');
      expect((await t.api.post(`/api/v1/invoices/${second.id}/finalize`)).status).toBe(200);
      expect((await t.api.post(`/api/v1/invoices/${second.id}/void`)).status).toBe(200);
      expect(await pending(s.sub.id)).toEqual([
        ['proration_charge', '40.65', '2026-01-11', '2026-02-01'],
        ['proration_credit', '-20.32', '2026-01-11', '2026-02-01'],
      ]);
      // Back to Basic on the 20th, as without the second void: Pro Jan 11-19 only (#3 above).
      await s.advance('2026-01-20T09:00:00Z');
      const back = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: planId });
      expect(back.status, back.text).toBe(200);
      expect(await pending(s.sub.id)).toEqual([
        ['proration_charge', '17.42', '2026-01-11', '2026-01-20'],
        ['proration_credit', '-8.71', '2026-01-11', '2026-01-20'],
      ]);
      expect((await invoiceAgain(s.sub.id)).subtotal).toBe('38.71');
    });

    it('paused while the period invoiced again stood, voided again, resumed: the paused days stay unbilled (retest18 #3)', async () => {
      const s = await upgradedThenVoided();
      const made = await t.api
        .post(`/api/v1/subscriptions/${s.sub.id}/invoices`)
        .send({ date: '2026-01-13' });
      expect(made.status, made.text).toBe(201);
      const second = made.body as Schemas['Invoice'];
      expect(second.subtotal).toBe('50.33');
      expect((await t.api.post(`/api/v1/invoices/${second.id}/finalize`)).status).toBe(200);
      // Paused on the 15th, while the second invoice paid Pro's days: their credit is at Pro's price.
      await s.advance('2026-01-15T09:00:00Z');
      await s.pause();
      expect(await pending(s.sub.id)).toEqual([['proration_credit', '-32.90', '2026-01-15', '2026-02-01']]);
      // Voided on the 17th: its items are pending again, and the pause is as if made after the
      // void: Pro's charge shortened to Jan 11-14 instead of a credit.
      await s.advance('2026-01-17T09:00:00Z');
      expect((await t.api.post(`/api/v1/invoices/${second.id}/void`)).status).toBe(200);
      expect(await pending(s.sub.id)).toEqual([
        ['proration_charge', '7.74', '2026-01-11', '2026-01-15'],
        ['proration_credit', '-20.32', '2026-01-11', '2026-02-01'],
      ]);
      // The subscription changed (what its resume brings back): its newest event shows it as GET does.
      const events = (
        (await t.api.get('/api/v1/events').query({ resource_id: s.sub.id, limit: 100 }))
          .body as Schemas['EventList']
      ).data;
      const latest = events[events.length - 1];
      expect((latest!.data as unknown as Subscription).version).toBe((await s.get()).version);
      await s.advance('2026-01-20T09:00:00Z');
      await s.resume();
      // As with a single void: Basic Jan 1-10, Pro Jan 11-14 and 20-31 (30.00 - 20.32 + 7.74 +
      // 23.23); before, the resume ended the credit at Basic's price and billed 45.49.
      expect(await pending(s.sub.id)).toEqual([
        ['proration_charge', '7.74', '2026-01-11', '2026-01-15'],
        ['proration_credit', '-20.32', '2026-01-11', '2026-02-01'],
        ['proration_charge', '23.23', '2026-01-20', '2026-02-01'],
      ]);
      expect((await invoiceAgain(s.sub.id)).subtotal).toBe('40.65');
    });

    it('an invoice made again, issued and voided in turn, is made again with the items it netted (retest13 #1)', async () => {
      const finalize = async (invoice: Schemas['Invoice']) =>
        expect((await t.api.post(`/api/v1/invoices/${invoice.id}/finalize`)).status).toBe(200);
      const voidIt = async (invoice: Schemas['Invoice']) =>
        expect((await t.api.post(`/api/v1/invoices/${invoice.id}/void`)).status).toBe(200);
      // Upgraded on the 11th: Basic Jan 1-10 and Pro Jan 11-31 (30.00 - 20.32 + 40.65), each time.
      const changed = await upgradedThenVoided();
      const second = await invoiceAgain(changed.sub.id);
      expect(second.subtotal).toBe('50.33');
      await finalize(second);
      await voidIt(second);
      const third = await invoiceAgain(changed.sub.id);
      expect(third.lines.map((l) => [l.type, l.amount])).toEqual([
        ['subscription', '30.00'],
        ['proration', '-20.32'],
        ['proration', '40.65'],
      ]);
      await finalize(third);
      await voidIt(third);
      expect((await invoiceAgain(changed.sub.id)).subtotal).toBe('50.33');
      expect(await pending(changed.sub.id)).toEqual([]);

      // Paused on the 7th, voided, made again (issued), voided again: the paused days stay unbilled,
      // and the resume on the 20th charges Jan 20-31 once (Jan 1-6 and 20-31 served: 5.81 + 11.61).
      const paused = await subscribed();
      const [january] = await paused.invoices();
      await paused.advance('2026-01-07T09:00:00Z');
      await paused.pause();
      await paused.advance('2026-01-10T09:00:00Z');
      await voidIt(january!);
      const again = await invoiceAgain(paused.sub.id);
      expect(again.subtotal).toBe('5.81');
      await finalize(again);
      await voidIt(again);
      const thrice = await invoiceAgain(paused.sub.id);
      expect(thrice.subtotal).toBe('5.81');
      await finalize(thrice);
      await paused.advance('2026-01-20T10:00:00Z');
      await paused.resume();
      expect((await paused.invoices()).map((i) => [i.kind, i.status, i.subtotal])).toEqual([
        ['period', 'void', '30.00'],
        ['period', 'void', '5.81'],
        ['period', 'open', '5.81'],
        ['proration', 'open', '11.61'],
      ]);
    });
  });

  it('after a pause and a void, the resume ends the credit at what was paid for the days (pause14 #2)', async () => {
    const off = await t.api
      .post('/api/v1/coupons')
      .send({ name: '15 off, voided period', percent_off: '15', duration: 'forever' });
    const s = await subscribed({ coupon_id: (off.body as Schemas['Coupon']).id });
    const [january] = await s.invoices();
    expect(january!.total).toBe('30.35'); // 25.50 and its VAT
    await s.advance('2026-01-11T09:00:00Z');
    await s.pause();
    await s.advance('2026-01-13T09:00:00Z');
    expect((await t.api.post(`/api/v1/invoices/${january!.id}/void`)).status).toBe(200);
    await s.advance('2026-01-20T09:00:00Z');
    await s.resume();
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    // The paused days Jan 11-19 at 25.50 paid: 25.50 x 9 / 31 = 7.40 (not 30.00's 8.71).
    expect(pending.data.map((i) => [i.amount, i.period_start, i.period_end])).toEqual([
      ['-7.40', '2026-01-11', '2026-01-20'],
    ]);
    const again = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/invoices`).send({ date: '2026-01-20' });
    expect(again.status, again.text).toBe(201);
    // 30.00 - 7.40 - 4.50 off: the 22 days served at 25.50 (25.50 x 22 / 31 = 18.10).
    expect(again.body as Schemas['Invoice']).toMatchObject({ subtotal: '18.10', total: '21.54' });
  });

  it('a change after a mid-period resume is prorated like any, and so is a second pause', async () => {
    const pro = await t.api.post('/api/v1/plans').send({
      code: 'pro-after-resume',
      name: 'Pro',
      interval: 'month',
      price: { model: 'flat', amount: '60.00' },
    });
    const s = await subscribed();
    await s.advance('2026-01-10T00:00:00Z');
    await s.pause();
    await s.advance('2026-02-15T00:00:00Z');
    await s.resume(); // [Feb 15, Mar 1) charged 15.00: less than January's credit, both wait
    await s.advance('2026-02-22T00:00:00Z');
    const changed = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ plan_id: (pro.body as Schemas['Plan']).id });
    expect(changed.status, changed.text).toBe(200);
    await s.advance('2026-02-26T00:00:00Z');
    await s.pause();
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    // The resume's charge was still pending (never paid): the change ends it on Feb 22 (Basic's
    // 7 of 28 days, 7.50) rather than credit it, and the pause ends Pro's on Feb 26 (4 days, 8.57).
    const byDay = (a: string[], b: string[]) => a[2]!.localeCompare(b[2]!) || a[0]!.localeCompare(b[0]!);
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start, i.period_end]).sort(byDay)).toEqual([
      ['proration_credit', '-21.29', '2026-01-10', '2026-02-01'],
      ['proration_charge', '7.50', '2026-02-15', '2026-02-22'],
      ['proration_charge', '8.57', '2026-02-22', '2026-02-26'],
    ]);
    expect(pending.data.find((i) => i.amount === '8.57')!.description).toMatch(
      /^Remaining time on Pro .* from 2026-02-22 to 2026-02-26 \(4 of 28 days\)$/,
    );
    // Each shortening is an invoice_item.updated with what it changed.
    const events = (await t.api.get('/api/v1/events').query({ type: 'invoice_item.updated', limit: 100 }))
      .body as Schemas['EventList'];
    const shortened = events.data.find((e) => (e.data as { amount?: string }).amount === '8.57')!;
    expect(shortened.previous).toMatchObject({ amount: '15.00', period_end: '2026-03-01' });
  });

  it('with a percentage off: a change after a resume credits the resumed days at what they cost after it', async () => {
    const half = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'half off', percent_off: '50', duration: 'forever' });
    const pro = await t.api.post('/api/v1/plans').send({
      code: 'pro-after-discounted-resume',
      name: 'Pro',
      interval: 'month',
      price: { model: 'flat', amount: '60.00' },
    });
    const s = await subscribed({ coupon_id: (half.body as Schemas['Coupon']).id });
    await s.advance('2026-01-25T00:00:00Z');
    await s.pause();
    await s.advance('2026-02-10T00:00:00Z');
    // January's 7 unused days of the 15.00 paid are credited (3.39); [Feb 10, Mar 1) is charged
    // 20.36, 10.18 once half is off: invoiced at once with the credit.
    await s.resume();
    expect(lines((await s.invoices())[1]!)).toEqual([
      ['proration', '-3.39', '2026-01-25', '2026-02-01'],
      ['proration', '20.36', '2026-02-10', '2026-03-01'],
      ['discount', '-10.18', '2026-02-10', '2026-03-01'],
    ]);
    await s.advance('2026-02-22T00:00:00Z');
    const changed = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ plan_id: (pro.body as Schemas['Plan']).id });
    expect(changed.status, changed.text).toBe(200);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    // Basic's last 7 of February's days were paid at half: 3.75 back (not 7.50); Pro's cost
    // 15.00, which the discount halves where it lands.
    expect(pending.data.map((i) => [i.kind, i.amount, i.period_start]).sort()).toEqual([
      ['proration_charge', '15.00', '2026-02-22'],
      ['proration_credit', '-3.75', '2026-02-22'],
    ]);
    await s.advance('2026-03-01T00:00:00Z');
    const march = (await s.invoices()).at(-1)!;
    // Charges 60.00 + 15.00, half off: 37.50; less the credit 3.75.
    expect(march).toMatchObject({ period_start: '2026-03-01', subtotal: '33.75' });
  });

  it('with a fixed amount off: a resume’s invoice does not take it, and a pause credits what was paid', async () => {
    const ten = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'ten off', amount_off: '10.00', duration: 'forever' });
    const s = await subscribed({ coupon_id: (ten.body as Schemas['Coupon']).id });
    // January: 30.00 less 10.00. Paused on Jan 10 (22 of 31 days: 20.00 × 22/31 = 14.19 back),
    // resumed on Feb 10 (19 of 28 days: 30.00 × 19/28 = 20.36), invoiced at once with the credit.
    expect((await s.invoices())[0]).toMatchObject({ subtotal: '20.00' });
    await s.advance('2026-01-10T00:00:00Z');
    await s.pause();
    await s.advance('2026-02-10T00:00:00Z');
    await s.resume();
    const resumed = (await s.invoices()).at(-1)!;
    expect(lines(resumed)).toEqual([
      ['proration', '-14.19', '2026-01-10', '2026-02-01'],
      ['proration', '20.36', '2026-02-10', '2026-03-01'],
    ]);
    expect(resumed).toMatchObject({ kind: 'proration', subtotal: '6.17' });
    // Paused again on Feb 20 (9 of 28 days): paid at 30.00 a month, 9.64 back.
    await s.advance('2026-02-20T00:00:00Z');
    await s.pause();
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data.map((i) => i.amount)).toEqual(['-9.64']);
  });

  it('paused and resumed the same day with a percentage off: nothing is invoiced, nothing owed', async () => {
    const half = await t.api
      .post('/api/v1/coupons')
      .send({ name: 'half again', percent_off: '50', duration: 'forever' });
    const s = await subscribed({ coupon_id: (half.body as Schemas['Coupon']).id });
    await s.advance('2026-01-11T00:00:00Z');
    await s.pause();
    await s.resume();
    // The pause credited 21 of 31 days at the 15.00 paid (10.16); the resume the same day ends
    // that credit on its first day instead of charging the days again: nothing is left.
    expect((await s.invoices()).length).toBe(1);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data).toEqual([]);
  });

  it('after a move whose charge is pending: resumed, the charge is back as it was, nothing invoiced (proration8 #1, #2)', async () => {
    const plan = async (code: string, amount: string) =>
      (
        (
          await t.api.post('/api/v1/plans').send({
            code: `${code}-${Date.now()}`,
            name: code,
            interval: 'month',
            price: { model: 'flat', amount },
          })
        ).body as Schemas['Plan']
      ).id;
    const odd = await plan('odd', '33.33');
    const pro = await plan('pro', '60.00');
    const pending = async (id: string) =>
      (
        (await t.api.get(`/api/v1/subscriptions/${id}/invoice-items`).query({ pending: true }))
          .body as Schemas['InvoiceItemList']
      ).data
        .map((i) => [i.amount, i.period_start, i.period_end])
        .sort();
    for (const none of [false, true]) {
      const s = await subscribed();
      await s.advance('2026-01-11T09:00:00Z');
      expect((await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: odd })).status).toBe(
        200,
      );
      // Basic's 21 days credited, Odd's charged: pending for February's invoice.
      const moved = [
        ['-20.32', '2026-01-11', '2026-02-01'],
        ['22.58', '2026-01-11', '2026-02-01'],
      ];
      expect(await pending(s.sub.id)).toEqual(moved);
      if (none) {
        // The days stay paid by Odd's pending charge (docs: a move with `none`).
        await s.advance('2026-01-12T09:00:00Z');
        const res = await t.api
          .patch(`/api/v1/subscriptions/${s.sub.id}`)
          .send({ plan_id: pro, proration_behavior: 'none' });
        expect(res.status, res.text).toBe(200);
      }
      await s.advance('2026-01-15T09:00:00Z');
      await s.pause();
      // Odd's charge ends on the pause.
      expect(await pending(s.sub.id)).toEqual([
        ['-20.32', '2026-01-11', '2026-02-01'],
        ['4.30', '2026-01-11', '2026-01-15'],
      ]);
      await s.advance('2026-01-15T10:00:00Z');
      await s.resume();
      // The same day: nothing at all is left of the pause, and nothing is invoiced.
      expect(await pending(s.sub.id)).toEqual(moved);
      expect((await s.invoices()).length).toBe(1);
      // February bills the month at its price and January's pending items: January cost
      // 30.00 - 20.32 + 22.58 = 32.26, as without the pause.
      await s.advance('2026-02-01T09:00:00Z');
      const february = (await s.invoices())[1]!;
      expect(february.subtotal).toBe(none ? '62.26' : '35.59');
    }
    // Resumed a day later: Odd's charge for the days from the resume on, at Odd's price.
    const s = await subscribed();
    await s.advance('2026-01-11T09:00:00Z');
    expect((await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: odd })).status).toBe(200);
    await s.advance('2026-01-12T09:00:00Z');
    expect(
      (
        await t.api
          .patch(`/api/v1/subscriptions/${s.sub.id}`)
          .send({ plan_id: pro, proration_behavior: 'none' })
      ).status,
    ).toBe(200);
    await s.advance('2026-01-15T09:00:00Z');
    await s.pause();
    await s.advance('2026-01-16T09:00:00Z');
    await s.resume();
    expect(await pending(s.sub.id)).toEqual([
      ['-20.32', '2026-01-11', '2026-02-01'],
      ['17.20', '2026-01-16', '2026-02-01'],
      ['4.30', '2026-01-11', '2026-01-15'],
    ]);
    expect((await s.invoices()).length).toBe(1);
  });

  it('after a move back to the period’s price with none: the move’s credit stays whole, no day paid twice (pause13 #1)', async () => {
    const pro = (
      (
        await t.api.post('/api/v1/plans').send({
          code: `pro-back-${Date.now()}`,
          name: 'Pro',
          interval: 'month',
          price: { model: 'flat', amount: '60.00' },
        })
      ).body as Schemas['Plan']
    ).id;
    // Basic, Pro (pending charge), back to Basic with none: Pro's charge still pays the days.
    for (const [resumeOn, february] of [
      ['2026-01-15T10:00:00Z', '50.33'],
      ['2026-01-20T09:00:00Z', '40.65'],
    ] as const) {
      const s = await subscribed();
      await s.advance('2026-01-11T09:00:00Z');
      expect((await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ plan_id: pro })).status).toBe(
        200,
      );
      await s.advance('2026-01-12T09:00:00Z');
      const back = await t.api
        .patch(`/api/v1/subscriptions/${s.sub.id}`)
        .send({ plan_id: planId, proration_behavior: 'none' });
      expect(back.status, back.text).toBe(200);
      await s.advance('2026-01-15T09:00:00Z');
      await s.pause();
      await s.advance(resumeOn);
      await s.resume();
      await s.advance('2026-02-01T09:00:00Z');
      // February's 30.00 and January's items. The same day: as without the pause, -20.32 + 40.65
      // (Pro's 21 days). Resumed on the 20th: -20.32, and Pro's 4 days before the pause and its
      // 12 after, 7.74 + 23.23.
      expect((await s.invoices())[1]!.subtotal, resumeOn).toBe(february);
    }
  });

  it('a quantity changed while paused, on a flat price, is the price it was: the resume charges nothing (invariants4 #1)', async () => {
    const pro = (
      (
        await t.api.post('/api/v1/plans').send({
          code: `pro-qty-${Date.now()}`,
          name: 'Pro',
          interval: 'month',
          price: { model: 'flat', amount: '60.00' },
        })
      ).body as Schemas['Plan']
    ).id;
    for (const moved of [true, false]) {
      const s = await subscribed();
      await s.advance('2026-01-11T09:00:00Z');
      // Moved with none: the days left stay paid at January's 30.00.
      if (moved) {
        const none = await t.api
          .patch(`/api/v1/subscriptions/${s.sub.id}`)
          .send({ plan_id: pro, proration_behavior: 'none' });
        expect(none.status, none.text).toBe(200);
      }
      await s.pause();
      const qty = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ quantity: 2 });
      expect(qty.status, qty.text).toBe(200);
      expect((qty.body as Subscription).plan_cost).toBe(moved ? '60.00' : '30.00');
      await s.resume();
      // Paused and resumed the same day, the price per period as it was: nothing at all.
      const invoices = await s.invoices();
      expect(
        invoices.map((i) => i.kind),
        String(moved),
      ).toEqual(['period']);
      const pending = await t.api
        .get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`)
        .query({ pending: true });
      expect((pending.body as Schemas['InvoiceItemList']).data, String(moved)).toEqual([]);
      // February bills the new price whole, with nothing of January's.
      await s.advance('2026-02-01T09:00:00Z');
      expect(
        (await s.invoices()).map((i) => i.subtotal),
        String(moved),
      ).toEqual(['30.00', moved ? '60.00' : '30.00']);
    }
  });

  it('resumed after its end_date passed: no day after the last one served is charged', async () => {
    const s = await subscribed({
      end_date: '2026-03-15',
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    await s.advance('2026-02-10T00:00:00Z');
    await s.pause(); // February's 19 of 28 days back: 20.36
    await s.advance('2026-03-20T00:00:00Z');
    await s.resume();
    expect((await s.invoices()).map((i) => i.period_start)).toEqual(['2026-01-01', '2026-02-01']);
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data.map((i) => i.amount)).toEqual(['-20.36']);
    // Billing ends with that period: the credit goes to the balance with its VAT.
    await s.advance('2026-04-02T00:00:00Z');
    expect((await s.invoices()).map((i) => i.period_start)).toEqual(['2026-01-01', '2026-02-01']);
    const user = (await t.api.get(`/api/v1/users/${s.sub.user_id}`)).body as Schemas['User'];
    expect(user.balance).toBe('24.23');
  });

  it('resumed on a period’s first day: that period is invoiced whole, once', async () => {
    const s = await subscribed();
    await s.advance('2026-01-15T00:00:00Z');
    await s.pause({ resumes_at: '2026-03-01' });
    await s.advance('2026-03-02T00:00:00Z');
    const invoices = await s.invoices();
    expect(invoices.map((i) => i.period_start)).toEqual(['2026-01-01', '2026-03-01']);
    // March whole, and the 17 of 31 January days credited: 30.00 − 16.45.
    expect(lines(invoices[1]!)).toEqual([
      ['subscription', '30.00', '2026-03-01', '2026-04-01'],
      ['proration', '-16.45', '2026-01-15', '2026-02-01'],
    ]);
  });

  it('resumed on a period’s first day after its renewal: a fixed amount off as if the resume came first', async () => {
    // January's usage (1.20) is billed by February's invoice, which a renewal during the pause
    // makes when the resume comes after it: the resume's invoice takes the rest of the 5.00 off.
    const tag = Math.random().toString(36).slice(2, 10);
    const metric = `c-${tag}`;
    expect(
      (
        await t.api
          .post('/api/v1/billable-metrics')
          .send({ code: metric, name: 'C', aggregation: 'sum', field: 'v' })
      ).status,
    ).toBe(201);
    const plan = await t.api.post('/api/v1/plans').send({
      code: `usage-${tag}`,
      name: 'P',
      interval: 'month',
      price: { model: 'flat', amount: '31.00' },
      usage_charges: [{ metric, model: 'per_unit', amount: '0.10' }],
    });
    const coupon = await t.api
      .post('/api/v1/coupons')
      .send({ name: `Five ${tag}`, amount_off: '5.00', duration: 'forever' });
    const february = async (byWorker: boolean) => {
      const s = await subscribed({
        plan_id: (plan.body as Schemas['Plan']).id,
        coupon_id: (coupon.body as Schemas['Coupon']).id,
      });
      const user = s.sub.user_id;
      await s.advance('2026-01-05T00:00:00Z');
      const recorded = await t.api.post('/api/v1/usage-events').send({
        event_id: `e-${tag}-${byWorker}`,
        user_id: user,
        metric,
        timestamp: '2026-01-05T00:00:00Z',
        properties: { v: 12 },
      });
      expect(recorded.status, recorded.text).toBe(201);
      await s.advance('2026-01-15T00:00:00Z');
      await s.pause(byWorker ? { resumes_at: '2026-02-01' } : undefined);
      await s.advance('2026-02-01T00:00:00Z');
      if (!byWorker) await s.resume();
      const invoices = (await s.invoices()).filter((i) => i.period_start >= '2026-02-01');
      return {
        lines: invoices.flatMap((i) => i.lines.map((l) => [l.type, l.amount])),
        subtotal: invoices.reduce((sum, i) => sum + Number(i.subtotal) * 100, 0) / 100,
      };
    };
    const byWorker = await february(true);
    // 31.00 and January's 1.20 of usage, less the 14.26 the pause credited and the 5.00 off.
    expect(byWorker.lines).toEqual([
      ['subscription', '31.00'],
      ['usage', '1.20'],
      ['proration', '-14.26'],
      ['discount', '-5.00'],
    ]);
    expect(byWorker.subtotal).toBe(12.94);
    const byHand = await february(false);
    // The renewal's invoice: the usage, 1.20 of the 5.00 off; the resume's: the rest, 3.80.
    expect(byHand.lines).toEqual([
      ['usage', '1.20'],
      ['discount', '-1.20'],
      ['proration', '-14.26'],
      ['proration', '31.00'],
      ['discount', '-3.80'],
    ]);
    expect(byHand.subtotal).toBe(12.94);
  });

  it('is refused unless active (409), with a past resumes_at (422); a paused subscription cancels at once', async () => {
    const s = await subscribed();
    const pause = (body: Record<string, unknown> = {}, id = s.sub.id) =>
      t.api.post(`/api/v1/subscriptions/${id}/pause`).send(body);
    expectProblem(await t.api.post(`/api/v1/subscriptions/${s.sub.id}/resume`), 409, 'conflict');
    expectProblem(await pause({ resumes_at: '2026-01-01' }), 422, 'unprocessable');
    expectProblem(
      await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'paused' }),
      409,
      'conflict',
    );
    const user = await createUser(t);
    const createdPaused = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'paused', plan_id: planId, start_date: '2026-01-01' });
    expect(expectProblem(createdPaused, 422, 'unprocessable').errors?.[0]?.field).toBe('/status');
    await s.pause();
    expectProblem(await pause(), 409, 'conflict');
    expectProblem(
      await t.api.post('/api/v1/subscriptions/0193a6a2-9e11-7f00-a000-00000000dead/pause').send({}),
      404,
      'not-found',
    );
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'period_end' });
    expect(canceled.status, canceled.text).toBe(200);
    expect(canceled.body).toMatchObject({
      status: 'canceled',
      paused_at: null,
      resumes_at: null,
      cancel_at: null,
    });
    expectProblem(await t.api.post(`/api/v1/subscriptions/${s.sub.id}/resume`), 409, 'conflict');
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});

describe('MRR', () => {
  it('counts a paused subscription as zero: a churn when paused whole, and it comes back on resume', async () => {
    const m = await ctx.newTenant();
    const user = await createUser(m);
    const now = new Date();
    const lastMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    const month = now.toISOString().slice(0, 7);
    const created = await m.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '30.00',
      start_date: lastMonth.toISOString().slice(0, 10),
    });
    expect(created.status, created.text).toBe(201);
    const id = (created.body as Subscription).id;
    const read = async () =>
      (
        (await m.api.get('/api/v1/metrics/mrr').query({ from: month, to: month }))
          .body as Schemas['MrrMetrics']
      ).months[0]!;
    expect((await m.api.post(`/api/v1/subscriptions/${id}/pause`)).status).toBe(200);
    const paused = await read();
    expect([paused.starting_mrr, paused.mrr, paused.movements.churn]).toEqual([
      '30.00',
      '0.00',
      { amount: '-30.00', customers: 1 },
    ]);
    expect((await m.api.post(`/api/v1/subscriptions/${id}/resume`)).status).toBe(200);
    const resumed = await read();
    expect([resumed.mrr, resumed.movements.churn.customers]).toEqual(['30.00', 0]);
  });
});
