import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
const MISSING = '01937f00-0000-7000-8000-000000000000';

describe('POST /api/v1/users', () => {
  it('creates a user, answers 201 with Location, and stores it', async () => {
    const res = await ctx.api.post('/api/v1/users').send({ name: 'Ada Lovelace', email: 'Ada@Example.com' });
    expect(res.status).toBe(201);
    const user = res.body as Schemas['User'];
    expect(user).toMatchObject({ name: 'Ada Lovelace', email: 'Ada@Example.com' });
    expect(user.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(res.headers.location).toBe(`/api/v1/users/${user.id}`);
    const stored = await ctx.db
      .selectFrom('users')
      .select(['name', 'email'])
      .where('id', '=', user.id)
      .execute();
    expect(stored).toEqual([{ name: 'Ada Lovelace', email: 'Ada@Example.com' }]);
  });

  it('rejects an email already taken in another case with 409 and writes nothing', async () => {
    await createUser(ctx, { email: 'grace@example.com' });
    const before = await fingerprint(ctx.db);
    const res = await ctx.api.post('/api/v1/users').send({ name: 'Grace', email: 'GRACE@example.com' });
    expectProblem(res, 409, 'conflict');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it.each([
    ['a missing email', { name: 'No Email' }, '/email'],
    ['an invalid email', { name: 'Bad', email: 'not-an-email' }, '/email'],
    ['a blank name', { name: '   ', email: 'blank@example.com' }, '/name'],
    ['an unknown field', { name: 'X', email: 'x@example.com', admin: true }, '/admin'],
    ['a name that is a number', { name: 42, email: 'n@example.com' }, '/name'],
    ['a region no ISO code names (UK)', { name: 'R', email: 'uk@example.com', region: 'UK' }, '/region'],
    ['a region no ISO code names (EU)', { name: 'R', email: 'eu@example.com', region: 'EU' }, '/region'],
    ['a subdivision of no country', { name: 'R', email: 'xx@example.com', region: 'XX-CA' }, '/region'],
  ])('rejects %s with 400 naming the field, and writes nothing', async (_case, body, field) => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api.post('/api/v1/users').send(body);
    const problem = expectProblem(res, 400, 'validation-error');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

it('takes assigned ISO 3166 regions, and says the rule in words for others (import1 #5)', async () => {
  for (const region of ['GB', 'US-CA', 'XK', 'FR-75']) {
    const res = await ctx.api
      .post('/api/v1/users')
      .send({ name: region, email: `r-${region}@example.com`, region });
    expect(res.status, res.text).toBe(201);
  }
  const refused = expectProblem(
    await ctx.api.post('/api/v1/users').send({ name: 'UK', email: 'r-uk@example.com', region: 'UK' }),
    400,
    'validation-error',
  );
  expect(refused.errors).toEqual([
    expect.objectContaining({
      field: '/region',
      message:
        'must be an assigned ISO 3166-1 alpha-2 country code in capitals (GB, not UK), or an ISO 3166-2 subdivision of one (US-CA)',
    }),
  ]);
});

describe('GET /api/v1/users/{userId}', () => {
  it('returns the user', async () => {
    const user = await createUser(ctx);
    const res = await ctx.api.get(`/api/v1/users/${user.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(user);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    expectProblem(await ctx.api.get(`/api/v1/users/${MISSING}`), 404, 'not-found');
    const problem = expectProblem(await ctx.api.get('/api/v1/users/42'), 400, 'validation-error');
    expect(problem.errors?.[0]).toMatchObject({ location: 'path', field: 'userId' });
  });
});

describe('GET /api/v1/users', () => {
  it('pages through every user exactly once, newest first', async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createUser(ctx)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await ctx.api.get('/api/v1/users').query({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      const page = res.body as Schemas['UserList'];
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((u) => u.id));
      cursor = page.next_cursor;
    } while (cursor);
    const all = (await ctx.db.selectFrom('users').select('id').execute()).map((r) => r.id);
    expect(seen).toHaveLength(all.length);
    expect(new Set(seen)).toEqual(new Set(all));
    expect(seen).toEqual([...seen].sort().reverse());
    expect(seen.slice(0, 5)).toEqual([...created].reverse());
  });

  it('filters by email case-insensitively', async () => {
    const user = await createUser(ctx, { email: 'Filter.Me@example.com' });
    const res = await ctx.api.get('/api/v1/users').query({ email: 'filter.me@EXAMPLE.com' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [user], next_cursor: null });
  });

  it('refuses a cursor of another list, and still reads one issued before cursors named their list', async () => {
    for (let i = 0; i < 3; i++) await createUser(ctx);
    await createFeature(ctx);
    await createFeature(ctx);
    const users = (await ctx.api.get('/api/v1/users').query({ limit: 1 })).body as Schemas['UserList'];
    const features = (await ctx.api.get('/api/v1/features').query({ limit: 1 }))
      .body as Schemas['FeatureList'];
    expect(users.next_cursor).not.toBeNull();
    expect(features.next_cursor).not.toBeNull();
    const mixed = await ctx.api.get('/api/v1/features').query({ cursor: users.next_cursor });
    expectProblem(mixed, 400, 'invalid-cursor');
    expectProblem(
      await ctx.api.get('/api/v1/users').query({ cursor: features.next_cursor }),
      400,
      'invalid-cursor',
    );
    // Its own list reads it; and an older cursor (v1:<id>) reads as it did.
    const next = await ctx.api.get('/api/v1/users').query({ limit: 1, cursor: users.next_cursor });
    expect(next.status, next.text).toBe(200);
    const legacy = Buffer.from(`v1:${users.data[0]!.id}`).toString('base64url');
    const old = await ctx.api.get('/api/v1/users').query({ limit: 1, cursor: legacy });
    expect(old.status, old.text).toBe(200);
    expect(old.body).toEqual(next.body);
  });

  it('rejects a limit out of range and a forged cursor with 400', async () => {
    expectProblem(await ctx.api.get('/api/v1/users?limit=0'), 400, 'validation-error');
    expectProblem(await ctx.api.get('/api/v1/users?limit=101'), 400, 'validation-error');
    expectProblem(await ctx.api.get('/api/v1/users?cursor=bm90LWEtY3Vyc29y'), 400, 'invalid-cursor');
  });
});

describe('PATCH /api/v1/users/{userId}', () => {
  it('changes only the fields sent and moves updated_at', async () => {
    const user = await createUser(ctx);
    const res = await ctx.api.patch(`/api/v1/users/${user.id}`).send({ name: 'Renamed' });
    expect(res.status).toBe(200);
    const updated = res.body as Schemas['User'];
    expect(updated).toMatchObject({
      id: user.id,
      name: 'Renamed',
      email: user.email,
      created_at: user.created_at,
    });
    expect(Date.parse(updated.updated_at)).toBeGreaterThanOrEqual(Date.parse(user.updated_at));
  });

  it('rejects an empty body with 400, a taken email with 409, and an unknown id with 404', async () => {
    const a = await createUser(ctx);
    const b = await createUser(ctx);
    const before = await fingerprint(ctx.db);
    expectProblem(await ctx.api.patch(`/api/v1/users/${a.id}`).send({}), 400, 'validation-error');
    expectProblem(
      await ctx.api.patch(`/api/v1/users/${a.id}`).send({ email: b.email.toUpperCase() }),
      409,
      'conflict',
    );
    expectProblem(await ctx.api.patch(`/api/v1/users/${MISSING}`).send({ name: 'X' }), 404, 'not-found');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('DELETE /api/v1/users/{userId}', () => {
  it('deletes a user without subscriptions', async () => {
    const user = await createUser(ctx);
    const res = await ctx.api.delete(`/api/v1/users/${user.id}`);
    expect(res.status).toBe(204);
    expectProblem(await ctx.api.get(`/api/v1/users/${user.id}`), 404, 'not-found');
  });

  it('refuses with 409 while the user has a subscription, even a canceled one', async () => {
    const user = await createUser(ctx);
    await createSubscription(ctx, { user_id: user.id, status: 'canceled' });
    const before = await fingerprint(ctx.db);
    const problem = expectProblem(await ctx.api.delete(`/api/v1/users/${user.id}`), 409, 'conflict');
    expect(problem.detail).toMatch(/subscriptions/);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('refuses with 409 naming what is kept for good: a wallet, usage events', async () => {
    const withWallet = await createUser(ctx);
    const wallet = await ctx.api.post('/api/v1/wallets').send({ user_id: withWallet.id, name: 'Credits' });
    expect(wallet.status, wallet.text).toBe(201);
    const walletProblem = expectProblem(
      await ctx.api.delete(`/api/v1/users/${withWallet.id}`),
      409,
      'conflict',
    );
    expect(walletProblem.detail).toMatch(/wallet/);
    expect(walletProblem.detail).not.toMatch(/subscriptions/);

    const withUsage = await createUser(ctx);
    const metric = await ctx.api
      .post('/api/v1/billable-metrics')
      .send({ code: `calls_${withUsage.id.slice(-8)}`, name: 'Calls', aggregation: 'count' });
    expect(metric.status, metric.text).toBe(201);
    const event = await ctx.api.post('/api/v1/usage-events').send({
      event_id: `kept-${withUsage.id}`,
      user_id: withUsage.id,
      metric: (metric.body as Schemas['BillableMetric']).code,
    });
    expect(event.status, event.text).toBe(201);
    const before = await fingerprint(ctx.db);
    const usageProblem = expectProblem(
      await ctx.api.delete(`/api/v1/users/${withUsage.id}`),
      409,
      'conflict',
    );
    expect(usageProblem.detail).toMatch(/usage events/);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers 404 for an unknown id', async () => {
    expectProblem(await ctx.api.delete(`/api/v1/users/${MISSING}`), 404, 'not-found');
  });
});
