// Optimistic concurrency (versions, ETag, If-Match, If-None-Match) and the subscription
// lifecycle (legal transitions, cancel now or at period end).
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { periodContaining } from '../../src/billing/periods.js';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

describe('ETag and If-None-Match', () => {
  it('tags every version, answers 304 while unchanged and 200 once it changed', async () => {
    const user = await createUser(ctx);
    expect(user.version).toBe(1);
    const get = await ctx.api.get(`/api/v1/users/${user.id}`);
    expect(get.headers.etag).toBe('"1"');
    const unchanged = await ctx.api.get(`/api/v1/users/${user.id}`).set('If-None-Match', '"1"');
    expect(unchanged.status).toBe(304);
    expect(unchanged.text ?? '').toBe('');
    expect(unchanged.headers.etag).toBe('"1"');
    expect((await ctx.api.get(`/api/v1/users/${user.id}`).set('If-None-Match', 'W/"1"')).status).toBe(304);
    // Another tag, however like the version it reads: "01" is not "1".
    expect((await ctx.api.get(`/api/v1/users/${user.id}`).set('If-None-Match', '"01"')).status).toBe(200);

    const patched = await ctx.api.patch(`/api/v1/users/${user.id}`).send({ name: 'Changed' });
    expect(patched.headers.etag).toBe('"2"');
    expect((patched.body as Schemas['User']).version).toBe(2);
    const changed = await ctx.api.get(`/api/v1/users/${user.id}`).set('If-None-Match', '"1"');
    expect(changed.status).toBe(200);
    expect((await ctx.api.get(`/api/v1/users`)).body).toMatchObject({
      data: expect.arrayContaining([expect.objectContaining({ id: user.id, version: 2 })]),
    });
  });

  it('answers 304 only where the contract declares it: other GETs answer 200, whatever If-None-Match says', async () => {
    const user = await createUser(ctx);
    expect((await ctx.api.get(`/api/v1/users/${user.id}`).set('If-None-Match', '*')).status).toBe(304);
    for (const path of ['/api/v1/users', '/api/v1/analytics', '/api/v1/billing-settings']) {
      const res = await ctx.api.get(path).set('If-None-Match', '*');
      expect(res.status, path).toBe(200);
      expect(res.body, path).toBeTypeOf('object');
    }
    const settings = await ctx.api.get('/api/v1/billing-settings');
    expect(settings.headers.etag).toBeDefined();
    const again = await ctx.api.get('/api/v1/billing-settings').set('If-None-Match', settings.headers.etag!);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(settings.body);
  });

  it('answers 304 for a billable metric unchanged, 200 once archived (partner2)', async () => {
    const created = await ctx.api
      .post('/api/v1/billable-metrics')
      .send({ code: `etag-${Date.now()}`, name: 'ETag', aggregation: 'count' });
    expect(created.status, created.text).toBe(201);
    const id = (created.body as Schemas['BillableMetric']).id;
    const get = () => ctx.api.get(`/api/v1/billable-metrics/${id}`).set('If-None-Match', '"1"');
    const unchanged = await get();
    expect(unchanged.status).toBe(304);
    expect(unchanged.headers.etag).toBe('"1"');
    const archived = await ctx.api.patch(`/api/v1/billable-metrics/${id}`).send({ archived: true });
    expect(archived.status, archived.text).toBe(200);
    const changed = await get();
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id, archived: true, version: 2 });
  });

  it('does not bump the version for a PATCH that changes nothing', async () => {
    const feature = await createFeature(ctx, { description: 'same' });
    const res = await ctx.api.patch(`/api/v1/features/${feature.id}`).send({ description: 'same' });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"1"');
  });
});

