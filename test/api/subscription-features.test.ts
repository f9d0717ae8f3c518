import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createFeature, createSubscription } from '../helpers/factories.js';
import { holdLocks, waitForLockWaiters } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
const MISSING = '01937f00-0000-7000-8000-000000000000';
const linkPath = (subscriptionId: string, featureId: string) =>
  `/api/v1/subscriptions/${subscriptionId}/features/${featureId}`;

describe('PUT /api/v1/subscriptions/{subscriptionId}/features/{featureId}', () => {
  it('links with 201, then answers 200 with one link kept', async () => {
    const subscription = await createSubscription(ctx);
    const feature = await createFeature(ctx);
    const first = await ctx.api.put(linkPath(subscription.id, feature.id));
    expect(first.status).toBe(201);
    expect(first.body).toEqual(feature);
    const again = await ctx.api.put(linkPath(subscription.id, feature.id));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(feature);
    const links = await ctx.db
      .selectFrom('subscription_features')
      .select('feature_id')
      .where('subscription_id', '=', subscription.id)
      .execute();
    expect(links).toEqual([{ feature_id: feature.id }]);
  });

  it('answers 404 for an unknown subscription or feature and writes nothing', async () => {
    const subscription = await createSubscription(ctx);
    const feature = await createFeature(ctx);
    const before = await fingerprint(ctx.db);
    const noSubscription = expectProblem(await ctx.api.put(linkPath(MISSING, feature.id)), 404, 'not-found');
    expect(noSubscription.detail).toMatch(/subscription/);
    const noFeature = expectProblem(await ctx.api.put(linkPath(subscription.id, MISSING)), 404, 'not-found');
    expect(noFeature.detail).toMatch(/feature/);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('a link racing the delete of its feature', () => {
  it('answers 404 when the feature is deleted while the link is made, and links nothing', async () => {
    const t = await ctx.newTenant();
    const subscription = await createSubscription(t);
    const feature = await createFeature(t);
    // The delete has run, not committed: the link reads the feature, then waits on its row.
    const deleting = await holdLocks(ctx.db, sql`delete from features where id = ${feature.id}`);
    const link = t.api.put(linkPath(subscription.id, feature.id)).then((r) => r);
    await waitForLockWaiters(ctx.db, 1);
    await deleting.release();
    expectProblem(await link, 404, 'not-found');
    const listed = await t.api.get(`/api/v1/subscriptions/${subscription.id}/features`);
    expect(listed.body).toMatchObject({ data: [] });
    const events = await t.api.get('/api/v1/events').query({ type: 'subscription_feature.linked' });
    expect(events.body).toMatchObject({ data: [] });
  });
});

describe('GET /api/v1/subscriptions/{subscriptionId}/features', () => {
  it("lists the subscription's features by name, and 404 for an unknown subscription", async () => {
    const subscription = await createSubscription(ctx);
    const other = await createSubscription(ctx);
    const zeta = await createFeature(ctx, { name: `zeta-${subscription.id}` });
    const alpha = await createFeature(ctx, { name: `alpha-${subscription.id}` });
    const elsewhere = await createFeature(ctx);
    for (const feature of [zeta, alpha]) await ctx.api.put(linkPath(subscription.id, feature.id)).expect(201);
    await ctx.api.put(linkPath(other.id, elsewhere.id)).expect(201);

    const res = await ctx.api.get(`/api/v1/subscriptions/${subscription.id}/features`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [alpha, zeta] });
    expectProblem(await ctx.api.get(`/api/v1/subscriptions/${MISSING}/features`), 404, 'not-found');
  });
});

describe('DELETE /api/v1/subscriptions/{subscriptionId}/features/{featureId}', () => {
  it('unlinks with 204, then answers 404; the feature itself stays', async () => {
    const subscription = await createSubscription(ctx);
    const feature = await createFeature(ctx);
    await ctx.api.put(linkPath(subscription.id, feature.id)).expect(201);
    expect((await ctx.api.delete(linkPath(subscription.id, feature.id))).status).toBe(204);
    const res = await ctx.api.get(`/api/v1/subscriptions/${subscription.id}/features`);
    expect(res.body).toEqual({ data: [] });
    expectProblem(await ctx.api.delete(linkPath(subscription.id, feature.id)), 404, 'not-found');
    expect((await ctx.api.get(`/api/v1/features/${feature.id}`)).status).toBe(200);
  });
});
