import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createFeature, createSubscription } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
const MISSING = '01937f00-0000-7000-8000-000000000000';

describe('POST /api/v1/features', () => {
  it('creates a feature with 201 and Location; description defaults to null', async () => {
    const res = await ctx.api.post('/api/v1/features').send({ name: 'sso' });
    expect(res.status).toBe(201);
    const feature = res.body as Schemas['Feature'];
    expect(feature).toMatchObject({ name: 'sso', description: null });
    expect(res.headers.location).toBe(`/api/v1/features/${feature.id}`);
    const stored = await ctx.db.selectFrom('features').select('name').where('id', '=', feature.id).execute();
    expect(stored).toEqual([{ name: 'sso' }]);
  });

  it('rejects a duplicate name with 409 and writes nothing', async () => {
    await createFeature(ctx, { name: 'audit-log' });
    const before = await fingerprint(ctx.db);
    expectProblem(await ctx.api.post('/api/v1/features').send({ name: 'audit-log' }), 409, 'conflict');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it.each([
    ['a missing name', { description: 'x' }],
    ['a name over 200 characters', { name: 'x'.repeat(201) }],
    ['a description that is not a string', { name: 'ok', description: 5 }],
  ])('rejects %s with 400 and writes nothing', async (_case, body) => {
    const before = await fingerprint(ctx.db);
    expectProblem(await ctx.api.post('/api/v1/features').send(body), 400, 'validation-error');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('GET /api/v1/features/{featureId}', () => {
  it('returns the feature, or 404', async () => {
    const feature = await createFeature(ctx, { description: 'Single sign-on' });
    const res = await ctx.api.get(`/api/v1/features/${feature.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(feature);
    expectProblem(await ctx.api.get(`/api/v1/features/${MISSING}`), 404, 'not-found');
  });
});

describe('GET /api/v1/features', () => {
  it('pages newest first and filters by exact name', async () => {
    const a = await createFeature(ctx);
    const b = await createFeature(ctx);
    const first = await ctx.api.get('/api/v1/features').query({ limit: 1 });
    expect(first.status).toBe(200);
    expect((first.body as Schemas['FeatureList']).data.map((f) => f.id)).toEqual([b.id]);
    const second = await ctx.api
      .get('/api/v1/features')
      .query({ limit: 1, cursor: (first.body as Schemas['FeatureList']).next_cursor });
    expect((second.body as Schemas['FeatureList']).data.map((f) => f.id)).toEqual([a.id]);

    const byName = await ctx.api.get('/api/v1/features').query({ name: a.name });
    expect(byName.body).toEqual({ data: [a], next_cursor: null });
  });
});

describe('PATCH /api/v1/features/{featureId}', () => {
  it('sets and clears the description', async () => {
    const feature = await createFeature(ctx, { description: 'old' });
    const set = await ctx.api.patch(`/api/v1/features/${feature.id}`).send({ description: 'new' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ name: feature.name, description: 'new' });
    const cleared = await ctx.api.patch(`/api/v1/features/${feature.id}`).send({ description: null });
    expect(cleared.body).toMatchObject({ description: null });
  });

  it('rejects a taken name with 409 and an unknown id with 404, writing nothing', async () => {
    const a = await createFeature(ctx);
    const b = await createFeature(ctx);
    const before = await fingerprint(ctx.db);
    expectProblem(await ctx.api.patch(`/api/v1/features/${a.id}`).send({ name: b.name }), 409, 'conflict');
    expectProblem(await ctx.api.patch(`/api/v1/features/${MISSING}`).send({ name: 'x' }), 404, 'not-found');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('DELETE /api/v1/features/{featureId}', () => {
  it('deletes an unlinked feature', async () => {
    const feature = await createFeature(ctx);
    expect((await ctx.api.delete(`/api/v1/features/${feature.id}`)).status).toBe(204);
    expectProblem(await ctx.api.get(`/api/v1/features/${feature.id}`), 404, 'not-found');
  });

  it('refuses with 409 while a subscription includes the feature', async () => {
    const feature = await createFeature(ctx);
    const subscription = await createSubscription(ctx);
    await ctx.api.put(`/api/v1/subscriptions/${subscription.id}/features/${feature.id}`).expect(201);
    const before = await fingerprint(ctx.db);
    const problem = expectProblem(await ctx.api.delete(`/api/v1/features/${feature.id}`), 409, 'conflict');
    expect(problem.detail).toMatch(/linked/);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('takes its links to canceled subscriptions with it, which cannot be unlinked one by one', async () => {
    const t = await ctx.newTenant();
    const feature = await createFeature(t);
    const [ended, live] = [await createSubscription(t), await createSubscription(t)];
    for (const s of [ended, live])
      await t.api.put(`/api/v1/subscriptions/${s.id}/features/${feature.id}`).expect(201);
    await t.api.post(`/api/v1/subscriptions/${ended.id}/cancel`).send({ at: 'now' }).expect(200);
    expectProblem(
      await t.api.delete(`/api/v1/subscriptions/${ended.id}/features/${feature.id}`),
      409,
      'conflict',
    );
    // Still linked to a live subscription: refused, and nothing changed (the canceled link stays).
    const before = await fingerprint(ctx.db);
    expectProblem(await t.api.delete(`/api/v1/features/${feature.id}`), 409, 'conflict');
    expect(await fingerprint(ctx.db)).toEqual(before);
    await t.api.delete(`/api/v1/subscriptions/${live.id}/features/${feature.id}`).expect(204);
    const events = await t.api.get('/api/v1/events').query({ limit: 100 });
    const cursor = (events.body as Schemas['EventList']).next_cursor;
    await t.api.delete(`/api/v1/features/${feature.id}`).expect(204);
    const after = (await t.api.get('/api/v1/events').query({ limit: 100, cursor }))
      .body as Schemas['EventList'];
    expect(after.data.map((e) => [e.type, e.resource_id])).toEqual([
      ['subscription_feature.unlinked', ended.id],
      ['feature.deleted', feature.id],
    ]);
    const left = await t.api.get(`/api/v1/subscriptions/${ended.id}/features`);
    expect((left.body as Schemas['FeatureList']).data).toEqual([]);
    // The link is gone: unlinking it now is 404, not "canceled is final".
    expectProblem(
      await t.api.delete(`/api/v1/subscriptions/${ended.id}/features/${feature.id}`),
      404,
      'not-found',
    );
  });
});
