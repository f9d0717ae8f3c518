// Trials with an end, on test clocks: the plan's trial_days or an explicit trial_end, the
// trial_will_end notice 3 days before, the first invoice on the trial's end, a trial moved (no
// period skipped or billed twice) and a trial ended early.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let plan: Schemas['Plan'];

type Subscription = Schemas['Subscription'];

beforeAll(async () => {
  t = await ctx.newTenant();
  const res = await t.api.post('/api/v1/plans').send({
    code: 'trial-pro',
    name: 'Pro',
    interval: 'month',
    price: { model: 'flat', amount: '20.00' },
    trial_days: 14,
  });
  expect(res.status, res.text).toBe(201);
  plan = res.body as Schemas['Plan'];
});

async function onClock(body: Record<string, unknown>, at = '2026-01-01T00:00:00Z') {
  const clock = (await t.api.post('/api/v1/test-clocks').send({ name: 'trial', frozen_time: at }))
    .body as Schemas['TestClock'];
  const user = await createUser(t);
  const res = await t.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'trialing',
    plan_id: plan.id,
    start_date: '2026-01-01',
    test_clock_id: clock.id,
    ...body,
  });
  const work = () =>
    performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  const sub = res.body as Subscription;
  return {
    res,
    sub,
    work,
    async advance(to: string) {
      const advanced = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
      expect(advanced.status, advanced.text).toBe(202);
      await work();
    },
    async get() {
      return (await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body as Subscription;
    },
    async invoices() {
      const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 });
      return (res.body as Schemas['InvoiceList']).data.reverse();
    },
    async events() {
      const res = await t.api.get('/api/v1/events').query({ resource_id: sub.id, limit: 100 });
      return (res.body as Schemas['EventList']).data;
    },
  };
}

