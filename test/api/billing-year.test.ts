// A year of one customer on a test clock, as the issue tells it: a trial, an upgrade mid-period,
// a downgrade at the period's end, a pause over the summer, a refund for a bad week. Every
// invoice, the credit note, the refund, the subscription's events and the webhooks are checked.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';

const ctx = useTestApp();
let t: TestTenant;

type Invoice = Schemas['Invoice'];
type Subscription = Schemas['Subscription'];

beforeAll(async () => {
  t = await ctx.newTenant();
});

describe('a year on a test clock', () => {
  it('bills a trial, an upgrade, a scheduled downgrade, a pause and a refund exactly, with every event and webhook', async () => {
    const post = async (path: string, body: Record<string, unknown> = {}, status = 201) => {
      const res = await t.api.post(path).send(body);
      expect(res.status, res.text).toBe(status);
      return res.body as Record<string, unknown> & { id: string };
    };
    await post('/api/v1/tax-rates', {
      code: 'VAT',
      name: 'German VAT',
      percentage: '19',
      region: 'DE',
      effective_from: '2020-01-01',
    });
    // Every event of the tenant goes to this endpoint (a local one: it registers without DNS).
    const hooks = ctx.appWith({ webhooks: { allowPrivateUrls: true } });
    const endpoint = await hooks
      .post('/api/v1/webhook-endpoints')
      .set('Authorization', `Bearer ${t.key}`)
      .send({ url: 'http://receiver.test:1/hooks', enabled_events: ['*'] });
    expect(endpoint.status, endpoint.text).toBe(201);
    const basic = await post('/api/v1/plans', {
      code: 'basic',
      name: 'Basic',
      interval: 'month',
      price: { model: 'flat', amount: '30.00' },
    });
    const pro = await post('/api/v1/plans', {
      code: 'pro',
      name: 'Pro',
      interval: 'month',
      price: { model: 'flat', amount: '60.00' },
    });
    const clock = await post('/api/v1/test-clocks', { name: 'a year', frozen_time: '2026-01-01T00:00:00Z' });
    const user = await createUser(t, { region: 'DE' });
    const work = () =>
      performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    const advance = async (to: string) => {
      await post(`/api/v1/test-clocks/${clock.id}/advance`, { frozen_time: to }, 202);
      await work();
    };

    // January: a two-week trial of Basic, paid by card afterwards.
    const sub = (await post('/api/v1/subscriptions', {
      user_id: user.id,
      status: 'trialing',
      plan_id: basic.id,
      start_date: '2026-01-01',
      trial_end: '2026-01-15',
      test_clock_id: clock.id,
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    })) as unknown as Subscription;
    const path = `/api/v1/subscriptions/${sub.id}`;
    await work();
    // March 1: an upgrade to Pro, prorated over the 14 of 28 days left of [Feb 15, Mar 15).
    await advance('2026-03-01T10:00:00Z');
    expect((await t.api.patch(path).send({ plan_id: pro.id })).status).toBe(200);
    // April 20: back to Basic when the period ends (May 15).
    await advance('2026-04-20T10:00:00Z');
    await post(`${path}/scheduled-change`, { plan_id: basic.id }, 200);
    // June 1: a pause until July 25 (14 of the 31 days of [May 15, Jun 15) credited).
    await advance('2026-06-01T00:00:00Z');
    await post(`${path}/pause`, { resumes_at: '2026-07-25' }, 200);
    // September 10: a bad week in August: 10.00 (before tax) of the August invoice refunded.
    await advance('2026-09-10T12:00:00Z');
    const byPeriod = async () =>
      (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 }))
          .body as Schemas['InvoiceList']
      ).data
        .slice()
        .reverse();
    const august = (await byPeriod()).find((i) => i.period_start === '2026-08-15')!;
    const note = await post(`/api/v1/invoices/${august.id}/credit-notes`, {
      amount: '10.00',
      reason: 'Service down for a week in August',
      refund_to: 'payment',
    });
    await advance('2027-01-01T00:00:00Z');

    // Every invoice: numbered in order, gapless, each paid by its card payment.
    const invoices = await byPeriod();
    expect(
      invoices.map((i: Invoice) => [
        i.number,
        i.kind,
        i.period_start,
        i.period_end,
        i.subtotal,
        i.tax_total,
        i.total,
        i.status,
      ]),
    ).toEqual([
      [1, 'period', '2026-01-15', '2026-02-15', '30.00', '5.70', '35.70', 'paid'],
      [2, 'period', '2026-02-15', '2026-03-15', '30.00', '5.70', '35.70', 'paid'],
      [3, 'period', '2026-03-15', '2026-04-15', '75.00', '14.25', '89.25', 'paid'],
      [4, 'period', '2026-04-15', '2026-05-15', '60.00', '11.40', '71.40', 'paid'],
      [5, 'period', '2026-05-15', '2026-06-15', '30.00', '5.70', '35.70', 'paid'],
      [6, 'proration', '2026-07-25', '2026-08-15', '6.77', '1.29', '8.06', 'paid'],
      [7, 'period', '2026-08-15', '2026-09-15', '30.00', '5.70', '35.70', 'paid'],
      [8, 'period', '2026-09-15', '2026-10-15', '30.00', '5.70', '35.70', 'paid'],
      [9, 'period', '2026-10-15', '2026-11-15', '30.00', '5.70', '35.70', 'paid'],
      [10, 'period', '2026-11-15', '2026-12-15', '30.00', '5.70', '35.70', 'paid'],
      [11, 'period', '2026-12-15', '2027-01-15', '30.00', '5.70', '35.70', 'paid'],
    ]);
    const lines = (i: Invoice) => i.lines.map((l) => [l.type, l.amount, l.period_start, l.period_end]);
    expect(lines(invoices[2]!)).toEqual([
      ['subscription', '60.00', '2026-03-15', '2026-04-15'],
      ['proration', '-15.00', '2026-03-01', '2026-03-15'],
      ['proration', '30.00', '2026-03-01', '2026-03-15'],
    ]);
    expect(lines(invoices[5]!)).toEqual([
      ['proration', '-13.55', '2026-06-01', '2026-06-15'],
      ['proration', '20.32', '2026-07-25', '2026-08-15'],
    ]);
    // Nothing billed June 15 to July 25; every other day exactly once.
    for (const [a, b] of invoices.slice(0, -1).map((i, k) => [i, invoices[k + 1]!] as const))
      if (a.number !== 5) expect(a.period_end).toBe(b.period_start);

    // The credit note and its refund, on the card that paid August.
    expect(note).toMatchObject({ number: 1, subtotal: '10.00', tax_total: '1.90', total: '11.90' });
    const refunds = (await t.api.get(`/api/v1/invoices/${august.id}/refunds`)).body as {
      data: Array<Record<string, unknown>>;
    };
    expect(refunds.data.map((r) => [r.amount, r.status, r.rail])).toEqual([['11.90', 'succeeded', 'card']]);
    expect((await t.api.get(`/api/v1/invoices/${august.id}`)).body).toMatchObject({
      amount_credited: '11.90',
    });
    // The taxes report nets the credit note in September.
    const report = (await t.api.get('/api/v1/reports/taxes').query({ from: '2026-09', to: '2026-09' }))
      .body as Schemas['TaxReport'];
    expect(
      report.months.map((m) => m.taxes.map((x) => [x.tax_amount, x.invoice_count, x.credit_note_count])),
    ).toEqual([
      [['3.80', 1, 1]], // September's invoice, less the credit note's 1.90
    ]);

    // The subscription's story, in its events.
    const events = (
      (await t.api.get('/api/v1/events').query({ resource_id: sub.id, limit: 100 }))
        .body as Schemas['EventList']
    ).data;
    expect(
      events.filter((e) => e.type !== 'subscription.renewed').map((e) => [e.type, e.occurred_at]),
    ).toEqual([
      ['subscription.created', '2026-01-01T00:00:00.000Z'],
      ['subscription.trial_will_end', '2026-01-12T00:00:00.000Z'],
      ['subscription.updated', '2026-01-15T00:00:00.000Z'],
      ['subscription.updated', '2026-03-01T10:00:00.000Z'],
      ['subscription.change_scheduled', '2026-04-20T10:00:00.000Z'],
      ['subscription.scheduled_change_applied', '2026-05-15T00:00:00.000Z'],
      ['subscription.paused', '2026-06-01T00:00:00.000Z'],
      ['subscription.resumed', '2026-07-25T00:00:00.000Z'],
    ]);
    expect(events.filter((e) => e.type === 'subscription.renewed').length).toBe(12);
    const final = (await t.api.get(path)).body as Subscription;
    expect(final).toMatchObject({ status: 'active', plan_id: basic.id, billed_until: '2027-01-15' });

    // Every event of the tenant has its webhook delivery, and no other delivery exists.
    const all: Schemas['Event'][] = [];
    for (let cursor: string | null = null; ;) {
      const page = (await t.api.get('/api/v1/events').query({ limit: 100, ...(cursor ? { cursor } : {}) }))
        .body as Schemas['EventList'];
      all.push(...page.data);
      // The event log's cursor is never null: polling goes on from it. A short page is the end.
      if (page.data.length < 100) break;
      cursor = page.next_cursor;
    }
    const deliveries: Schemas['WebhookDelivery'][] = [];
    for (let cursor: string | null = null; ;) {
      const page = (
        await t.api
          .get(`/api/v1/webhook-endpoints/${(endpoint.body as { id: string }).id}/deliveries`)
          .query({ limit: 100, ...(cursor ? { cursor } : {}) })
      ).body as Schemas['WebhookDeliveryList'];
      deliveries.push(...page.data);
      if (!(cursor = page.next_cursor)) break;
    }
    // From the endpoint's own creation on (the events before it were sent nowhere).
    const created = all.findIndex((e) => e.type === 'webhook_endpoint.created');
    expect(new Set(deliveries.map((d) => d.event_id))).toEqual(new Set(all.slice(created).map((e) => e.id)));
    for (const type of [
      'invoice.paid',
      'payment.succeeded',
      'invoice_item.created',
      'credit_note.created',
      'refund.created',
      'refund.succeeded',
      'subscription.paused',
      'subscription.resumed',
    ])
      expect(deliveries.map((d) => d.event_type)).toContain(type);
    expect(ctx.unexpectedErrors).toEqual([]);
  }, 120_000);
});
