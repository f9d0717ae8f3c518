// Plans and server-side prices: CRUD, versions, quotes at tier boundaries, and subscriptions the
// client cannot price.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { holdLocks, waitForLockWaiters } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

const TIERS = [
  { up_to: 10, unit_amount: '5.00', flat_amount: '0' },
  { up_to: 100, unit_amount: '4.00', flat_amount: '10.00' },
  { up_to: null, unit_amount: '3.5', flat_amount: '0' },
];

async function createPlan(body: Partial<Schemas['PlanCreate']> & Pick<Schemas['PlanCreate'], 'price'>) {
  const res = await t.api.post('/api/v1/plans').send({
    code: `plan-${Math.random().toString(36).slice(2, 10)}`,
    name: 'A plan',
    interval: 'month',
    ...body,
  });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Plan'];
}

beforeAll(async () => {
  t = await ctx.newTenant();
});

describe('plans', () => {
  it('creates, reads, lists, renames and archives a plan, with ETags and events', async () => {
    const plan = await createPlan({ code: 'pro', name: 'Pro', price: { model: 'tiered', tiers: TIERS } });
    expect(plan).toMatchObject({
      code: 'pro',
      interval: 'month',
      interval_count: 1,
      price_version: 1,
      archived: false,
      version: 1,
      price: {
        model: 'tiered',
        amount: null,
        tiers: [
          { up_to: 10, unit_amount: '5.00', flat_amount: '0.00' },
          { up_to: 100, unit_amount: '4.00', flat_amount: '10.00' },
          { up_to: null, unit_amount: '3.50', flat_amount: '0.00' },
        ],
      },
    });
    const got = await t.api.get(`/api/v1/plans/${plan.id}`);
    expect(got.headers.etag).toBe('"1"');
    expect((await t.api.get(`/api/v1/plans/${plan.id}`).set('If-None-Match', '"1"')).status).toBe(304);
    const listed = (await t.api.get('/api/v1/plans?code=pro')).body as Schemas['PlanList'];
    expect(listed.data.map((p) => p.id)).toEqual([plan.id]);
    const archived = await t.api
      .patch(`/api/v1/plans/${plan.id}`)
      .set('If-Match', '"1"')
      .send({ archived: true, name: 'Pro (old)' });
    expect(archived.status).toBe(200);
    expect(archived.body).toMatchObject({ archived: true, name: 'Pro (old)', version: 2, price_version: 1 });
    expect((archived.body as Schemas['Plan']).archived_at).toBe(
      (archived.body as Schemas['Plan']).updated_at,
    );
    expect(((await t.api.get('/api/v1/plans?archived=false')).body as Schemas['PlanList']).data).toEqual([]);
    expectProblem(
      await t.api
        .post('/api/v1/plans')
        .send({ code: 'pro', name: 'Again', interval: 'year', price: { model: 'flat', amount: '1' } }),
      409,
      'conflict',
    );
  });

  it('takes a price resent as it is, in any decimal form, as no change: no new price version', async () => {
    const plan = await createPlan({ price: { model: 'tiered', tiers: TIERS } });
    const before = await fingerprint(ctx.db);
    for (const tiers of [
      TIERS,
      [
        { up_to: 10, unit_amount: '5', flat_amount: '0.00' },
        { up_to: 100, unit_amount: '4.0', flat_amount: '10' },
        { up_to: null, unit_amount: '3.50', flat_amount: '0.0' },
      ],
    ]) {
      const res = await t.api.patch(`/api/v1/plans/${plan.id}`).send({ price: { model: 'tiered', tiers } });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ version: 1, price_version: 1 });
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // Usage charges resent as a GET shows them: no change either (jsonb reorders their keys).
    const metric = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code: `m-${Math.random().toString(36).slice(2, 10)}`, name: 'M', aggregation: 'count' });
    const usage_charges = [
      { metric: (metric.body as Schemas['BillableMetric']).code, model: 'per_unit', amount: '0.5' },
    ];
    const charged = await t.api.patch(`/api/v1/plans/${plan.id}`).send({ usage_charges });
    expect(charged.body).toMatchObject({ version: 2, price_version: 1 });
    const shown = (charged.body as Schemas['Plan']).usage_charges.map(({ billable_metric_id: _, ...c }) => c);
    const again = await fingerprint(ctx.db);
    for (const charges of [usage_charges, shown]) {
      const res = await t.api.patch(`/api/v1/plans/${plan.id}`).send({ usage_charges: charges });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ version: 2, price_version: 1 });
    }
    expect(await fingerprint(ctx.db)).toEqual(again);
    const changed = await t.api.patch(`/api/v1/plans/${plan.id}`).send({
      price: { model: 'tiered', tiers: [{ ...TIERS[0]!, unit_amount: '5.01' }, ...TIERS.slice(1)] },
    });
    expect(changed.body).toMatchObject({ version: 3, price_version: 2 });
  });

  it('refuses an invalid price with 422 naming the field, writing nothing', async () => {
    const before = await fingerprint(ctx.db);
    const cases: Array<[Schemas['PlanPrice'], string]> = [
      [
        { model: 'tiered', tiers: [{ up_to: 10, unit_amount: '1', flat_amount: '0' }] },
        '/price/tiers/0/up_to',
      ],
      [
        {
          model: 'volume',
          tiers: [
            { up_to: 5, unit_amount: '1', flat_amount: '0' },
            { up_to: 5, unit_amount: '1', flat_amount: '0' },
            { up_to: null, unit_amount: '1', flat_amount: '0' },
          ],
        },
        '/price/tiers/1/up_to',
      ],
      [{ model: 'flat' }, '/price/amount'],
      [{ model: 'per_unit', amount: '1', tiers: TIERS }, '/price/tiers'],
    ];
    for (const [price, field] of cases) {
      const res = await t.api
        .post('/api/v1/plans')
        .send({ code: 'bad', name: 'Bad', interval: 'month', price });
      expect(expectProblem(res, 422, 'unprocessable').errors?.map((e) => e.field)).toContain(field);
    }
    expectProblem(
      await t.api
        .post('/api/v1/plans')
        .send({ code: 'bad', name: 'Bad', interval: 'month', price: { model: 'flat', amount: '1.00001' } }),
      400,
      'validation-error',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('quotes the largest price for the largest quantity exactly, past ten integer digits', async () => {
    // The largest unit price a subscription can still pay for one unit (9999999999.99 rounded).
    const plan = await createPlan({ price: { model: 'per_unit', amount: '9999999999.9949' } });
    const res = await t.api.post(`/api/v1/plans/${plan.id}/quote`).send({ quantity: 1_000_000_000 });
    expect(res.status, res.text).toBe(200);
    const quote = res.body as Schemas['Quote'];
    expect(quote.breakdown[0]!.amount).toBe('9999999999994900000.0000');
    expect(quote.amount).toBe('9999999999994900000.00');
  });

  it('refuses a price whose one unit costs more than a period may (catalog7 #5)', async () => {
    const before = await fingerprint(ctx.db);
    for (const [price, field] of [
      [{ model: 'flat', amount: '9999999999.9999' }, '/price/amount'],
      [{ model: 'per_unit', amount: '9999999999.995' }, '/price/amount'],
      [
        { model: 'tiered', tiers: [{ up_to: null, unit_amount: '9999999999.00', flat_amount: '1.00' }] },
        '/price/tiers/0',
      ],
    ] as const) {
      const res = await t.api
        .post('/api/v1/plans')
        .send({ code: `max-${price.model}`, name: 'Max', interval: 'month', price });
      const problem = expectProblem(res, 422, 'unprocessable');
      expect(problem.errors).toEqual([
        expect.objectContaining({
          field,
          message: expect.stringContaining('over the most a subscription may cost, 9999999999.99'),
        }),
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // A price that fits, for a quantity too large: refused with the amount.
    const flat = await createPlan({ price: { model: 'per_unit', amount: '9999999999.99' } });
    const user = await createUser(t);
    const res = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: flat.id, quantity: 2 });
    expect(expectProblem(res, 422, 'unprocessable').errors?.[0]?.message).toContain('19999999999.98');
  });

  it('quotes every model at its tier boundaries, creating nothing', async () => {
    const tiered = await createPlan({ price: { model: 'tiered', tiers: TIERS } });
    const volume = await createPlan({ price: { model: 'volume', tiers: TIERS } });
    const perUnit = await createPlan({ price: { model: 'per_unit', amount: '0.0025' } });
    const flat = await createPlan({ price: { model: 'flat', amount: '49.99' } });
    const quote = async (plan: Schemas['Plan'], quantity: number) => {
      const res = await t.api.post(`/api/v1/plans/${plan.id}/quote`).send({ quantity });
      expect(res.status, res.text).toBe(200);
      return res.body as Schemas['Quote'];
    };
    const before = await fingerprint(ctx.db);
    const expected: Array<[Schemas['Plan'], number, string]> = [
      [tiered, 1, '5.00'],
      [tiered, 10, '50.00'],
      [tiered, 11, '64.00'],
      [tiered, 100, '420.00'],
      [tiered, 101, '423.50'],
      [volume, 10, '50.00'],
      [volume, 11, '54.00'],
      [volume, 100, '410.00'],
      [volume, 101, '353.50'],
      [perUnit, 1001, '2.50'],
      [perUnit, 1002, '2.51'],
      [flat, 1, '49.99'],
      [flat, 500, '49.99'],
    ];
    for (const [plan, quantity, amount] of expected) {
      expect((await quote(plan, quantity)).amount, `${plan.price.model} × ${quantity}`).toBe(amount);
    }
    expect((await quote(tiered, 101)).breakdown.map((l) => [l.tier, l.quantity])).toEqual([
      [1, 10],
      [2, 90],
      [3, 1],
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    expectProblem(
      await t.api.post(`/api/v1/plans/${tiered.id}/quote`).send({ quantity: 0 }),
      400,
      'validation-error',
    );
  });
});

describe('a plan deleted by several requests at once', () => {
  it('is deleted once: one 204 and one plan.deleted event, the others 404', async () => {
    for (let round = 0; round < 3; round++) {
      const plan = await createPlan({ price: { model: 'flat', amount: '9.00' } });
      const statuses = await Promise.all(
        Array.from({ length: 6 }, async () => (await t.api.delete(`/api/v1/plans/${plan.id}`)).status),
      );
      expect(
        statuses.filter((s) => s === 204),
        JSON.stringify(statuses),
      ).toHaveLength(1);
      expect(
        statuses.filter((s) => s !== 204).every((s) => s === 404),
        JSON.stringify(statuses),
      ).toBe(true);
      const events = await t.api.get('/api/v1/events').query({ resource_id: plan.id, limit: 100 });
      expect(
        (events.body as Schemas['EventList']).data.filter((e) => e.type === 'plan.deleted'),
      ).toHaveLength(1);
    }
  });
});

describe('subscriptions priced by the server', () => {
  it('computes plan_cost from the plan and keeps the snapshot; refuses a plan_cost sent with plan_id', async () => {
    const plan = await createPlan({ interval: 'year', price: { model: 'tiered', tiers: TIERS } });
    const user = await createUser(t);
    const before = await fingerprint(ctx.db);
    const tampered = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-31',
      plan_id: plan.id,
      quantity: 11,
      plan_cost: '0.01',
    });
    expect(expectProblem(tampered, 422, 'unprocessable').errors?.map((e) => e.field)).toEqual(['/plan_cost']);
    expect(await fingerprint(ctx.db)).toEqual(before);

    const res = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-31', plan_id: plan.id, quantity: 11 });
    expect(res.status, res.text).toBe(201);
    const subscription = res.body as Schemas['Subscription'];
    expect(subscription).toMatchObject({
      plan_id: plan.id,
      plan_version: 1,
      quantity: 11,
      plan_cost: '64.00',
      billing_interval: 'year',
      interval_count: 1,
      price_breakdown: {
        plan_version: 1,
        quantity: 11,
        amount: '64.00',
        breakdown: [
          { tier: 1, quantity: 10 },
          { tier: 2, quantity: 1 },
        ],
      },
    });
    // Anchored on Jan 31, yearly: the period containing today.
    expect(subscription.current_period_start.slice(5)).toBe('01-31');

    // A new price is a new version; the subscription keeps its own until moved.
    await t.api
      .patch(`/api/v1/plans/${plan.id}`)
      .send({ price: { model: 'per_unit', amount: '1.00' } })
      .expect(200);
    const kept = (await t.api.get(`/api/v1/subscriptions/${subscription.id}`))
      .body as Schemas['Subscription'];
    expect(kept).toMatchObject({ plan_version: 1, plan_cost: '64.00' });
    // More seats: repriced at the version it is on.
    const more = await t.api.patch(`/api/v1/subscriptions/${subscription.id}`).send({ quantity: 12 });
    expect(more.body).toMatchObject({ plan_version: 1, quantity: 12, plan_cost: '68.00' });
    // Moved explicitly: the plan's current version.
    const moved = await t.api.patch(`/api/v1/subscriptions/${subscription.id}`).send({ plan_id: plan.id });
    expect(moved.body).toMatchObject({ plan_version: 2, quantity: 12, plan_cost: '12.00' });
    const { rows } = await sql<{ previous: Record<string, unknown> }>`
      select previous from events where resource_id = ${subscription.id} and type = 'subscription.updated' order by seq`.execute(
      ctx.db,
    );
    expect(rows.map((r) => r.previous.plan_cost)).toEqual(['64.00', '68.00']);
    expectProblem(
      await t.api.patch(`/api/v1/subscriptions/${subscription.id}`).send({ plan_cost: '1.00' }),
      422,
      'unprocessable',
    );
  });

  it('refuses an unknown or archived plan, and deleting a plan in use (archive it instead)', async () => {
    const plan = await createPlan({ price: { model: 'flat', amount: '10' } });
    const user = await createUser(t);
    const s = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: plan.id });
    expect(s.status).toBe(201);
    expectProblem(await t.api.delete(`/api/v1/plans/${plan.id}`), 409, 'conflict');
    await t.api.patch(`/api/v1/plans/${plan.id}`).send({ archived: true }).expect(200);
    const archived = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: plan.id });
    expect(expectProblem(archived, 422, 'unprocessable').errors?.[0]?.message).toBe('archived');
    // A subscription on it may still name it: a change of quantity sent with its plan (catalog7 #6).
    const own = await t.api
      .patch(`/api/v1/subscriptions/${(s.body as Schemas['Subscription']).id}`)
      .send({ plan_id: plan.id, quantity: 1 });
    expect(own.status, own.text).toBe(200);
    expect(own.body).toMatchObject({ plan_id: plan.id, plan_cost: '10.00' });
    const unknown = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-01',
      plan_id: '0193a6a2-5000-7000-8000-0000000000ff',
    });
    expectProblem(unknown, 422, 'unprocessable');
    const unused = await createPlan({ price: { model: 'flat', amount: '1' } });
    expect((await t.api.delete(`/api/v1/plans/${unused.id}`)).status).toBe(204);
  });

  it('answers a subscription put on a plan deleted meanwhile as on an unknown plan, 422 (retest8 #6)', async () => {
    const doomed = await createPlan({ price: { model: 'flat', amount: '10' } });
    const user = await createUser(t);
    // The delete, not committed yet: the subscription's insert waits on its rows, then fails.
    const deleting = await holdLocks(
      ctx.db,
      sql`delete from plans where tenant_id = ${t.id} and id = ${doomed.id}`,
    );
    const res = t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: doomed.id })
      .then((r) => r);
    await waitForLockWaiters(ctx.db);
    await deleting.release();
    const problem = expectProblem(await res, 422, 'unprocessable');
    expect(problem.errors).toEqual([expect.objectContaining({ field: '/plan_id', message: 'no such plan' })]);
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('previews a change to a plan deleted meanwhile as to an unknown plan, 422 (retest9 #3)', async () => {
    const doomed = await createPlan({ price: { model: 'flat', amount: '10' } });
    const kept = await createPlan({ price: { model: 'flat', amount: '5' } });
    const user = await createUser(t);
    const created = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_id: kept.id });
    const id = (created.body as Schemas['Subscription']).id;
    const deleting = await holdLocks(
      ctx.db,
      sql`delete from plans where tenant_id = ${t.id} and id = ${doomed.id}`,
    );
    const res = t.api
      .post(`/api/v1/subscriptions/${id}/preview-change`)
      .send({ plan_id: doomed.id })
      .then((r) => r);
    await waitForLockWaiters(ctx.db);
    await deleting.release();
    const problem = expectProblem(await res, 422, 'unprocessable');
    expect(problem.errors).toEqual([expect.objectContaining({ field: '/plan_id', message: 'no such plan' })]);
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('lets only an admin key set a custom price', async () => {
    const editor = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const asEditor = ctx.withKey((editor.body as Schemas['ApiKeyWithSecret']).key);
    const user = await createUser(t);
    const before = await fingerprint(ctx.db);
    const custom = await asEditor
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_cost: '5.00' });
    expectProblem(custom, 403, 'forbidden');
    expect(await fingerprint(ctx.db)).toEqual(before);
    const byAdmin = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', start_date: '2026-01-01', plan_cost: '5.00' });
    expect(byAdmin.status).toBe(201);
    const id = (byAdmin.body as Schemas['Subscription']).id;
    expectProblem(
      await asEditor.patch(`/api/v1/subscriptions/${id}`).send({ plan_cost: '4.00' }),
      403,
      'forbidden',
    );
    expect((await asEditor.patch(`/api/v1/subscriptions/${id}`).send({ status: 'past_due' })).status).toBe(
      200,
    );
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