describe('a trial with an end', () => {
  it("takes the plan's trial_days, announces its end 3 days before, then bills its first period", async () => {
    expect(plan.trial_days).toBe(14);
    const s = await onClock({});
    expect(s.res.status, s.res.text).toBe(201);
    expect(s.sub).toMatchObject({
      status: 'trialing',
      trial_end: '2026-01-15',
      billing_anchor: '2026-01-15',
      billed_until: '2026-01-15',
      current_period_start: '2026-01-01',
      current_period_end: '2026-01-15',
    });

    await s.advance('2026-01-11T12:00:00Z');
    expect((await s.events()).map((e) => e.type)).toEqual(['subscription.created']);
    await s.advance('2026-01-12T00:00:00Z');
    const notice = (await s.events()).filter((e) => e.type === 'subscription.trial_will_end');
    expect(notice).toHaveLength(1);
    expect(notice[0]).toMatchObject({
      occurred_at: '2026-01-12T00:00:00.000Z',
      actor: { type: 'system', id: null },
      data: { status: 'trialing', trial_end: '2026-01-15' },
    });
    expect(await s.invoices()).toEqual([]); // the trial is free
    const during = await t.api
      .post(`/api/v1/subscriptions/${s.sub.id}/invoices`)
      .send({ date: '2026-01-10' });
    expect(expectProblem(during, 422, 'unprocessable').detail).toMatch(/free trial until 2026-01-15/);

    await s.advance('2026-01-15T00:00:00Z');
    expect(await s.get()).toMatchObject({
      status: 'active',
      trial_end: '2026-01-15',
      current_period_start: '2026-01-15',
      current_period_end: '2026-02-15',
      billed_until: '2026-02-15',
    });
    await s.advance('2026-02-15T00:00:00Z');
    expect((await s.invoices()).map((i) => [i.period_start, i.period_end, i.subtotal])).toEqual([
      ['2026-01-15', '2026-02-15', '20.00'],
      ['2026-02-15', '2026-03-15', '20.00'],
    ]);
    const types = (await s.events()).map((e) => e.type);
    expect(types.filter((type) => type === 'subscription.trial_will_end')).toHaveLength(1);
    expect(types.slice(0, 4)).toEqual([
      'subscription.created',
      'subscription.trial_will_end',
      'subscription.updated', // trialing → active
      'subscription.renewed',
    ]);
  });

  it('moves with its first invoice when extended: nothing skipped, nothing billed twice, announced again', async () => {
    const s = await onClock({ trial_end: '2026-01-20' });
    await s.advance('2026-01-18T00:00:00Z'); // announced on the 17th
    const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ trial_end: '2026-02-01' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({
      status: 'trialing',
      trial_end: '2026-02-01',
      billing_anchor: '2026-02-01',
      billed_until: '2026-02-01',
    });
    await s.advance('2026-01-31T00:00:00Z');
    expect(await s.invoices()).toEqual([]);
    await s.advance('2026-03-01T00:00:00Z');
    expect((await s.invoices()).map((i) => [i.period_start, i.period_end])).toEqual([
      ['2026-02-01', '2026-03-01'],
      ['2026-03-01', '2026-04-01'],
    ]);
    const notices = (await s.events()).filter((e) => e.type === 'subscription.trial_will_end');
    expect(notices.map((e) => e.occurred_at)).toEqual([
      '2026-01-17T00:00:00.000Z',
      '2026-01-29T00:00:00.000Z',
    ]);
  });

  it('is not announced when its service ends before the trial does (end_date, retest9 #7)', async () => {
    const s = await onClock({ trial_end: '2026-01-20' });
    const ended = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-01-10' });
    expect(ended.status, ended.text).toBe(200);
    await s.advance('2026-01-25T00:00:00Z');
    const events = await s.events();
    expect(events.map((e) => e.type)).not.toContain('subscription.trial_will_end');
    expect(await s.invoices()).toEqual([]);
    // Served through the trial's last day: announced, as any trial that becomes a paid period.
    const last = await onClock({ trial_end: '2026-01-20' });
    expect(
      (await t.api.patch(`/api/v1/subscriptions/${last.sub.id}`).send({ end_date: '2026-01-20' })).status,
    ).toBe(200);
    await last.advance('2026-01-18T00:00:00Z');
    expect((await last.events()).map((e) => e.type)).toContain('subscription.trial_will_end');
  });

  it('ended early at 00:00: the first renewal names no period that never was (lifecycle9 #1)', async () => {
    const s = await onClock({ trial_end: '2026-01-20' });
    await s.advance('2026-01-10T00:00:00Z');
    const ended = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' });
    expect(ended.status, ended.text).toBe(200);
    expect(ended.body).toMatchObject({
      current_period_start: '2026-01-10',
      current_period_end: '2026-02-10',
    });
    await s.work();
    const events = (await s.events()).reverse(); // oldest first
    const renewed = events.find((e) => e.type === 'subscription.renewed');
    expect(renewed, JSON.stringify(events.map((e) => e.type))).toBeDefined();
    expect(renewed!.previous ?? {}).not.toHaveProperty('current_period_start');
    expect(renewed!.previous ?? {}).not.toHaveProperty('current_period_end');
  });

  it('is not announced once ended, when its end_date is moved past it late (lifecycle9 #2)', async () => {
    for (const later of ['2026-05-20', null]) {
      const s = await onClock({ trial_end: '2026-02-15' });
      const ended = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-02-10' });
      expect(ended.status, ended.text).toBe(200);
      await s.advance('2026-03-05T00:00:00Z');
      const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: later });
      expect(moved.status, moved.text).toBe(200);
      await s.advance('2026-03-20T00:00:00Z');
      const types = (await s.events()).map((e) => e.type);
      expect(types).not.toContain('subscription.trial_will_end');
      // The trial still ends and the days after it are billed, as before.
      expect((await s.get()).status).toBe('active');
      expect((await s.invoices()).length).toBeGreaterThan(0);
    }
  });

  it('ended early by making it active: its first period starts that day', async () => {
    const s = await onClock({});
    await s.advance('2026-01-05T10:00:00Z');
    // Ending it and moving its end at once is two changes: refused, saying so.
    const both = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ status: 'active', trial_end: '2026-02-01' });
    expect(expectProblem(both, 422, 'unprocessable').errors).toMatchObject([
      {
        field: '/trial_end',
        message: 'cannot move the trial that status active ends now: send one or the other',
      },
    ]);
    const active = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    expect(active.body).toMatchObject({ status: 'active', trial_end: null, billing_anchor: '2026-01-05' });
    await s.work();
    expect((await s.invoices()).map((i) => [i.period_start, i.period_end])).toEqual([
      ['2026-01-05', '2026-02-05'],
    ]);
    expect((await s.events()).some((e) => e.type === 'subscription.trial_will_end')).toBe(false);
  });

  it('ended early with a later start_date in the same request: its first period starts on that start (trials1 #1)', async () => {
    const s = await onClock({ trial_end: '2026-01-31' }, '2026-01-10T12:00:00Z');
    const active = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ status: 'active', start_date: '2026-01-25' });
    expect(active.status, active.text).toBe(200);
    expect(active.body).toMatchObject({
      start_date: '2026-01-25',
      billing_anchor: '2026-01-25',
      billed_until: '2026-01-25',
    });
    const upcoming = await t.api.get(`/api/v1/subscriptions/${s.sub.id}/upcoming-invoice`);
    expect(upcoming.status, upcoming.text).toBe(200);
    expect(upcoming.body).toMatchObject({ period_start: '2026-01-25', subtotal: '20.00' });
    await s.advance('2026-01-25T10:00:00Z');
    expect((await s.invoices()).map((i) => [i.period_start, i.period_end, i.subtotal])).toEqual([
      ['2026-01-25', '2026-02-25', '20.00'],
    ]);
  });

  it('is not ended early once its end_date passed: 422, nothing written (trials1 #5)', async () => {
    const s = await onClock({ trial_end: '2026-01-31', end_date: '2026-01-20' }, '2026-01-01T12:00:00Z');
    await s.advance('2026-01-25T00:00:00Z');
    const refused = expectProblem(
      await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' }),
      422,
      'unprocessable',
    );
    expect(refused.errors).toEqual([
      expect.objectContaining({
        field: '/status',
        message: 'cannot end a trial whose service ended on 2026-01-20 (end_date): move end_date first',
      }),
    ]);
    expect((await s.get()).status).toBe('trialing');
    // With the end moved in the same request, it is ended as any trial.
    const both = await t.api
      .patch(`/api/v1/subscriptions/${s.sub.id}`)
      .send({ status: 'active', end_date: '2026-03-01' });
    expect(both.status, both.text).toBe(200);
    expect(both.body).toMatchObject({ status: 'active', billing_anchor: '2026-01-25' });
  });

  it('ended early with an end_date still to come, or moved on with it: its first period is billed at once (retest18 #1, #2)', async () => {
    const inTrial = await onClock({ trial_end: '2026-02-01', end_date: '2026-01-20' });
    await inTrial.advance('2026-01-15T10:00:00Z');
    const active = await t.api.patch(`/api/v1/subscriptions/${inTrial.sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    expect(active.body).toMatchObject({ billing_anchor: '2026-01-15', billed_until: '2026-01-15' });
    const passed = await onClock({ trial_end: '2026-02-01', end_date: '2026-01-10' });
    await passed.advance('2026-01-15T10:00:00Z');
    const moved = await t.api
      .patch(`/api/v1/subscriptions/${passed.sub.id}`)
      .send({ status: 'active', end_date: '2026-03-31' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ billing_anchor: '2026-01-15', billed_until: '2026-01-15' });
    await inTrial.advance('2026-01-15T11:00:00Z');
    await passed.work();
    for (const s of [inTrial, passed])
      expect((await s.invoices()).map((i) => [i.period_start, i.subtotal])).toEqual([
        ['2026-01-15', '20.00'],
      ]);
  });

  it('with an end_date within it, moved to end before that end_date: billed from its new end (retest20 #6)', async () => {
    const moves = [{ trial_end: '2026-01-20' }, { trial_end: '2026-01-20', end_date: '2026-01-25' }];
    for (const move of moves) {
      const s = await onClock({ trial_end: '2026-02-01', end_date: '2026-01-25' });
      expect(s.sub.billed_until).toBeNull();
      await s.advance('2026-01-10T10:00:00Z');
      const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send(move);
      expect(moved.status, moved.text).toBe(200);
      expect(moved.body).toMatchObject({ billing_anchor: '2026-01-20', billed_until: '2026-01-20' });
      // Active on its new end, its first period (holding end_date) billed whole, and no other.
      await s.advance('2026-01-20T10:00:00Z');
      expect((await s.get()).status).toBe('active');
      await s.advance('2026-03-01T10:00:00Z');
      expect((await s.invoices()).map((i) => [i.period_start, i.subtotal])).toEqual([
        ['2026-01-20', '20.00'],
      ]);
    }
    // Its end_date moved past the trial's end instead: billed from trial_end.
    const s = await onClock({ trial_end: '2026-02-01', end_date: '2026-01-25' });
    await s.advance('2026-01-10T10:00:00Z');
    const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-02-10' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ billed_until: '2026-02-01' });
  });

  it('ended early, then its start moved before its first invoice: billed from the day it ended, not from the start (retest20 #1)', async () => {
    // Periods on the 25th: Jan 15-24 charged (10 of 31 days), then renewals from Jan 25. On the
    // 14th: Jan 15 - Feb 13 charged (30 of 31 days), no trial day billed.
    const moves = [
      {
        start_date: '2025-12-25',
        billed_until: '2026-01-25',
        invoices: [
          ['2026-01-25', '26.45'],
          ['2026-02-25', '20.00'],
        ],
      },
      { start_date: '2026-01-14', billed_until: '2026-02-14', invoices: [['2026-02-14', '39.35']] },
    ];
    for (const { start_date, billed_until, invoices } of moves) {
      const s = await onClock({ trial_end: '2026-02-01' });
      await s.advance('2026-01-15T10:00:00Z');
      const active = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' });
      expect(active.body).toMatchObject({ billing_anchor: '2026-01-15', billed_until: '2026-01-15' });
      const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date });
      expect(moved.status, moved.text).toBe(200);
      expect(moved.body).toMatchObject({ billing_anchor: start_date, billed_until });
      await s.advance('2026-02-26T00:00:00Z');
      expect((await s.invoices()).map((i) => [i.period_start, i.subtotal])).toEqual(invoices);
    }
  });

  it('converted on its end, then moved to start on or after it: the trial goes with the old start (trials1 #3)', async () => {
    const s = await onClock({ trial_end: '2026-01-15' });
    await s.advance('2026-01-20T00:00:00Z');
    expect((await s.get()).status).toBe('active');
    const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: '2026-01-18' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({
      start_date: '2026-01-18',
      trial_end: null,
      billing_anchor: '2026-01-18',
    });
  });

  it("keeps its end when a future trial's start_date moves: its first period still starts on trial_end (retest5)", async () => {
    for (const moved of ['2026-03-20', '2026-02-10']) {
      const s = await onClock({ start_date: '2026-03-01', trial_end: '2026-04-01' });
      expect(s.res.status, s.res.text).toBe(201);
      const patched = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: moved });
      expect(patched.status, patched.text).toBe(200);
      expect(patched.body).toMatchObject({
        start_date: moved,
        trial_end: '2026-04-01',
        billing_anchor: '2026-04-01',
        current_period_start: moved,
        current_period_end: '2026-04-01',
      });
      await s.advance('2026-04-01T01:00:00Z');
      expect(await s.get()).toMatchObject({ status: 'active', current_period_start: '2026-04-01' });
      await s.advance('2026-05-01T01:00:00Z');
      expect((await s.invoices()).map((i) => [i.period_start, i.period_end, i.subtotal])).toEqual([
        ['2026-04-01', '2026-05-01', '20.00'],
        ['2026-05-01', '2026-06-01', '20.00'],
      ]);
    }
    // Both moved in one PATCH: the new end is checked against the new start (retest6).
    const both = await onClock({ start_date: '2026-03-01', trial_end: '2026-04-01' });
    const moved = await t.api
      .patch(`/api/v1/subscriptions/${both.sub.id}`)
      .send({ start_date: '2026-02-01', trial_end: '2026-02-15' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({
      start_date: '2026-02-01',
      trial_end: '2026-02-15',
      billing_anchor: '2026-02-15',
    });
    // Not on or after its end: a 422 that names the field.
    const s = await onClock({ start_date: '2026-03-01', trial_end: '2026-04-01' });
    const late = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: '2026-04-15' });
    expect(expectProblem(late, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({
        field: '/start_date',
        message: expect.stringContaining('trial_end (2026-04-01)'),
      }),
    ]);
  });

  it('announces a trial shorter than 3 days at once', async () => {
    const s = await onClock({ trial_end: '2026-01-03' });
    await s.work();
    const notice = (await s.events()).find((e) => e.type === 'subscription.trial_will_end');
    expect(notice?.occurred_at).toBe('2026-01-01T00:00:00.000Z');
  });

  it("without an end, canceled or ended while it trials, bills no usage charge's minimum (trials1 #2)", async () => {
    const metric = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code: `trial-min-${Date.now()}`, name: 'Calls', aggregation: 'count' });
    expect(metric.status, metric.text).toBe(201);
    const metered = await t.api.post('/api/v1/plans').send({
      code: `trial-minimum-${Date.now()}`,
      name: 'Metered with a minimum',
      interval: 'month',
      price: { model: 'flat', amount: '20.00' },
      usage_charges: [
        {
          metric: (metric.body as Schemas['BillableMetric']).code,
          model: 'per_unit',
          amount: '0.50',
          minimum_amount: '5.00',
        },
      ],
    });
    expect(metered.status, metered.text).toBe(201);
    const planId = (metered.body as Schemas['Plan']).id;
    const open = { plan_id: planId, start_date: '2026-01-10', trial_end: undefined };
    const canceled = await onClock(open, '2026-01-10T12:00:00Z');
    const ended = await onClock({ ...open, end_date: '2026-01-20' }, '2026-01-10T12:00:00Z');
    await canceled.work();
    await canceled.advance('2026-01-15T00:00:00Z');
    expect(
      (await t.api.post(`/api/v1/subscriptions/${canceled.sub.id}/cancel`).send({ at: 'now' })).status,
    ).toBe(200);
    await canceled.advance('2026-04-01T00:00:00Z');
    await ended.advance('2026-04-01T00:00:00Z');
    expect(await canceled.invoices()).toEqual([]);
    expect(await ended.invoices()).toEqual([]);
  });

  it('bills no usage of the trial: the trial is free, usage included', async () => {
    const metric = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code: `trial-calls-${Date.now()}`, name: 'Calls', aggregation: 'count' });
    expect(metric.status, metric.text).toBe(201);
    const code = (metric.body as Schemas['BillableMetric']).code;
    const metered = await t.api.post('/api/v1/plans').send({
      code: `trial-metered-${Date.now()}`,
      name: 'Metered',
      interval: 'month',
      price: { model: 'flat', amount: '20.00' },
      usage_charges: [{ metric: code, model: 'per_unit', amount: '1.00' }],
    });
    expect(metered.status, metered.text).toBe(201);
    const s = await onClock({ plan_id: (metered.body as Schemas['Plan']).id, trial_end: '2026-01-15' });
    await s.advance('2026-01-10T00:00:00Z');
    const sent = await t.api.post('/api/v1/usage-events').send({
      event_id: `trial-${s.sub.id}`,
      user_id: s.sub.user_id,
      metric: code,
      timestamp: '2026-01-09T00:00:00Z',
    });
    expect(sent.status, sent.text).toBe(201);
    // Counted in the trial, a period of its own from the start, never before it.
    expect(sent.body).toMatchObject({ counted: true, period_start: '2026-01-01' });
    const during = await t.api.get(`/api/v1/subscriptions/${s.sub.id}/usage`);
    expect(during.status, during.text).toBe(200);
    expect(during.body).toMatchObject({
      period_start: '2026-01-01',
      period_end: '2026-01-15',
      trial: true,
      invoiced: false,
      amount: '1.00',
    });
    await s.advance('2026-02-20T00:00:00Z');
    expect((await s.invoices()).map((i) => [i.period_start, i.lines.map((l) => [l.type, l.amount])])).toEqual(
      [
        ['2026-01-15', [['subscription', '20.00']]],
        // The first paid period's usage (none) is billed in arrears as usual.
        [
          '2026-02-15',
          [
            ['subscription', '20.00'],
            ['usage', '0.00'],
          ],
        ],
      ],
    );
    // The trial reads back as such, free and never invoiced; a late event for it is refused.
    const trial = await t.api
      .get(`/api/v1/subscriptions/${s.sub.id}/usage`)
      .query({ period_start: '2026-01-01' });
    expect(trial.body).toMatchObject({ period_end: '2026-01-15', trial: true, invoiced: false });
    const late = await t.api.post('/api/v1/usage-events').send({
      event_id: `trial-late-${s.sub.id}`,
      user_id: s.sub.user_id,
      metric: code,
      timestamp: '2026-01-12T00:00:00Z',
    });
    expect(expectProblem(late, 422, 'unprocessable').errors![0]!.message).toContain('falls in the trial');
  });

  it('refuses a trial_end without trialing, not after the start, in the past, or moved on no trial', async () => {
    expectProblem((await onClock({ status: 'active', trial_end: '2026-02-01' })).res, 422, 'unprocessable');
    expectProblem((await onClock({ trial_end: '2026-01-01' })).res, 422, 'unprocessable');
    const past = await onClock({ trial_end: '2026-01-10' }, '2026-01-12T00:00:00Z');
    expect(past.res.body).toMatchObject({
      errors: [{ field: '/trial_end', message: 'must be after today (2026-01-12)' }],
    });
    const active = await onClock({ status: 'active' });
    expectProblem(
      await t.api.patch(`/api/v1/subscriptions/${active.sub.id}`).send({ trial_end: '2026-03-01' }),
      422,
      'unprocessable',
    );
    // The plan's 14 days from 2026-01-01 are over on the clock's 2026-01-20: trialing without an
    // end would never be billed, so it is refused; active, the same subscription is fine.
    const over = await onClock({}, '2026-01-20T00:00:00Z');
    expect(expectProblem(over.res, 422, 'unprocessable').errors).toEqual([
      {
        location: 'body',
        field: '/status',
        message:
          "the plan's 14-day trial from start_date ended on 2026-01-15, not after today (2026-01-20): create it active, or send a trial_end after today",
      },
    ]);
    expect((await onClock({ status: 'active' }, '2026-01-20T00:00:00Z')).res.status).toBe(201);
    expect((await onClock({}, '2026-01-14T00:00:00Z')).res.body).toMatchObject({ trial_end: '2026-01-15' });
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
