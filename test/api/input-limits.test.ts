// Values JSON Schema formats accept but PostgreSQL or JavaScript cannot hold: each gets a 400
// field error naming the input, and nothing is written. Numbers too large for a column or an exact
// computation: the schema states the limit (400), or the rule answers 422 naming the field; never
// a 400 "out of range" from the database.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let user: Schemas['User'];

beforeAll(async () => {
  user = await createUser(ctx);
});

/** Sends the request, expects a 400 naming exactly these fields, and that nothing was written. */
async function expectFieldErrors(
  send: () => PromiseLike<import('supertest').Response>,
  fields: Array<[location: string, field: string]>,
) {
  const before = await fingerprint(ctx.db);
  const body = expectProblem(await send(), 400, 'validation-error');
  expect(body.errors?.map((e) => [e.location, e.field])).toEqual(fields);
  expect(await fingerprint(ctx.db)).toEqual(before);
}

const json = (path: string, method: 'post' | 'patch', raw: string) =>
  ctx.api[method](path).set('Content-Type', 'application/json').send(raw);

describe('timestamps', () => {
  it('refuses a leap second, which JavaScript and PostgreSQL cannot hold', async () => {
    await expectFieldErrors(
      () =>
        ctx.api
          .post('/api/v1/api-keys')
          .send({ name: 'k', role: 'viewer', expires_at: '2030-06-30T23:59:60Z' }),
      [['body', '/expires_at']],
    );
  });

  it('refuses instants outside years 0001 to 9999 in UTC, and a missing offset', async () => {
    for (const expires_at of ['9999-12-31T23:00:00-05:00', '0000-06-01T00:00:00Z', '2030-01-01T00:00:00']) {
      await expectFieldErrors(
        () => ctx.api.post('/api/v1/api-keys').send({ name: 'k', role: 'viewer', expires_at }),
        [['body', '/expires_at']],
      );
    }
  });

  it('accepts any number of fractional digits (RFC 3339 sets no limit), kept to the millisecond', async () => {
    const res = await ctx.api
      .post('/api/v1/api-keys')
      .send({ name: 'fine', role: 'viewer', expires_at: '2030-01-01T00:00:00.1234567891234Z' });
    expect(res.status, res.text).toBe(201);
    expect((res.body as Schemas['ApiKeyWithSecret']).expires_at).toBe('2030-01-01T00:00:00.123Z');
  });

  it('accepts the latest instant', async () => {
    const res = await ctx.api
      .post('/api/v1/api-keys')
      .send({ name: 'far future', role: 'viewer', expires_at: '9999-12-31T23:59:59.999Z' });
    expect(res.status).toBe(201);
    expect((res.body as Schemas['ApiKeyWithSecret']).expires_at).toBe('9999-12-31T23:59:59.999Z');
  });
});

describe('dates', () => {
  it('refuses year 0000, which PostgreSQL has no day of', async () => {
    await expectFieldErrors(
      () =>
        ctx.api
          .post('/api/v1/subscriptions')
          .send({ user_id: user.id, status: 'active', plan_cost: '1.00', start_date: '0000-01-01' }),
      [['body', '/start_date']],
    );
    await expectFieldErrors(
      () => ctx.api.get('/api/v1/subscriptions?start_date_gte=0000-12-31'),
      [['query', 'start_date_gte']],
    );
  });

  it('refuses months of year 0000 with 400, as the contract declares', async () => {
    await expectFieldErrors(
      () => ctx.api.get('/api/v1/reports/taxes?from=0000-01&to=0001-01'),
      [['query', 'from']],
    );
    await expectFieldErrors(() => ctx.api.get('/api/v1/metrics/mrr?from=0000-12'), [['query', 'from']]);
    expect((await ctx.api.get('/api/v1/reports/taxes?from=0001-01&to=0001-02')).status).toBe(200);
  });

  it('accepts year 0001 and year 9999', async () => {
    const res = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '1.00',
      start_date: '0001-01-01',
      end_date: '9999-12-31',
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ start_date: '0001-01-01', end_date: '9999-12-31' });
  });

  it('refuses an analytics window that would start before year 1, and answers one that starts in it', async () => {
    await expectFieldErrors(
      () => ctx.api.get('/api/v1/analytics?as_of=0001-06-15&months=12'),
      [
        ['query', 'as_of'],
        ['query', 'months'],
      ],
    );
    const res = await ctx.api.get('/api/v1/analytics?as_of=0001-12-15&months=12');
    expect(res.status).toBe(200);
    const months = (res.body as Schemas['Analytics']).monthly_revenue.map((m) => m.month);
    expect(months[0]).toBe('0001-01');
    expect(months.at(-1)).toBe('0001-12');
    expect((res.body as Schemas['Analytics']).monthly_revenue[0]?.subscription_count).toBe(1);
  });
});

