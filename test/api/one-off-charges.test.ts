// One-off charges: an invoice item for the subscription's next invoice, and a one-off invoice with
// custom lines made as a draft, then finalized. Amounts set by hand are an admin's.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { fingerprint } from '../helpers/db-state.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let plan: Schemas['Plan'];

beforeAll(async () => {
  t = await ctx.newTenant();
  const made = await t.api
    .post('/api/v1/plans')
    .send({ code: 'base', name: 'Base', interval: 'month', price: { model: 'flat', amount: '10.00' } });
  expect(made.status, made.text).toBe(201);
  plan = made.body as Schemas['Plan'];
  const vat = {
    code: 'VAT',
    name: 'German VAT',
    percentage: '19',
    region: 'DE',
    effective_from: '2020-01-01',
  };
  expect((await t.api.post('/api/v1/tax-rates').send(vat)).status).toBe(201);
});

async function subscribed() {
  const clock = (
    await t.api.post('/api/v1/test-clocks').send({ name: 'one-off', frozen_time: '2026-01-01T00:00:00Z' })
  ).body as Schemas['TestClock'];
  const user = await createUser(t, { region: 'DE' });
  const res = await t.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'active',
    plan_id: plan.id,
    start_date: '2026-01-01',
    test_clock_id: clock.id,
  });
  expect(res.status, res.text).toBe(201);
  const sub = res.body as Schemas['Subscription'];
  return {
    sub,
    async advance(to: string) {
      expect(
        (await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to })).status,
      ).toBe(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    },
    async invoices() {
      const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 });
      return (res.body as Schemas['InvoiceList']).data.reverse();
    },
  };
}

describe('POST /subscriptions/{id}/invoice-items', () => {
  it("adds a charge that the next invoice bills and taxes, on the subscription's time", async () => {
    const s = await subscribed();
    await s.advance('2026-01-20T15:00:00Z');
    const res = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/invoice-items`)
      .send({ description: 'Data migration', amount: '25.5' });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      subscription_id: s.sub.id,
      kind: 'one_off',
      description: 'Data migration',
      amount: '25.50',
      period_start: '2026-01-20',
      period_end: '2026-01-21',
      invoice_id: null,
    });
    const item = res.body as Schemas['InvoiceItem'];
    const created = (await t.api.get('/api/v1/events').query({ resource_id: item.id }))
      .body as Schemas['EventList'];
    expect(created.data.map((e) => [e.type, e.occurred_at])).toEqual([
      ['invoice_item.created', '2026-01-20T15:00:00.000Z'],
    ]);

    await s.advance('2026-02-01T00:00:00Z');
    const february = (await s.invoices())[1]!;
    expect(february.lines.map((l) => [l.type, l.description, l.amount, l.invoice_item_id ?? null])).toEqual([
      ['subscription', expect.any(String), '10.00', null],
      ['one_off', 'Data migration', '25.50', item.id],
    ]);
    expect(february).toMatchObject({ subtotal: '35.50', tax_total: '6.75', total: '42.25' }); // 19% of 35.50 = 6.745
    const billed = (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items`))
      .body as Schemas['InvoiceItemList'];
    expect(billed.data).toEqual([{ ...item, invoice_id: february.id }]);
  });

  it('a draft voided gives back the items it took: the invoice made again bills them (retest6 #4)', async () => {
    const clock = (
      await t.api
        .post('/api/v1/test-clocks')
        .send({ name: 'draft void', frozen_time: '2026-03-10T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t, { region: 'DE' });
    const created = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: plan.id,
      start_date: '2026-01-01', // in the past: March is the worker's, January is back-billed by hand
      test_clock_id: clock.id,
    });
    expect(created.status, created.text).toBe(201);
    const sub = created.body as Schemas['Subscription'];
    const item = (
      await t.api
        .post(`/api/v1/subscriptions/${sub.id}/invoice-items`)
        .send({ description: 'Setup', amount: '4.00' })
        .expect(201)
    ).body as Schemas['InvoiceItem'];
    const backBill = () =>
      t.api.post(`/api/v1/subscriptions/${sub.id}/invoices`).send({ date: '2026-01-15' });
    const draft = (await backBill().expect(201)).body as Schemas['Invoice'];
    expect(draft.lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '10.00'],
      ['one_off', '4.00'],
    ]);
    await t.api.post(`/api/v1/invoices/${draft.id}/void`).expect(200);
    // Pending again, unchanged but for that, with an invoice_item.updated saying so.
    const pending = (
      await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`).query({ pending: true })
    ).body as Schemas['InvoiceItemList'];
    expect(pending.data).toEqual([item]);
    const events = (await t.api.get('/api/v1/events').query({ resource_id: item.id }))
      .body as Schemas['EventList'];
    expect(events.data.map((e) => [e.type, e.previous ?? null])).toEqual([
      ['invoice_item.created', null],
      ['invoice_item.updated', { invoice_id: null }], // billed by the draft
      ['invoice_item.updated', { invoice_id: draft.id }], // pending again
    ]);
    const again = (await backBill().expect(201)).body as Schemas['Invoice'];
    expect(again.lines.map((l) => [l.type, l.amount, l.invoice_item_id ?? null])).toEqual([
      ['subscription', '10.00', null],
      ['one_off', '4.00', item.id],
    ]);
    // An issued invoice voided keeps its items: voiding forgave them.
    await t.api.post(`/api/v1/invoices/${again.id}/finalize`).expect(200);
    await t.api.post(`/api/v1/invoices/${again.id}/void`).expect(200);
    const after = (await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`).query({ pending: true }))
      .body as Schemas['InvoiceItemList'];
    expect(after.data).toEqual([]);
  });

  it('refuses zero (422), an unknown subscription (404), a canceled one (409) and an editor (403), writing nothing', async () => {
    const s = await subscribed();
    const editorKey = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((editorKey.body as Schemas['ApiKeyWithSecret']).key);
    const before = await fingerprint(ctx.db);
    const add = (body: Record<string, unknown>, id = s.sub.id, api = t.api) =>
      api.post(`/api/v1/subscriptions/${id}/invoice-items`).send(body);
    expect(
      expectProblem(await add({ description: 'x', amount: '0.00' }), 422, 'unprocessable').errors,
    ).toEqual([{ location: 'body', field: '/amount', message: 'must be more than zero' }]);
    expectProblem(await add({ description: 'x', amount: '-1.00' }), 400, 'validation-error');
    expectProblem(
      await add({ description: 'x', amount: '1.00' }, '01900000-0000-7000-8000-0000000000fd'),
      404,
      'not-found',
    );
    expectProblem(await add({ description: 'x', amount: '1.00' }, s.sub.id, editor), 403, 'forbidden');
    expect(await fingerprint(ctx.db)).toEqual(before);
    await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expectProblem(await add({ description: 'x', amount: '1.00' }), 409, 'conflict');
  });
});

