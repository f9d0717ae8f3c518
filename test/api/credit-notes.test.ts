// Credit notes against issued invoices: by amount or by lines, numbered gapless in their own
// sequence, taxes reversed in proportion, never more than was invoiced, what is due lowered (and
// paid at zero), the taxes report netted; and the refusals.
import { fc, test } from '@fast-check/vitest';
import { beforeAll, describe, expect, it } from 'vitest';
import { creditNoteAmounts } from '../../src/billing/credit-notes.js';
import { parseAmount } from '../../src/billing/money.js';
import type { Schemas } from '../../src/contract.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { fingerprint } from '../helpers/db-state.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let plan: Schemas['Plan'];

type Invoice = Schemas['Invoice'];
type CreditNote = Schemas['CreditNote'];

beforeAll(async () => {
  t = await ctx.newTenant();
  const made = await t.api
    .post('/api/v1/plans')
    .send({ code: 'seats', name: 'Seats', interval: 'month', price: { model: 'per_unit', amount: '33.33' } });
  expect(made.status, made.text).toBe(201);
  plan = made.body as Schemas['Plan'];
  for (const rate of [
    { code: 'SALES', name: 'US', percentage: '1.5', region: 'US', effective_from: '2020-01-01' },
    { code: 'STATE', name: 'California', percentage: '7.25', region: 'US-CA', effective_from: '2020-01-01' },
  ])
    expect((await t.api.post('/api/v1/tax-rates').send(rate)).status).toBe(201);
});

/** An issued invoice of 3 seats (99.99) in US-CA: 1.5% (1.50) and 7.25% (7.25), 108.74. */
async function issued(): Promise<Invoice> {
  const user = await createUser(t, { region: 'US-CA' });
  const sub = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', plan_id: plan.id, quantity: 3, start_date: '2026-01-01' });
  expect(sub.status, sub.text).toBe(201);
  const draft = await t.api
    .post(`/api/v1/subscriptions/${(sub.body as Schemas['Subscription']).id}/invoices`)
    .send({ date: '2026-01-01' });
  const id = (draft.body as Invoice).id;
  const open = await t.api.post(`/api/v1/invoices/${id}/finalize`);
  expect(open.status, open.text).toBe(200);
  expect(open.body).toMatchObject({
    subtotal: '99.99',
    tax_total: '8.75',
    total: '108.74',
    amount_due: '108.74',
  });
  return open.body as Invoice;
}

const credit = (invoice: Invoice, body: Record<string, unknown>) =>
  t.api.post(`/api/v1/invoices/${invoice.id}/credit-notes`).send(body);