describe('ids', () => {
  it('refuses a urn:uuid: id in the path and in the body', async () => {
    await expectFieldErrors(() => ctx.api.get(`/api/v1/users/urn:uuid:${user.id}`), [['path', 'userId']]);
    await expectFieldErrors(
      () =>
        ctx.api.post('/api/v1/subscriptions').send({
          user_id: `urn:uuid:${user.id}`,
          status: 'active',
          plan_cost: '1.00',
          start_date: '2026-01-01',
        }),
      [['body', '/user_id']],
    );
  });

  it('takes an upper-case id in a body as the same id: stored, echoed and compared in lower case', async () => {
    const upper = (id: string) => id.toUpperCase();
    const plan = await ctx.api
      .post('/api/v1/plans')
      .send({ code: 'upper-ids', name: 'P', interval: 'month', price: { model: 'flat', amount: '2.50' } });
    expect(plan.status, plan.text).toBe(201);
    const planId = (plan.body as Schemas['Plan']).id;
    const clock = await ctx.api
      .post('/api/v1/test-clocks')
      .send({ name: 'upper', frozen_time: '2026-01-10T00:00:00Z' });
    const clockId = (clock.body as Schemas['TestClock']).id;
    const created = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: upper(user.id),
      plan_id: upper(planId),
      test_clock_id: upper(clockId),
      status: 'active',
      start_date: '2026-01-01',
    });
    expect(created.status, created.text).toBe(201);
    const sub = created.body as Schemas['Subscription'];
    expect(sub).toMatchObject({
      user_id: user.id,
      plan_id: planId,
      test_clock_id: clockId,
      price_breakdown: { plan_id: planId },
    });
    const stored = await ctx.db
      .selectFrom('subscriptions')
      .select('price_breakdown')
      .where('id', '=', sub.id)
      .executeTakeFirstOrThrow();
    expect(stored.price_breakdown).toMatchObject({ plan_id: planId });

    // The same plan in upper case is no change: no new version, nothing written.
    const before = await fingerprint(ctx.db);
    const same = await ctx.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ plan_id: upper(planId) });
    expect(same.status, same.text).toBe(200);
    expect(same.body).toMatchObject({ version: sub.version, price_breakdown: { plan_id: planId } });
    expect(await fingerprint(ctx.db)).toEqual(before);

    const scheduled = await ctx.api
      .post(`/api/v1/subscriptions/${sub.id}/scheduled-change`)
      .send({ plan_id: upper(planId), quantity: 2 });
    expect(scheduled.status, scheduled.text).toBe(200);
    expect((scheduled.body as Schemas['Subscription']).scheduled_change).toMatchObject({ plan_id: planId });

    const coupon = await ctx.api
      .post('/api/v1/coupons')
      .send({ name: 'Upper', percent_off: '10', duration: 'forever', plan_ids: [upper(planId)] });
    expect(coupon.status, coupon.text).toBe(201);
    expect(coupon.body).toMatchObject({ plan_ids: [planId] });
  });

  it('accepts an upper-case id', async () => {
    const res = await ctx.api.get(`/api/v1/users/${user.id.toUpperCase()}`);
    expect(res.status).toBe(200);
    expect((res.body as Schemas['User']).id).toBe(user.id);
  });
});

describe('text', () => {
  it('refuses a lone surrogate instead of storing it altered', async () => {
    await expectFieldErrors(
      () => json('/api/v1/users', 'post', '{"name": "a\\ud800b", "email": "lone@example.com"}'),
      [['body', '/name']],
    );
    await expectFieldErrors(
      () => json(`/api/v1/users/${user.id}`, 'patch', '{"name": "\\udc00"}'),
      [['body', '/name']],
    );
  });

  it('refuses U+0000 in the body and in the query', async () => {
    await expectFieldErrors(
      () => ctx.api.post('/api/v1/features').send({ name: 'ok', description: 'nul \u0000 inside' }),
      [['body', '/description']],
    );
    await expectFieldErrors(() => ctx.api.get('/api/v1/users?email=a%00@example.com'), [['query', 'email']]);
  });

  it('stores a surrogate pair (an emoji) exactly', async () => {
    const created = await createUser(ctx, { name: 'Ada \u{1F680}' });
    expect(created.name).toBe('Ada 🚀');
    const stored = await ctx.db
      .selectFrom('users')
      .select('name')
      .where('id', '=', created.id)
      .executeTakeFirst();
    expect(stored?.name).toBe('Ada 🚀');
  });
});