describe('POST /invoices (one-off)', () => {
  it('makes a draft with custom lines, taxed today, that bills nothing else; finalizing issues it', async () => {
    const s = await subscribed();
    await s.advance('2026-01-10T08:00:00Z');
    const pending = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/invoice-items`)
      .send({ description: 'Later', amount: '5.00' });
    expect(pending.status).toBe(201);
    const res = await t.api.post('/api/v1/invoices').send({
      subscription_id: s.sub.id,
      lines: [
        { description: 'Onboarding workshop', amount: '450.00' },
        { description: 'Travel', amount: '120.50' },
      ],
    });
    expect(res.status, res.text).toBe(201);
    const invoice = res.body as Schemas['Invoice'];
    expect(res.headers.location).toBe(`/api/v1/invoices/${invoice.id}`);
    expect(invoice).toMatchObject({
      kind: 'one_off',
      status: 'draft',
      number: null,
      period_start: '2026-01-10',
      period_end: '2026-01-11',
      invoice_date: '2026-01-10',
      subtotal: '570.50',
      tax_total: '108.40', // 19% of 570.50 = 108.395, half up
      total: '678.90',
    });
    expect(invoice.lines.map((l) => [l.type, l.description, l.amount, l.period_start])).toEqual([
      ['one_off', 'Onboarding workshop', '450.00', '2026-01-10'],
      ['one_off', 'Travel', '120.50', '2026-01-10'],
    ]);
    // The pending charge waits for the next period invoice.
    const items = (await t.api.get(`/api/v1/subscriptions/${s.sub.id}/invoice-items?pending=true`))
      .body as Schemas['InvoiceItemList'];
    expect(items.data.map((i) => i.amount)).toEqual(['5.00']);

    const finalized = await t.api.post(`/api/v1/invoices/${invoice.id}/finalize`);
    expect(finalized.status, finalized.text).toBe(200);
    expect(finalized.body).toMatchObject({ status: 'open', number: expect.any(Number), total: '678.90' });
  });

  it('refuses an unknown subscription (422), a zero line (422) and an editor (403)', async () => {
    const s = await subscribed();
    expectProblem(
      await t.api.post('/api/v1/invoices').send({
        subscription_id: '01900000-0000-7000-8000-0000000000fc',
        lines: [{ description: 'x', amount: '1' }],
      }),
      422,
      'unprocessable',
    );
    const zero = await t.api.post('/api/v1/invoices').send({
      subscription_id: s.sub.id,
      lines: [
        { description: 'a', amount: '1' },
        { description: 'b', amount: '0' },
      ],
    });
    expect(expectProblem(zero, 422, 'unprocessable').errors?.[0]?.field).toBe('/lines/1/amount');
    const editorKey = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((editorKey.body as Schemas['ApiKeyWithSecret']).key);
    expectProblem(
      await editor
        .post('/api/v1/invoices')
        .send({ subscription_id: s.sub.id, lines: [{ description: 'x', amount: '1' }] }),
      403,
      'forbidden',
    );
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