describe('If-Match', () => {
  it('changes only the version named; another gets 412 with the current ETag, and nothing changes', async () => {
    const subscription = await createSubscription(ctx);
    const path = `/api/v1/subscriptions/${subscription.id}`;
    const before = await fingerprint(ctx.db);
    for (const stale of ['"7"', 'W/"1"', 'garbage', '"01"', '"0001"']) {
      const res = await ctx.api.patch(path).set('If-Match', stale).send({ plan_cost: '1.00' });
      expectProblem(res, 412, 'precondition-failed');
      expect(res.headers.etag).toBe('"1"');
    }
    expectProblem(await ctx.api.delete(path).set('If-Match', '"9"'), 412, 'precondition-failed');
    expect(await fingerprint(ctx.db)).toEqual(before);
    expect((await ctx.api.patch(path).set('If-Match', '"3", "1"').send({ plan_cost: '2.00' })).status).toBe(
      200,
    );
    expect((await ctx.api.patch(path).set('If-Match', '*').send({ plan_cost: '3.00' })).status).toBe(200);
    expect((await ctx.api.delete(path).set('If-Match', '"3"')).status).toBe(204);
  });

  it('lets exactly one of 20 concurrent PATCHes with the same If-Match win, and logs one change', async () => {
    const user = await createUser(ctx);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ctx.api
          .patch(`/api/v1/users/${user.id}`)
          .set('If-Match', '"1"')
          .send({ name: `Writer ${i}` })
          .then((r) => r.status),
      ),
    );
    expect(results.filter((s) => s === 200)).toHaveLength(1);
    expect(results.filter((s) => s === 412)).toHaveLength(19);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from events where resource_id = ${user.id} and type = 'user.updated'`.execute(
      ctx.db,
    );
    expect(rows[0]?.n).toBe(1);
  });
});

describe('the subscription lifecycle', () => {
  it('allows trialing → active ⇄ past_due → canceled', async () => {
    const s = await createSubscription(ctx, { status: 'trialing' });
    const path = `/api/v1/subscriptions/${s.id}`;
    for (const status of ['active', 'past_due', 'active', 'past_due', 'canceled'] as const) {
      const res = await ctx.api.patch(path).send({ status });
      expect(res.status, `→ ${status}: ${res.text}`).toBe(200);
    }
  });

  it('allows past_due → unpaid → active, and unpaid → canceled; not unpaid → past_due', async () => {
    const s = await createSubscription(ctx, { status: 'past_due' });
    const path = `/api/v1/subscriptions/${s.id}`;
    for (const status of ['unpaid', 'active', 'past_due', 'unpaid'] as const) {
      const res = await ctx.api.patch(path).send({ status });
      expect(res.status, `→ ${status}: ${res.text}`).toBe(200);
    }
    const back = expectProblem(await ctx.api.patch(path).send({ status: 'past_due' }), 409, 'conflict');
    expect(back.detail).toBe(
      'An unpaid subscription cannot become past_due; from unpaid it can become active or canceled.',
    );
    expect((await ctx.api.patch(path).send({ status: 'canceled' })).status).toBe(200);
  });

  it('refuses an illegal transition with 409 naming the current status and the allowed ones', async () => {
    const trialing = await createSubscription(ctx, { status: 'trialing' });
    const before = await fingerprint(ctx.db);
    const res = await ctx.api.patch(`/api/v1/subscriptions/${trialing.id}`).send({ status: 'past_due' });
    const problem = expectProblem(res, 409, 'conflict');
    expect(problem.detail).toBe(
      'A trialing subscription cannot become past_due; from trialing it can become active or canceled.',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('cancels now: canceled_at stamped, the reason kept; a second cancel is 409', async () => {
    const s = await createSubscription(ctx);
    const res = await ctx.api
      .post(`/api/v1/subscriptions/${s.id}/cancel`)
      .send({ at: 'now', reason: 'moving away' });
    expect(res.status).toBe(200);
    // Version 2 is the renewal of its first period, due and not performed yet (no worker here):
    // a cancellation performs it first, so the period served is billed.
    expect(res.body).toMatchObject({
      status: 'canceled',
      cancel_reason: 'moving away',
      cancel_at: null,
      version: 3,
    });
    expect((res.body as Schemas['Subscription']).canceled_at).toEqual(expect.any(String));
    expectProblem(
      await ctx.api.post(`/api/v1/subscriptions/${s.id}/cancel`).send({ at: 'now' }),
      409,
      'conflict',
    );
  });

  it('schedules a cancellation at the period end, stays active until then, and is canceled everywhere after', async () => {
    const t = await ctx.newTenant();
    const start = '2026-01-31';
    const s = await createSubscription(t, { start_date: start, plan_cost: '30.00' });
    const scheduled = await t.api.post(`/api/v1/subscriptions/${s.id}/cancel`).send({ at: 'period_end' });
    expect(scheduled.status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    const { end } = periodContaining(start, 'month', 1, today > start ? today : start);
    expect(scheduled.body).toMatchObject({
      status: 'active',
      cancel_at: `${end}T00:00:00.000Z`,
      canceled_at: null,
    });
    const analytics = async () =>
      ((await t.api.get('/api/v1/analytics')).body as Schemas['Analytics']).total_recurring_revenue;
    expect(await analytics()).toBe('30.00');

    // Time passes: the scheduled moment is now in the past.
    await sql`update subscriptions set cancel_at = now() - interval '1 minute' where id = ${s.id}`.execute(
      ctx.db,
    );
    const read = (await t.api.get(`/api/v1/subscriptions/${s.id}`)).body as Schemas['Subscription'];
    expect(read.status).toBe('canceled');
    expect(read.canceled_at).toBe(read.cancel_at);
    const listed = (await t.api.get('/api/v1/subscriptions?status=active'))
      .body as Schemas['SubscriptionList'];
    expect(listed.data).toEqual([]);
    expect(await analytics()).toBe('0.00');
    const events = await sql<{ type: string; actor: string }>`
      select type, actor from events where resource_id = ${s.id} order by seq`.execute(ctx.db);
    expect(events.rows.map((e) => [e.type, e.actor === 'system' ? 'system' : 'key'])).toEqual([
      ['subscription.created', 'key'],
      ['subscription.cancellation_scheduled', 'key'],
      ['subscription.canceled', 'system'],
    ]);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
