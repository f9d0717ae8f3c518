// Who may decide what a customer pays: every operation that sets, changes or forgives a price,
// for every role. Only admin keys may; an editor reaches none of those results another way
// (a plan it creates, an interval it changes, an invoice it voids), and still manages customers
// and subscriptions within the catalog.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { type Api, type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { fingerprint } from '../helpers/db-state.js';

const ctx = useTestApp();
type Role = Schemas['ApiKeyRole'];
const ROLES: Role[] = ['viewer', 'editor', 'analyst', 'admin'];

let t: TestTenant;
const keys = {} as Record<Role, Api>;
let plan: Schemas['Plan'];
let taxRate: Schemas['TaxRate'];

beforeAll(async () => {
  t = await ctx.newTenant();
  for (const role of ROLES) {
    const res = await t.api.post('/api/v1/api-keys').send({ name: role, role });
    expect(res.status, res.text).toBe(201);
    keys[role] = ctx.withKey((res.body as Schemas['ApiKeyWithSecret']).key);
  }
  const created = await t.api
    .post('/api/v1/plans')
    .send({ code: 'pro', name: 'Pro', interval: 'month', price: { model: 'flat', amount: '10.00' } });
  expect(created.status, created.text).toBe(201);
  plan = created.body as Schemas['Plan'];
  const rate = await t.api
    .post('/api/v1/tax-rates')
    .send({ code: 'VAT', name: 'VAT', percentage: '19.0000', region: 'DE', effective_from: '2020-01-01' });
  expect(rate.status, rate.text).toBe(201);
  taxRate = rate.body as Schemas['TaxRate'];
});

/** A fresh subscription at a custom price (set by the tenant's admin). */
async function customPriced() {
  const user = await createUser(t);
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_cost: '3.00' });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

async function openInvoice() {
  const user = await createUser(t);
  const sub = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: plan.id });
  const draft = await t.api
    .post(`/api/v1/subscriptions/${(sub.body as Schemas['Subscription']).id}/invoices`)
    .send({ date: '2026-01-01' });
  expect(draft.status, draft.text).toBe(201);
  const id = (draft.body as Schemas['Invoice']).id;
  expect((await t.api.post(`/api/v1/invoices/${id}/finalize`)).status).toBe(200);
  return id;
}

/**
 * The money decisions: each prepares what it needs (as the tenant's admin), then returns the
 * request to send, so that the check of "nothing written" covers the request alone.
 */
type Decision = () => Promise<(api: Api) => PromiseLike<{ status: number; text: string; body: unknown }>>;
const unique = () => Math.random().toString(36).slice(2, 8);
const decisions: Array<[string, Decision]> = [
  [
    'create a plan (a free one, say)',
    () =>
      Promise.resolve((api: Api) =>
        api.post('/api/v1/plans').send({
          code: `free-${unique()}`,
          name: 'Free',
          interval: 'month',
          price: { model: 'flat', amount: '0.00' },
        }),
      ),
  ],
  [
    'change a plan',
    () =>
      Promise.resolve((api: Api) => api.patch(`/api/v1/plans/${plan.id}`).send({ name: `Pro ${unique()}` })),
  ],
  [
    'archive or delete a plan',
    async () => {
      const made = await t.api.post('/api/v1/plans').send({
        code: `gone-${unique()}`,
        name: 'Gone',
        interval: 'month',
        price: { model: 'flat', amount: '1.00' },
      });
      return (api) => api.delete(`/api/v1/plans/${(made.body as Schemas['Plan']).id}`);
    },
  ],
  [
    'create a tax rate',
    () =>
      Promise.resolve((api: Api) =>
        api.post('/api/v1/tax-rates').send({
          code: `T${unique()}`,
          name: 'Tax',
          percentage: '1.0000',
          region: 'FR',
          effective_from: '2020-01-01',
        }),
      ),
  ],
  [
    'supersede a tax rate',
    () =>
      Promise.resolve((api: Api) =>
        api
          .post(`/api/v1/tax-rates/${taxRate.id}/supersede`)
          .send({ percentage: '0.0000', effective_from: `20${30 + Math.floor(Math.random() * 60)}-01-01` }),
      ),
  ],
  [
    'subscribe at a custom price',
    async () => {
      const user = await createUser(t);
      return (api) =>
        api
          .post('/api/v1/subscriptions')
          .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_cost: '1.00' });
    },
  ],
  [
    'change a custom price',
    async () => {
      const { id } = await customPriced();
      return (api) => api.patch(`/api/v1/subscriptions/${id}`).send({ plan_cost: '0.01' });
    },
  ],
  [
    "change a custom price's interval (3.00 a month becomes 3.00 a year)",
    async () => {
      const { id } = await customPriced();
      return (api) => api.patch(`/api/v1/subscriptions/${id}`).send({ billing_interval: 'year' });
    },
  ],
  [
    'schedule a custom price for the end of the period',
    async () => {
      const { id } = await customPriced();
      return (api) => api.post(`/api/v1/subscriptions/${id}/scheduled-change`).send({ plan_cost: '0.01' });
    },
  ],
  [
    'add a one-off charge to the next invoice',
    async () => {
      const { id } = await customPriced();
      return (api) =>
        api.post(`/api/v1/subscriptions/${id}/invoice-items`).send({ description: 'x', amount: '9.00' });
    },
  ],
  [
    'create a one-off invoice',
    async () => {
      const { id } = await customPriced();
      return (api) =>
        api
          .post('/api/v1/invoices')
          .send({ subscription_id: id, lines: [{ description: 'x', amount: '9.00' }] });
    },
  ],
  [
    'credit an invoice (a credit note)',
    async () => {
      const id = await openInvoice();
      return (api) => api.post(`/api/v1/invoices/${id}/credit-notes`).send({ reason: 'x', amount: '1.00' });
    },
  ],
  [
    'void an invoice',
    async () => {
      const id = await openInvoice();
      return (api) => api.post(`/api/v1/invoices/${id}/void`);
    },
  ],
  [
    "price a customer's credits (a wallet's rate other than 1)",
    async () => {
      const user = await createUser(t);
      return (api) => api.post('/api/v1/wallets').send({ user_id: user.id, name: 'W', rate: '0.5' });
    },
  ],
  [
    'give credit (a wallet with an overdraft)',
    async () => {
      const user = await createUser(t);
      return (api) =>
        api.post('/api/v1/wallets').send({ user_id: user.id, name: 'W', overdraft_limit: '10' });
    },
  ],
];