describe('POST /invoices/{id}/credit-notes', () => {
  it('credits in parts, reverses taxes in proportion, lowers what is due, and pays the invoice at zero', async () => {
    const invoice = await issued();
    const first = await credit(invoice, { reason: 'Outage, one week', amount: '25.00' });
    expect(first.status, first.text).toBe(201);
    const a = first.body as CreditNote;
    // 1.50 × 25/99.99 = 0.375…: 0.38; 7.25 × 25/99.99 = 1.812…: 1.81.
    expect(a).toMatchObject({
      invoice_id: invoice.id,
      reason: 'Outage, one week',
      lines: [{ line_index: null, description: 'Credit: Outage, one week', amount: '25.00' }],
      subtotal: '25.00',
      tax_total: '2.19',
      total: '27.19',
    });
    expect(a.taxes.map((x) => [x.code, x.taxable_amount, x.amount])).toEqual([
      ['SALES', '25.00', '0.38'],
      ['STATE', '25.00', '1.81'],
    ]);
    const after = (await t.api.get(`/api/v1/invoices/${invoice.id}`)).body as Invoice;
    expect(after).toMatchObject({
      status: 'open',
      amount_credited: '27.19',
      amount_due: '81.55',
      total: '108.74',
    });
    // A payment must equal what is due now.
    const wrong = await t.api
      .post(`/api/v1/invoices/${invoice.id}/payments`)
      .send({ amount: '108.74', payment_method: 'pm_card_visa', rail: 'card' });
    expect(wrong.status).toBe(422);

    // By line: 50.00 of line 0, then the rest, which completes the subtotal and takes exactly
    // what is left of each tax.
    const second = (
      await credit(invoice, { reason: 'Seat unused', lines: [{ line_index: 0, amount: '50.00' }] })
    ).body as CreditNote;
    expect(second.number).toBe(a.number + 1);
    expect(second.lines).toEqual([
      { line_index: 0, description: invoice.lines[0]!.description, amount: '50.00' },
    ]);
    const over = await credit(invoice, { reason: 'Too much', amount: '25.00' });
    expect(expectProblem(over, 422, 'unprocessable').errors).toEqual([
      {
        location: 'body',
        field: '/amount',
        message: 'more than is left to credit of the invoice (24.99 before tax)',
      },
    ]);
    const last = (await credit(invoice, { reason: 'The rest', amount: '24.99' })).body as CreditNote;
    const notes = [a, second, last];
    expect(notes.reduce((s, n) => s + parseAmount(n.total), 0n)).toBe(parseAmount('108.74'));
    for (const code of ['SALES', 'STATE']) {
      const reversed = notes.reduce(
        (s, n) => s + parseAmount(n.taxes.find((x) => x.code === code)!.amount),
        0n,
      );
      expect(reversed).toBe(parseAmount(invoice.taxes.find((x) => x.code === code)!.amount));
    }
    const paid = (await t.api.get(`/api/v1/invoices/${invoice.id}`)).body as Invoice;
    expect(paid).toMatchObject({ status: 'paid', amount_credited: '108.74', amount_due: '0.00' });
    const listed = (await t.api.get(`/api/v1/invoices/${invoice.id}/credit-notes`))
      .body as Schemas['CreditNoteList'];
    expect(listed.data.map((n) => n.number)).toEqual(notes.map((n) => n.number));
    const events = (await t.api.get('/api/v1/events').query({ resource_id: a.id }))
      .body as Schemas['EventList'];
    expect(events.data.map((e) => e.type)).toEqual(['credit_note.created']);
  });

  it("writes invoice.updated with the invoice's new amounts and their previous values, then invoice.paid when credited to zero", async () => {
    const invoice = await issued();
    const invoiceEvents = async () =>
      (
        (await t.api.get('/api/v1/events').query({ resource_id: invoice.id, limit: 100 }))
          .body as Schemas['EventList']
      ).data;
    const first = await credit(invoice, { reason: 'Outage', amount: '40.00' });
    expect(first.status, first.text).toBe(201);
    const afterFirst = (await t.api.get(`/api/v1/invoices/${invoice.id}`)).body as Invoice;
    // 40.00 + 0.60 (1.5%) + 2.90 (7.25%) = 43.50.
    expect(afterFirst).toMatchObject({
      status: 'open',
      amount_credited: '43.50',
      amount_due: '65.24',
      version: invoice.version + 1,
    });
    let events = await invoiceEvents();
    expect(events.map((e) => e.type)).toEqual(['invoice.created', 'invoice.finalized', 'invoice.updated']);
    const updated = events.at(-1)!;
    // The invoice after the change, as GET shows it; its previous values; in the credit note's
    // request (its transaction).
    expect(updated.data).toEqual(afterFirst);
    expect(updated.previous).toEqual({ amount_credited: '0.00', amount_due: '108.74' });
    const note = (await t.api.get('/api/v1/events').query({ resource_id: (first.body as CreditNote).id }))
      .body as Schemas['EventList'];
    expect(updated.request_id).toBe(note.data[0]!.request_id);

    // The rest: what is due reaches zero, so the invoice is paid, after the update.
    const rest = await credit(invoice, { reason: 'The rest', amount: '59.99' });
    expect(rest.status, rest.text).toBe(201);
    const paid = (await t.api.get(`/api/v1/invoices/${invoice.id}`)).body as Invoice;
    expect(paid).toMatchObject({ status: 'paid', amount_credited: '108.74', amount_due: '0.00' });
    events = await invoiceEvents();
    expect(events.slice(3).map((e) => [e.type, e.previous])).toEqual([
      ['invoice.updated', { amount_credited: '43.50', amount_due: '65.24' }],
      ['invoice.paid', { status: 'open', paid_at: null }],
    ]);
    // The invoice's last event is the invoice as it is.
    expect(events.at(-1)!.data).toEqual(paid);

    // A refused credit note writes no invoice event.
    expectProblem(
      await credit(invoice, { reason: 'x', amount: '1.00', refund_to: 'balance' }),
      422,
      'unprocessable',
    );
    expect(await invoiceEvents()).toHaveLength(5);
  });

  it('names what is left of a line before the request when its lines credit one line past it, never a negative amount', async () => {
    const invoice = await issued(); // one line of 99.99
    const before = await fingerprint(ctx.db);
    const lines = (amounts: string[]) => ({
      reason: 'x',
      lines: amounts.map((amount) => ({ line_index: 0, amount })),
    });
    // 99.00 fits; 1.50 does not (0.99 left after it); 0.50 does: a refused line takes nothing.
    expect(
      expectProblem(await credit(invoice, lines(['99.00', '1.50', '0.50'])), 422, 'unprocessable').errors,
    ).toEqual([
      {
        location: 'body',
        field: '/lines/1/amount',
        message:
          'more than is left to credit of the line (99.99 before this request, of which the lines before it take 99.00)',
      },
    ]);
    // The tester's case: every line after the first overdraws it, by what is left, 0.00.
    const overdrawn = expectProblem(
      await credit(invoice, lines(['99.99', '0.50', '0.25', '2.00'])),
      422,
      'unprocessable',
    ).errors!;
    expect(overdrawn.map((e) => [e.field, e.message])).toEqual(
      [1, 2, 3].map((i) => [
        `/lines/${i}/amount`,
        'more than is left to credit of the line (99.99 before this request, of which the lines before it take 99.99)',
      ]),
    );
    // 100 lines of 2.00: the 50th is refused, and each after it.
    const many = expectProblem(
      await credit(invoice, lines(Array<string>(100).fill('2.00'))),
      422,
      'unprocessable',
    ).errors!;
    expect(many.map((e) => e.field)).toEqual(Array.from({ length: 51 }, (_, i) => `/lines/${i + 49}/amount`));
    for (const e of many) {
      expect(e.message).toBe(
        'more than is left to credit of the line (99.99 before this request, of which the lines before it take 98.00)',
      );
    }
    expect(await fingerprint(ctx.db)).toEqual(before);

    // After a credit note of 60.00 of the line, what is left before the request is 39.99.
    expect((await credit(invoice, lines(['60.00']))).status).toBe(201);
    expect(
      expectProblem(await credit(invoice, lines(['39.99', '0.01'])), 422, 'unprocessable').errors?.[0],
    ).toMatchObject({
      field: '/lines/1/amount',
      message:
        'more than is left to credit of the line (39.99 before this request, of which the lines before it take 39.99)',
    });
    expect(
      expectProblem(await credit(invoice, lines(['40.00'])), 422, 'unprocessable').errors?.[0],
    ).toMatchObject({ field: '/lines/0/amount', message: 'more than is left to credit of the line (39.99)' });
  });

  it('nets the taxes report in the month of the credit note', async () => {
    const invoice = await issued();
    await credit(invoice, { reason: 'Goodwill', amount: '10.00' });
    const month = new Date().toISOString().slice(0, 7);
    const report = (await t.api.get('/api/v1/reports/taxes').query({ from: month, to: month }))
      .body as Schemas['TaxReport'];
    const state = report.months[0]!.taxes.find((x) => x.code === 'STATE' && x.region === 'US-CA');
    // This tenant's credit notes of this month, less nothing invoiced this month (invoices dated 2026-01-01).
    expect(state?.credit_note_count).toBeGreaterThan(0);
    expect(state?.tax_amount.startsWith('-')).toBe(true);
  });

  it('keeps a credited invoice from being voided: the rest is credited instead', async () => {
    const invoice = await issued();
    expect((await credit(invoice, { reason: 'Goodwill', amount: '50.00' })).status).toBe(201);
    const month = new Date().toISOString().slice(0, 7);
    const report = async () => {
      const res = await t.api.get('/api/v1/reports/taxes').query({ from: '2026-01', to: month });
      expect(res.status, res.text).toBe(200);
      return res.body as Schemas['TaxReport'];
    };
    const before = await report();
    const voided = expectProblem(await t.api.post(`/api/v1/invoices/${invoice.id}/void`), 409, 'conflict');
    expect(voided.detail).toContain('credit note');
    expect((await t.api.get(`/api/v1/invoices/${invoice.id}`)).body).toMatchObject({ status: 'open' });
    expect(await report()).toEqual(before);
    // What is left (amounts are before tax), credited: nothing is due any more.
    const rest = await credit(invoice, { reason: 'Cancelled', amount: '49.99' });
    expect(rest.status, rest.text).toBe(201);
    expect((await t.api.get(`/api/v1/invoices/${invoice.id}`)).body).toMatchObject({ amount_due: '0.00' });
  });

  it('credits an invoice whose subtotal passes ten integer digits by amount, in full (money21 #1)', async () => {
    const user = await createUser(t);
    const sub = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', plan_cost: '1.00', start_date: '2026-01-01' });
    expect(sub.status, sub.text).toBe(201);
    const made = await t.api.post('/api/v1/invoices').send({
      subscription_id: (sub.body as Schemas['Subscription']).id,
      lines: [
        { description: 'Fleet, first half', amount: '9999999999.99' },
        { description: 'Fleet, second half', amount: '9999999999.99' },
      ],
    });
    expect(made.status, made.text).toBe(201);
    const open = await t.api.post(`/api/v1/invoices/${(made.body as Invoice).id}/finalize`);
    expect(open.status, open.text).toBe(200);
    const invoice = open.body as Invoice;
    expect(invoice.subtotal).toBe('19999999999.98');
    const credited = await credit(invoice, { reason: 'Cancelled order', amount: '19999999999.98' });
    expect(credited.status, credited.text).toBe(201);
    expect(credited.body).toMatchObject({ subtotal: '19999999999.98', total: invoice.total });
    expect((await t.api.get(`/api/v1/invoices/${invoice.id}`)).body).toMatchObject({ amount_due: '0.00' });
  });

  it('refuses what it cannot credit, writing nothing', async () => {
    const invoice = await issued();
    const viewerKey = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((viewerKey.body as Schemas['ApiKeyWithSecret']).key);
    const before = await fingerprint(ctx.db);
    expectProblem(await credit(invoice, { reason: 'x' }), 422, 'unprocessable');
    expectProblem(
      await credit(invoice, { reason: 'x', amount: '1.00', lines: [{ line_index: 0, amount: '1.00' }] }),
      422,
      'unprocessable',
    );
    expect(
      expectProblem(
        await credit(invoice, { reason: 'x', lines: [{ line_index: 3, amount: '1.00' }] }),
        422,
        'unprocessable',
      ).errors?.[0]?.field,
    ).toBe('/lines/0/line_index');
    expect(
      expectProblem(
        await credit(invoice, { reason: 'x', lines: [{ line_index: 0, amount: '100.00' }] }),
        422,
        'unprocessable',
      ).errors?.[0],
    ).toMatchObject({ field: '/lines/0/amount', message: 'more than is left to credit of the line (99.99)' });
    expectProblem(await credit(invoice, { reason: 'x', amount: '0' }), 422, 'unprocessable');
    // A blank reason, whatever its whitespace, is named (a credit note is final).
    for (const reason of [' ', '   ', '\t', '\n', '\u00a0']) {
      const blank = expectProblem(await credit(invoice, { reason, amount: '1.00' }), 400, 'validation-error');
      expect(blank.errors?.map((e) => e.field)).toEqual(['/reason']);
    }
    for (const description of [' ', '\t']) {
      const item = await t.api
        .post(`/api/v1/subscriptions/${invoice.subscription_id}/invoice-items`)
        .send({ description, amount: '1.00' });
      expect(expectProblem(item, 400, 'validation-error').errors?.map((e) => e.field)).toEqual([
        '/description',
      ]);
    }
    expectProblem(
      await editor.post(`/api/v1/invoices/${invoice.id}/credit-notes`).send({ reason: 'x', amount: '1.00' }),
      403,
      'forbidden',
    );
    expectProblem(
      await t.api
        .post('/api/v1/invoices/01900000-0000-7000-8000-0000000000fb/credit-notes')
        .send({ reason: 'x', amount: '1' }),
      404,
      'not-found',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
    // A payment in flight, then a void invoice.
    const paying = await t.api
      .post(`/api/v1/invoices/${invoice.id}/payments`)
      .send({ amount: '108.74', payment_method: 'pm_card_visa', rail: 'card' });
    expect(paying.status, paying.text).toBe(202);
    expectProblem(await credit(invoice, { reason: 'x', amount: '1.00' }), 409, 'conflict');
    const other = await issued();
    expect((await t.api.post(`/api/v1/invoices/${other.id}/void`)).status).toBe(200);
    expectProblem(await credit(other, { reason: 'x', amount: '1.00' }), 409, 'conflict');
  });
});

describe('credit notes never exceed what was invoiced', () => {
  const invoice = {
    subtotal: '99.99',
    taxes: [
      {
        tax_rate_id: 'a',
        code: 'A',
        name: 'A',
        percentage: '1.5',
        region: 'US',
        taxable_amount: '99.99',
        amount: '1.50',
      },
      {
        tax_rate_id: 'b',
        code: 'B',
        name: 'B',
        percentage: '7.25',
        region: 'US-CA',
        taxable_amount: '99.99',
        amount: '7.25',
      },
    ],
    lines: [
      { description: 'x', amount: '66.66' },
      { description: 'y', amount: '33.33' },
    ],
  };
  test.prop([fc.array(fc.integer({ min: 1, max: 6000 }), { minLength: 1, maxLength: 12 })])(
    'whatever the sequence of credits, line by line, tax by tax and in total',
    (credits) => {
      const earlier: Array<{ subtotal: string; lines: never[]; taxes: typeof invoice.taxes }> = [];
      for (const c of credits) {
        const out = creditNoteAmounts(invoice, earlier, { reason: 'r', amount: (c / 100).toFixed(2) });
        if ('errors' in out) continue;
        earlier.push({ subtotal: out.subtotal, lines: [], taxes: out.taxes });
      }
      const total = (xs: string[]) => xs.reduce((s, x) => s + parseAmount(x), 0n);
      expect(total(earlier.map((n) => n.subtotal))).toBeLessThanOrEqual(parseAmount(invoice.subtotal));
      for (const tax of invoice.taxes) {
        const reversed = total(
          earlier.flatMap((n) =>
            n.taxes.filter((x) => x.tax_rate_id === tax.tax_rate_id).map((x) => x.amount),
          ),
        );
        expect(reversed).toBeLessThanOrEqual(parseAmount(tax.amount));
        // A completed credit reverses each tax exactly.
        if (total(earlier.map((n) => n.subtotal)) === parseAmount(invoice.subtotal))
          expect(reversed).toBe(parseAmount(tax.amount));
      }
    },
  );
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
