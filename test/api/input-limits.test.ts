// Values JSON Schema formats accept but PostgreSQL or JavaScript cannot hold: each gets a 400
// field error naming the input, and nothing is written.
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

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
