import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
const MISSING = '01937f00-0000-7000-8000-000000000000';

describe('POST /api/v1/subscriptions', () => {
  it('creates a subscription with exact money, defaults and Location', async () => {
    const user = await createUser(ctx);
    const res = await ctx.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'trialing', plan_cost: '49.9', start_date: '2026-02-28' });
    expect(res.status).toBe(201);
    const subscription = res.body as Schemas['Subscription'];
    expect(subscription).toMatchObject({
      user_id: user.id,
      status: 'trialing',
      plan_cost: '49.90',
      billing_interval: 'month',
      start_date: '2026-02-28',
      end_date: null,
      canceled_at: null,
    });
    expect(res.headers.location).toBe(`/api/v1/subscriptions/${subscription.id}`);
    const [stored] = await ctx.db
      .selectFrom('subscriptions')
      .select(['plan_cost', 'start_date'])
      .where('id', '=', subscription.id)
      .execute();
    expect(stored).toEqual({ plan_cost: '49.90', start_date: '2026-02-28' });
  });

  it('keeps the largest and smallest amounts exact', async () => {
    for (const [sent, stored] of [
      ['9999999999.99', '9999999999.99'],
      ['0', '0.00'],
      ['0.1', '0.10'],
    ] as const) {
      const subscription = await createSubscription(ctx, { plan_cost: sent });
      expect(subscription.plan_cost).toBe(stored);
    }
  });

  it('stamps canceled_at when created canceled, with billing ended (billed_until null)', async () => {
    const subscription = await createSubscription(ctx, { status: 'canceled', billing_interval: 'year' });
    expect(subscription.canceled_at).toEqual(expect.any(String));
    expect(subscription.billing_interval).toBe('year');
    expect(subscription.billed_until).toBeNull();
  });

  it('ends billing at creation when end_date falls before the current period, and only then', async () => {
    // On a clock at 2026-03-10: monthly periods from the 15th, the current one from 2026-02-15.
    const clock = await ctx.api
      .post('/api/v1/test-clocks')
      .send({ name: 'ended at import', frozen_time: '2026-03-10T08:30:00Z' });
    expect(clock.status, clock.text).toBe(201);
    const test_clock_id = (clock.body as Schemas['TestClock']).id;
    const created = (end_date: string) =>
      createSubscription(ctx, { start_date: '2020-01-15', end_date, test_clock_id });
    // Ended years ago, or the day before the current period: nothing was or will be invoiced.
    for (const end of ['2020-06-30', '2026-02-14']) {
      const ended = await created(end);
      expect([ended.status, ended.current_period_start, ended.billed_until]).toEqual([
        'active',
        end < '2026-01-15' ? '2020-06-15' : '2026-01-15',
        null,
      ]);
    }
    // Ending within the current period (its first day included): that period is still billed.
    for (const end of ['2026-02-15', '2026-03-01']) {
      expect((await created(end)).billed_until).toBe('2026-02-15');
    }
  });

  it("stamps canceled_at at its test clock's time when created canceled on a clock", async () => {
    const clock = await ctx.api
      .post('/api/v1/test-clocks')
      .send({ name: 'import', frozen_time: '2026-03-10T08:30:00Z' });
    expect(clock.status, clock.text).toBe(201);
    const subscription = await createSubscription(ctx, {
      status: 'canceled',
      start_date: '2025-11-01',
      test_clock_id: (clock.body as Schemas['TestClock']).id,
    });
    expect([subscription.canceled_at, subscription.billed_until]).toEqual(['2026-03-10T08:30:00.000Z', null]);
  });

  it('answers 422 for an unknown user_id and writes nothing', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/subscriptions')
      .send({ user_id: MISSING, status: 'active', plan_cost: '10.00', start_date: '2026-01-01' });
    const problem = expectProblem(res, 422, 'unprocessable');
    expect(problem.errors).toEqual([{ location: 'body', field: '/user_id', message: 'no such user' }]);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers 422 for a start date whose first billing period would end after 9999-12-31', async () => {
    const user = await createUser(ctx);
    const before = await fingerprint(ctx.db);
    const body = { user_id: user.id, status: 'active', plan_cost: '10.00', start_date: '9999-12-15' };
    const problem = expectProblem(
      await ctx.api.post('/api/v1/subscriptions').send(body),
      422,
      'unprocessable',
    );
    expect(problem.detail).toMatch(/would end after 9999-12-31/);
    expect(problem.errors).toEqual([expect.objectContaining({ location: 'body', field: '/start_date' })]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    const last = await ctx.api.post('/api/v1/subscriptions').send({ ...body, start_date: '9999-11-30' });
    expect(last.status, last.text).toBe(201);
    expect((last.body as Schemas['Subscription']).start_date).toBe('9999-11-30');
  });

  it('answers 422 for a trial_end whose first billing period would end after 9999-12-31, at creation and by PATCH', async () => {
    const user = await createUser(ctx);
    const before = await fingerprint(ctx.db);
    const body = {
      user_id: user.id,
      status: 'trialing',
      plan_cost: '10.00',
      start_date: '2026-01-01',
      trial_end: '9999-12-15',
    };
    const problem = expectProblem(
      await ctx.api.post('/api/v1/subscriptions').send(body),
      422,
      'unprocessable',
    );
    expect(problem.detail).toMatch(/would end after 9999-12-31/);
    // The trial's end names it, not the start (input5 #3).
    expect(problem.errors).toEqual([expect.objectContaining({ location: 'body', field: '/trial_end' })]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    const made = await ctx.api.post('/api/v1/subscriptions').send({ ...body, trial_end: '9999-11-30' });
    expect(made.status, made.text).toBe(201);
    const id = (made.body as Schemas['Subscription']).id;
    expect((await ctx.api.get(`/api/v1/subscriptions/${id}/upcoming-invoice`)).status).toBe(200);
    const moved = await ctx.api.patch(`/api/v1/subscriptions/${id}`).send({ trial_end: '9999-12-02' });
    const movedProblem = expectProblem(moved, 422, 'unprocessable');
    expect(movedProblem.detail).toMatch(/would end after 9999-12-31/);
    expect(movedProblem.errors).toEqual([expect.objectContaining({ location: 'body', field: '/trial_end' })]);
  });

  it("answers 422 naming start_date for a plan's trial that would end after 9999-12-31 (catalog7 #8)", async () => {
    const user = await createUser(ctx);
    const plan = await ctx.api.post('/api/v1/plans').send({
      code: `long-trial-${user.id}`,
      name: 'Long trial',
      interval: 'month',
      trial_days: 730,
      price: { model: 'flat', amount: '1.00' },
    });
    expect(plan.status, plan.text).toBe(201);
    const before = await fingerprint(ctx.db);
    for (const start_date of ['9999-12-30', '9998-01-10']) {
      const problem = expectProblem(
        await ctx.api.post('/api/v1/subscriptions').send({
          user_id: user.id,
          status: 'trialing',
          plan_id: (plan.body as Schemas['Plan']).id,
          start_date,
        }),
        422,
        'unprocessable',
      );
      expect(problem.errors).toEqual([
        expect.objectContaining({
          field: '/start_date',
          message: expect.stringContaining('would end after 9999-12-31') as string,
        }),
      ]);
    }
    // The trial ends within the calendar, its first period after it does not (retest8 #8).
    const problem = expectProblem(
      await ctx.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'trialing',
        plan_id: (plan.body as Schemas['Plan']).id,
        start_date: '9997-12-25',
      }),
      422,
      'unprocessable',
    );
    expect(problem.errors).toEqual([
      expect.objectContaining({
        field: '/start_date',
        message: expect.stringContaining(
          'the first billing period after it would end after 9999-12-31',
        ) as string,
      }),
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers 422 for a scheduled change whose new schedule would end after 9999-12-31, as for the change now (retest8 #7)', async () => {
    const user = await createUser(ctx);
    const yearly = await ctx.api.post('/api/v1/plans').send({
      code: `yearly-${user.id}`,
      name: 'Yearly',
      interval: 'year',
      price: { model: 'flat', amount: '100.00' },
    });
    expect(yearly.status, yearly.text).toBe(201);
    const custom = await ctx.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', plan_cost: '5.00', start_date: '9999-06-01' });
    expect(custom.status, custom.text).toBe(201);
    const id = (custom.body as Schemas['Subscription']).id;
    const before = await fingerprint(ctx.db);
    for (const body of [{ plan_id: (yearly.body as Schemas['Plan']).id }, { billing_interval: 'year' }]) {
      const now = await ctx.api.patch(`/api/v1/subscriptions/${id}`).send(body);
      const later = await ctx.api.post(`/api/v1/subscriptions/${id}/scheduled-change`).send(body);
      expect([now.status, later.status]).toEqual([422, 422]);
      expect(expectProblem(later, 422, 'unprocessable').detail).toMatch(/would end after 9999-12-31/);
      // Each names the field that moved the schedule (retest11 #4).
      const field = `/${Object.keys(body)[0]!}`;
      for (const res of [now, later])
        expect(expectProblem(res, 422, 'unprocessable').errors).toEqual([expect.objectContaining({ field })]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // The same schedule, whose next period no renewal can start: a change on it never takes
    // effect (retest12).
    const last = await ctx.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', plan_cost: '5.00', start_date: '9999-11-01' });
    expect(last.status, last.text).toBe(201);
    const lastId = (last.body as Schemas['Subscription']).id;
    const never = await ctx.api
      .post(`/api/v1/subscriptions/${lastId}/scheduled-change`)
      .send({ plan_cost: '6.00' });
    expect(expectProblem(never, 422, 'unprocessable').detail).toMatch(/would end after 9999-12-31/);
  });

  it('answers 422 for a move during a trial whose first period after it would end after 9999-12-31 (retest9 #2)', async () => {
    const user = await createUser(ctx);
    const yearly = await ctx.api.post('/api/v1/plans').send({
      code: `yearly-${user.id}`,
      name: 'Yearly',
      interval: 'year',
      price: { model: 'flat', amount: '100.00' },
    });
    expect(yearly.status, yearly.text).toBe(201);
    const trialing = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'trialing',
      trial_end: '9999-08-01',
      plan_cost: '5.00',
      start_date: '9999-01-01',
    });
    expect(trialing.status, trialing.text).toBe(201);
    const id = (trialing.body as Schemas['Subscription']).id;
    const before = await fingerprint(ctx.db);
    for (const [body, field] of [
      [{ plan_id: (yearly.body as Schemas['Plan']).id }, '/plan_id'],
      [{ billing_interval: 'year' }, '/billing_interval'],
    ] as const) {
      const problem = expectProblem(
        await ctx.api.patch(`/api/v1/subscriptions/${id}`).send(body),
        422,
        'unprocessable',
      );
      expect(problem.errors).toEqual([
        expect.objectContaining({
          field,
          message: expect.stringMatching(/from 9999-08-01, would end after 9999-12-31/) as unknown,
        }),
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // A move that keeps the first period within the calendar is made.
    const monthly = await ctx.api.patch(`/api/v1/subscriptions/${id}`).send({ plan_cost: '6.00' });
    expect(monthly.status, monthly.text).toBe(200);
  });

  it('answers 404 for the upcoming invoice of a renewal whose period would end after 9999-12-31 (retest10 #1)', async () => {
    const user = await createUser(ctx);
    const halfYear = await ctx.api.post('/api/v1/plans').send({
      code: `half-${user.id}`,
      name: 'Half-yearly',
      interval: 'month',
      interval_count: 6,
      price: { model: 'flat', amount: '60.00' },
    });
    expect(halfYear.status, halfYear.text).toBe(201);
    for (const body of [
      // A trial without an end, whose first period would start after 9999-06-01.
      { status: 'trialing', plan_id: (halfYear.body as Schemas['Plan']).id, start_date: '9999-06-01' },
    ]) {
      const created = await ctx.api.post('/api/v1/subscriptions').send({ user_id: user.id, ...body });
      expect(created.status, created.text).toBe(201);
      const id = (created.body as Schemas['Subscription']).id;
      const upcoming = await ctx.api.get(`/api/v1/subscriptions/${id}/upcoming-invoice`);
      expect(expectProblem(upcoming, 404, 'not-found').detail).toMatch(/no upcoming invoice/);
    }
  });

  it('answers 422 for an end_date before start_date and writes nothing', async () => {
    const user = await createUser(ctx);
    const before = await fingerprint(ctx.db);
    const res = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '10.00',
      start_date: '2026-01-10',
      end_date: '2026-01-09',
    });
    const problem = expectProblem(res, 422, 'unprocessable');
    expect(problem.errors?.[0]?.field).toBe('/end_date');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it.each([
    ['plan_cost as a JSON number', { plan_cost: 49.99 }, '/plan_cost'],
    ['a negative plan_cost', { plan_cost: '-1.00' }, '/plan_cost'],
    ['plan_cost with three decimals', { plan_cost: '1.005' }, '/plan_cost'],
    ['plan_cost over numeric(12,2)', { plan_cost: '10000000000.00' }, '/plan_cost'],
    ['plan_cost in exponent form', { plan_cost: '1e3' }, '/plan_cost'],
    ['an unknown status', { status: 'suspended' }, '/status'],
    ['an impossible date', { start_date: '2026-02-30' }, '/start_date'],
    ['a timestamp for a date', { start_date: '2026-01-01T00:00:00Z' }, '/start_date'],
    ['a malformed user_id', { user_id: 'abc' }, '/user_id'],
    ['an unknown billing_interval', { billing_interval: 'week' }, '/billing_interval'],
  ])('rejects %s with 400 naming the field, and writes nothing', async (_case, override, field) => {
    const user = await createUser(ctx);
    const before = await fingerprint(ctx.db);
    const res = await ctx.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '10.00',
      start_date: '2026-01-01',
      ...override,
    });
    const problem = expectProblem(res, 400, 'validation-error');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('GET /api/v1/subscriptions/{subscriptionId}', () => {
  it('returns the subscription, with its features on include=features', async () => {
    const subscription = await createSubscription(ctx);
    const plain = await ctx.api.get(`/api/v1/subscriptions/${subscription.id}`);
    expect(plain.status).toBe(200);
    expect(plain.body).toEqual(subscription);

    const b = await createFeature(ctx, { name: `b-${subscription.id}` });
    const a = await createFeature(ctx, { name: `a-${subscription.id}` });
    await ctx.api.put(`/api/v1/subscriptions/${subscription.id}/features/${b.id}`).expect(201);
    await ctx.api.put(`/api/v1/subscriptions/${subscription.id}/features/${a.id}`).expect(201);
    const withFeatures = await ctx.api.get(`/api/v1/subscriptions/${subscription.id}?include=features`);
    expect(withFeatures.status).toBe(200);
    // Each new link is a change of the subscription: two links, two versions more.
    const { updated_at, version, ...unchanged } = subscription;
    expect(withFeatures.body).toEqual({
      ...unchanged,
      version: version + 2,
      updated_at: expect.any(String),
      features: [a, b],
    });
    expect((withFeatures.body as Schemas['Subscription']).updated_at > updated_at).toBe(true);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    expectProblem(await ctx.api.get(`/api/v1/subscriptions/${MISSING}`), 404, 'not-found');
    expectProblem(await ctx.api.get('/api/v1/subscriptions/not-a-uuid'), 400, 'validation-error');
  });
});

describe('GET /api/v1/subscriptions', () => {
  it('filters by user, several statuses and a start_date range', async () => {
    const user = await createUser(ctx);
    const active = await createSubscription(ctx, {
      user_id: user.id,
      status: 'active',
      start_date: '2025-01-31',
    });
    const trialing = await createSubscription(ctx, {
      user_id: user.id,
      status: 'trialing',
      start_date: '2025-02-01',
    });
    await createSubscription(ctx, { user_id: user.id, status: 'canceled', start_date: '2025-02-01' });
    await createSubscription(ctx, { user_id: user.id, status: 'active', start_date: '2025-03-01' });
    await createSubscription(ctx, { status: 'active', start_date: '2025-02-01' }); // another user

    const res = await ctx.api.get(
      `/api/v1/subscriptions?user_id=${user.id}&status=active&status=trialing` +
        '&start_date_gte=2025-01-31&start_date_lte=2025-02-28',
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [trialing, active], next_cursor: null });
    // Every status at once: as many values as there are statuses.
    const every = ['trialing', 'active', 'past_due', 'unpaid', 'paused', 'canceled'];
    const all = await ctx.api.get(
      `/api/v1/subscriptions?user_id=${user.id}&${every.map((s) => `status=${s}`).join('&')}`,
    );
    expect(all.status, all.text).toBe(200);
    expect((all.body as Schemas['SubscriptionList']).data).toHaveLength(4);
  });

  it('filters by plan, across its price versions, and pages them newest first', async () => {
    const plan = async () => {
      const tag = randomUUID().slice(0, 8);
      const res = await ctx.api.post('/api/v1/plans').send({
        code: `by-plan-${tag}`,
        name: `Plan ${tag}`,
        interval: 'month',
        price: { model: 'flat', amount: '10' },
      });
      expect(res.status, res.text).toBe(201);
      return res.body as Schemas['Plan'];
    };
    const [onPlan, other] = [await plan(), await plan()];
    const subscribe = (planId: string, status: 'active' | 'trialing' = 'active') =>
      createSubscription(ctx, { plan_id: planId, status, plan_cost: undefined });
    const first = await subscribe(onPlan.id);
    await subscribe(other.id);
    await createSubscription(ctx); // on no plan
    const trialing = await subscribe(onPlan.id, 'trialing');
    // A new price is a new version of the same plan: still on it.
    const repriced = await ctx.api
      .patch(`/api/v1/plans/${onPlan.id}`)
      .send({ price: { model: 'flat', amount: '12' } });
    expect(repriced.status, repriced.text).toBe(200);
    const onVersion2 = await subscribe(onPlan.id);
    expect(onVersion2.plan_version).toBe(2);

    const ids = async (query: string) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await ctx.api.get(
          `/api/v1/subscriptions?${query}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.status, res.text).toBe(200);
        const page = res.body as Schemas['SubscriptionList'];
        expect(page.data.every((s) => s.plan_id === onPlan.id)).toBe(true);
        seen.push(...page.data.map((s) => s.id));
        cursor = page.next_cursor;
      } while (cursor);
      return seen;
    };
    expect(await ids(`plan_id=${onPlan.id}`)).toEqual([onVersion2.id, trialing.id, first.id]);
    expect(await ids(`plan_id=${onPlan.id}&status=active`)).toEqual([onVersion2.id, first.id]);
    expect(await ids(`plan_id=${onPlan.id}&user_id=${trialing.user_id}`)).toEqual([trialing.id]);
    // No such plan: nothing, as for a user filter; not a plan id at all: 400.
    expect(await ids(`plan_id=${MISSING}`)).toEqual([]);
    expectProblem(await ctx.api.get('/api/v1/subscriptions?plan_id=basic'), 400, 'validation-error');
  });

  it('pages every subscription once and embeds features when asked', async () => {
    const user = await createUser(ctx);
    const created: string[] = [];
    for (let i = 0; i < 3; i++) created.push((await createSubscription(ctx, { user_id: user.id })).id);
    const feature = await createFeature(ctx);
    await ctx.api.put(`/api/v1/subscriptions/${created[0]}/features/${feature.id}`).expect(201);

    const seen: Schemas['Subscription'][] = [];
    let cursor: string | null = null;
    do {
      const res = await ctx.api
        .get('/api/v1/subscriptions')
        .query({ user_id: user.id, limit: 2, include: 'features', ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      const page = res.body as Schemas['SubscriptionList'];
      seen.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen.map((s) => s.id)).toEqual([...created].reverse());
    expect(seen.map((s) => s.features?.map((f) => f.id))).toEqual([[], [], [feature.id]]);
  });

  it('rejects an unknown status and an unknown query parameter with 400', async () => {
    expectProblem(await ctx.api.get('/api/v1/subscriptions?status=suspended'), 400, 'validation-error');
    expectProblem(await ctx.api.get('/api/v1/subscriptions?sort=plan_cost'), 400, 'validation-error');
  });
});

describe('PATCH /api/v1/subscriptions/{subscriptionId}', () => {
  it('cancels (stamping canceled_at), keeps the stamp, and refuses to reactivate: canceled is final', async () => {
    const subscription = await createSubscription(ctx);
    const canceled = await ctx.api
      .patch(`/api/v1/subscriptions/${subscription.id}`)
      .send({ status: 'canceled', end_date: '2026-12-01' });
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', end_date: '2026-12-01' });
    const stamp = (canceled.body as Schemas['Subscription']).canceled_at;
    expect(stamp).toEqual(expect.any(String));

    // Final: what it was is what its invoices, MRR and analytics were made of. Only its metadata
    // changes (and a field sent as it is changes nothing).
    const feature = await ctx.api.post('/api/v1/features').send({ name: `final-${Date.now()}` });
    const before = await fingerprint(ctx.db);
    const path = `/api/v1/subscriptions/${subscription.id}`;
    for (const change of [
      { plan_cost: '12.5' },
      { quantity: 1000 },
      { start_date: '2025-09-01' },
      { end_date: '2026-12-31' },
      { payment_method: 'pm_card_visa', payment_rail: 'card' },
    ]) {
      const refused = expectProblem(await ctx.api.patch(path).send(change), 409, 'conflict');
      expect(refused.detail, JSON.stringify(change)).toMatch(/canceled, which is final/);
      expect(refused.errors?.map((e) => e.field)).toEqual(Object.keys(change).map((k) => `/${k}`));
    }
    // No feature is linked to it now, and none can be: a link is refused, an unlink finds none.
    const featurePath = `${path}/features/${(feature.body as Schemas['Feature']).id}`;
    expectProblem(await ctx.api.put(featurePath), 409, 'conflict');
    expectProblem(await ctx.api.delete(featurePath), 404, 'not-found');
    expect(await fingerprint(ctx.db)).toEqual(before);
    const tagged = await ctx.api.patch(path).send({ metadata: { note: 'closed' }, end_date: '2026-12-01' });
    expect(tagged.status, tagged.text).toBe(200);
    expect(tagged.body).toMatchObject({ metadata: { note: 'closed' }, canceled_at: stamp });

    const reactivated = await ctx.api
      .patch(`/api/v1/subscriptions/${subscription.id}`)
      .send({ status: 'active', end_date: null });
    expect(expectProblem(reactivated, 409, 'conflict').detail).toMatch(
      /canceled subscription cannot become active/,
    );
  });

  it('refuses to move a subscription to another user, or its start past its end, writing nothing', async () => {
    const subscription = await createSubscription(ctx, { start_date: '2026-01-01', end_date: '2026-06-30' });
    const other = await createUser(ctx);
    const before = await fingerprint(ctx.db);
    const path = `/api/v1/subscriptions/${subscription.id}`;
    expectProblem(await ctx.api.patch(path).send({ user_id: other.id }), 400, 'validation-error');
    expectProblem(await ctx.api.patch(path).send({ start_date: '2026-07-01' }), 422, 'unprocessable');
    expectProblem(await ctx.api.patch(path).send({ plan_cost: '-5' }), 400, 'validation-error');
    expectProblem(
      await ctx.api.patch(`/api/v1/subscriptions/${MISSING}`).send({ status: 'active' }),
      404,
      'not-found',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('DELETE /api/v1/subscriptions/{subscriptionId}', () => {
  it('deletes the subscription and its feature links, but not the features', async () => {
    const subscription = await createSubscription(ctx);
    const feature = await createFeature(ctx);
    await ctx.api.put(`/api/v1/subscriptions/${subscription.id}/features/${feature.id}`).expect(201);
    expect((await ctx.api.delete(`/api/v1/subscriptions/${subscription.id}`)).status).toBe(204);
    expectProblem(await ctx.api.get(`/api/v1/subscriptions/${subscription.id}`), 404, 'not-found');
    const links = await ctx.db
      .selectFrom('subscription_features')
      .select('feature_id')
      .where('subscription_id', '=', subscription.id)
      .execute();
    expect(links).toEqual([]);
    expect((await ctx.api.get(`/api/v1/features/${feature.id}`)).status).toBe(200);
    expectProblem(await ctx.api.delete(`/api/v1/subscriptions/${subscription.id}`), 404, 'not-found');
  });
});