describe('setting, changing or forgiving a price', () => {
  for (const [what, prepare] of decisions) {
    it(`${what}: only an admin key`, async () => {
      for (const role of ROLES) {
        const request = await prepare();
        const before = await fingerprint(ctx.db);
        const res = await request(keys[role]);
        if (role === 'admin') expect(res.status, res.text).toBeLessThan(300);
        else {
          expect(res.status, `${role} may not ${what}`).toBe(403);
          // The scope it lacks is named, as for every 403 (keys8 #2): an editor's is admin.
          const detail = (res.body as { detail: string }).detail;
          expect(detail, `${role}: ${what}`).toMatch(
            role === 'editor' ? /\badmin scope\b/ : /\b(write|admin) scope\b/,
          );
          expect(await fingerprint(ctx.db), `${role}'s refusal wrote nothing`).toEqual(before);
        }
      }
    });
  }
});

describe('within the catalog, an editor', () => {
  it('puts customers on plans, changes quantities and plans, cancels, invoices and collects', async () => {
    const editor = keys.editor;
    const user = await createUser({ api: editor });
    const sub = await editor
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: plan.id, quantity: 2 });
    expect(sub.status, sub.text).toBe(201);
    const id = (sub.body as Schemas['Subscription']).id;
    expect((await editor.patch(`/api/v1/subscriptions/${id}`).send({ quantity: 3 })).status).toBe(200);
    // Moving an admin-priced subscription onto a plan prices it from the catalog: allowed.
    const custom = await customPriced();
    const moved = await editor.patch(`/api/v1/subscriptions/${custom.id}`).send({ plan_id: plan.id });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ plan_cost: '10.00' });
    const invoice = await editor.post(`/api/v1/subscriptions/${id}/invoices`).send({ date: '2026-01-01' });
    expect(invoice.status).toBe(201);
    const invoiceId = (invoice.body as Schemas['Invoice']).id;
    expect((await editor.post(`/api/v1/invoices/${invoiceId}/finalize`)).status).toBe(200);
    const pay = await editor.post(`/api/v1/invoices/${invoiceId}/payments`).send({
      amount: (invoice.body as Schemas['Invoice']).total,
      payment_method: 'pm_card_visa',
      rail: 'card',
    });
    expect(pay.status, pay.text).toBe(202);
    expect((await editor.post(`/api/v1/subscriptions/${id}/cancel`).send({ at: 'now' })).status).toBe(200);
  });

  it('may resend a custom price as it is, in any decimal form: that sets no price, and writes nothing', async () => {
    const custom = await customPriced(); // 3.00 a month
    const before = await fingerprint(ctx.db);
    for (const same of ['3.00', '3', '3.0']) {
      const res = await keys.editor.patch(`/api/v1/subscriptions/${custom.id}`).send({ plan_cost: same });
      expect(res.status, `${same}: ${res.text}`).toBe(200);
      expect(res.body).toMatchObject({ plan_cost: '3.00', version: custom.version });
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    const changed = await keys.editor.patch(`/api/v1/subscriptions/${custom.id}`).send({ plan_cost: '3.01' });
    expect(changed.status).toBe(403);
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
