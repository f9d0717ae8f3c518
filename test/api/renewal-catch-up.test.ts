// A pause, a resume or a cancellation first performs the subscription's renewal if it is due and
// the worker has not run it yet: what they bill and credit does not depend on which came first.
// No worker runs here, so a subscription's first period is never invoiced unless they do it.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;
let planId: string;

const DAY = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

beforeAll(async () => {
  t = await ctx.newTenant();
  const plan = await t.api
    .post('/api/v1/plans')
    .send({ code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '30.00' } });
  expect(plan.status, plan.text).toBe(201);
  planId = (plan.body as Schemas['Plan']).id;
});

/** Started 3 days ago in real time, its first period not invoiced yet (no worker). */
async function subscribedDaysAgo() {
  const user = await createUser(t);
  const start = isoDay(Date.now() - 3 * DAY);
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', plan_id: planId, start_date: start });
  expect(res.status, res.text).toBe(201);
  const sub = res.body as Schemas['Subscription'];
  expect(sub).toMatchObject({ billed_until: start, current_period_start: start });
  return sub;
}

async function invoicesOf(id: string) {
  const res = await t.api.get('/api/v1/invoices').query({ subscription_id: id, limit: 100 });
  expect(res.status, res.text).toBe(200);
  return (res.body as Schemas['InvoiceList']).data;
}

describe('a change before the worker renewed the period', () => {
  it('a cancellation bills the period being served in full, as after its renewal', async () => {
    const sub = await subscribedDaysAgo();
    expect(await invoicesOf(sub.id)).toEqual([]);
    const canceled = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', billed_until: sub.current_period_end });
    const invoices = await invoicesOf(sub.id);
    expect(invoices.map((i) => [i.kind, i.status, i.period_start, i.period_end, i.total])).toEqual([
      ['period', 'open', sub.current_period_start, sub.current_period_end, '30.00'],
    ]);
  });

  it('a pause bills the period, then credits the days from today to its end', async () => {
    const sub = await subscribedDaysAgo();
    const paused = await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`);
    expect(paused.status, paused.text).toBe(200);
    const invoices = await invoicesOf(sub.id);
    expect(invoices.map((i) => [i.kind, i.period_start, i.total])).toEqual([
      ['period', sub.current_period_start, '30.00'],
    ]);
    const today = isoDay(Date.now());
    const end = sub.current_period_end;
    const length = (Date.parse(end) - Date.parse(sub.current_period_start)) / DAY;
    const unused = (Date.parse(end) - Date.parse(today)) / DAY;
    const cents = Math.round((3000 * unused) / length);
    const items = await t.api.get(`/api/v1/subscriptions/${sub.id}/invoice-items`).query({ pending: true });
    expect(items.status, items.text).toBe(200);
    expect(
      (items.body as Schemas['InvoiceItemList']).data.map((i) => [
        i.kind,
        i.amount,
        i.period_start,
        i.period_end,
      ]),
    ).toEqual([['proration_credit', `-${(cents / 100).toFixed(2)}`, today, end]]);
  });

  it("on a test clock, at the clock's time: backdated, the renewal was not due before the subscription existed", async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'catch-up', frozen_time: '2026-01-10T12:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const created = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: planId,
      start_date: '2026-01-05',
      test_clock_id: clock.id,
    });
    expect(created.status, created.text).toBe(201);
    const sub = created.body as Schemas['Subscription'];
    const canceled = await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    expect(canceled.body).toMatchObject({ canceled_at: '2026-01-10T12:00:00.000Z' });
    const [invoice, ...others] = await invoicesOf(sub.id);
    expect(others).toEqual([]);
    expect(invoice).toMatchObject({
      kind: 'period',
      period_start: '2026-01-05',
      period_end: '2026-02-05',
      total: '30.00',
    });
    expect(invoice!.finalized_at).toBe('2026-01-10T12:00:00.000Z');
  });

  it('a trial that ended on a clock still advancing waits for the clock; then it pauses after its renewal', async () => {
    const clock = (
      await t.api
        .post('/api/v1/test-clocks')
        .send({ name: 'trial over', frozen_time: '2026-01-05T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const created = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'trialing',
      plan_id: planId,
      start_date: '2026-01-05',
      trial_end: '2026-01-12',
      test_clock_id: clock.id,
    });
    expect(created.status, created.text).toBe(201);
    const sub = created.body as Schemas['Subscription'];
    // The clock moves past the trial's end: until the worker has performed what is due on the
    // way, a change would be dated after steps not made yet, and is refused.
    const advanced = await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2026-01-20T00:00:00Z' });
    expect(advanced.status, advanced.text).toBe(202);
    expectProblem(await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`), 409, 'conflict');
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    const paused = await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`);
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body).toMatchObject({ status: 'paused', trial_end: '2026-01-12' });
    const invoices = await invoicesOf(sub.id);
    expect(invoices.map((i) => [i.kind, i.period_start, i.period_end, i.total])).toEqual([
      ['period', '2026-01-12', '2026-02-12', '30.00'],
    ]);
  });

  it('nothing is billed twice: the renewal, once performed, is not performed again', async () => {
    const sub = await subscribedDaysAgo();
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`)).status).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/resume`)).status).toBe(200);
    expect((await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' })).status).toBe(200);
    const periods = (await invoicesOf(sub.id)).filter((i) => i.kind === 'period');
    expect(periods.map((i) => i.period_start)).toEqual([sub.current_period_start]);
  });

  it('If-Match with the version read before still applies: the renewal was the only change', async () => {
    const sub = await subscribedDaysAgo();
    const paused = await t.api
      .post(`/api/v1/subscriptions/${sub.id}/pause`)
      .set('If-Match', `"${sub.version}"`);
    expect(paused.status, paused.text).toBe(200);
    expect((paused.body as Schemas['Subscription']).version).toBeGreaterThan(sub.version + 1);
    // A version older than that is still stale.
    const other = await subscribedDaysAgo();
    const touched = await t.api.patch(`/api/v1/subscriptions/${other.id}`).send({ quantity: 2 });
    expect(touched.status, touched.text).toBe(200);
    const stale = await t.api
      .post(`/api/v1/subscriptions/${other.id}/cancel`)
      .set('If-Match', `"${other.version}"`)
      .send({ at: 'now' });
    expect(stale.status, stale.text).toBe(412);
    // Refused, it wrote nothing: not even the renewal (the worker's, to come).
    expect(await invoicesOf(other.id)).toEqual([]);
  });

  it('a pause refused for its resumes_at writes nothing, not even the renewal', async () => {
    const sub = await subscribedDaysAgo();
    const today = isoDay(Date.now());
    const refused = await t.api.post(`/api/v1/subscriptions/${sub.id}/pause`).send({ resumes_at: today });
    expect(refused.status, refused.text).toBe(422);
    expect(await invoicesOf(sub.id)).toEqual([]);
    expect((await t.api.get(`/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({
      version: sub.version,
      billed_until: sub.billed_until,
    });
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