describe('numbers', () => {
  async function perUnitPlan(amount: string): Promise<Schemas['Plan']> {
    const res = await ctx.api.post('/api/v1/plans').send({
      code: `unit-${Date.now()}-${Math.random()}`.replace('.', ''),
      name: 'Per unit',
      interval: 'month',
      price: { model: 'per_unit', amount },
    });
    expect(res.status, res.text).toBe(201);
    return res.body as Schemas['Plan'];
  }

  it('quotes 10^9 units at 12.00 exactly: a quote has no upper bound', async () => {
    const plan = await perUnitPlan('12.00');
    const res = await ctx.api.post(`/api/v1/plans/${plan.id}/quote`).send({ quantity: 1_000_000_000 });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ amount: '12000000000.00' });
  });

  it('refuses with 422 naming quantity a subscription priced over 9999999999.99 a period, and writes nothing', async () => {
    const plan = await perUnitPlan('12.00');
    const before = await fingerprint(ctx.db);
    const created = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-01',
      plan_id: plan.id,
      quantity: 1_000_000_000,
    });
    const problem = expectProblem(created, 422, 'unprocessable');
    expect(problem.errors).toEqual([
      {
        location: 'body',
        field: '/quantity',
        message: 'prices the subscription at 12000000000.00 a period; at most 9999999999.99 is allowed',
      },
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);

    // At the limit exactly: 833333333 × 12.00 = 9999999996.00 is fine; one more unit is not.
    const ok = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-01',
      plan_id: plan.id,
      quantity: 833_333_333,
    });
    expect(ok.status, ok.text).toBe(201);
    const subscription = ok.body as Schemas['Subscription'];
    expect(subscription.plan_cost).toBe('9999999996.00');
    const dearer = await perUnitPlan('12.0001');
    const afterCreate = await fingerprint(ctx.db);
    const patched = await ctx.api
      .patch(`/api/v1/subscriptions/${subscription.id}`)
      .send({ quantity: 833_333_334 });
    expectProblem(patched, 422, 'unprocessable');
    // Moving it to a dearer plan at its quantity: the same rule.
    expectProblem(
      await ctx.api.patch(`/api/v1/subscriptions/${subscription.id}`).send({ plan_id: dearer.id }),
      422,
      'unprocessable',
    );
    expect(await fingerprint(ctx.db)).toEqual(afterCreate);
  });

  it('states the largest tier boundary, 2^53 - 1, so that no boundary loses precision (400)', async () => {
    const tiers = (upTo: number) => [
      { up_to: upTo, unit_amount: '1', flat_amount: '0' },
      { up_to: null, unit_amount: '2', flat_amount: '0' },
    ];
    // 2^53 + 1 arrives as 2^53 in JavaScript: refused, not stored altered.
    await expectFieldErrors(
      () =>
        json(
          '/api/v1/plans',
          'post',
          '{"code":"tiers-2-53","name":"T","interval":"month","price":{"model":"tiered","tiers":[{"up_to":9007199254740993,"unit_amount":"1","flat_amount":"0"},{"up_to":null,"unit_amount":"2","flat_amount":"0"}]}}',
        ),
      [['body', '/price/tiers/0/up_to']],
    );
    const largest = await ctx.api.post('/api/v1/plans').send({
      code: 'tiers-largest',
      name: 'T',
      interval: 'month',
      price: { model: 'tiered', tiers: tiers(Number.MAX_SAFE_INTEGER) },
    });
    expect(largest.status, largest.text).toBe(201);
    expect((largest.body as Schemas['Plan']).price.tiers?.[0]?.up_to).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('states the largest invoice number a filter may name (400), past which the database would overflow', async () => {
    await expectFieldErrors(
      () => ctx.api.get('/api/v1/invoices?number=9223372036854775808'),
      [['query', 'number']],
    );
    await expectFieldErrors(
      () => ctx.api.get('/api/v1/invoices?number=9007199254740992'),
      [['query', 'number']],
    );
    const largest = await ctx.api.get('/api/v1/invoices?number=9007199254740991');
    expect(largest.status, largest.text).toBe(200);
  });

  it('answers a forged event cursor past the largest position with 400 invalid-cursor', async () => {
    const subscription = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-01',
      plan_cost: '1.00',
    });
    expect(subscription.status, subscription.text).toBe(201);
    const forged = (xid: string, seq: string) => Buffer.from(`e1:${xid}:${seq}`).toString('base64url');
    for (const cursor of [forged('99999999999999999999', '1'), forged('1', '9223372036854775808')]) {
      for (const path of [
        '/api/v1/events',
        `/api/v1/subscriptions/${(subscription.body as Schemas['Subscription']).id}/events`,
      ]) {
        expectProblem(await ctx.api.get(`${path}?cursor=${cursor}`), 400, 'invalid-cursor');
      }
    }
    const largest = forged('18446744073709551615', '9223372036854775807');
    expect((await ctx.api.get(`/api/v1/events?cursor=${largest}`)).status).toBe(200);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
