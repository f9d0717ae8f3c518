// Single usage events sent at the same time share transactions (a group commit, services/usage.ts):
// each request must still get exactly the answer it would get alone, and every event count once.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

beforeAll(async () => {
  t = await ctx.newTenant();
});

const tag = () => Math.random().toString(36).slice(2, 10);

async function meteredPlan(unitAmount: string) {
  const code = `m-${tag()}`;
  const metric = await t.api
    .post('/api/v1/billable-metrics')
    .send({ code, name: 'Tokens', aggregation: 'sum', field: 'n' });
  expect(metric.status, metric.text).toBe(201);
  const plan = await t.api.post('/api/v1/plans').send({
    code: `p-${tag()}`,
    name: 'Metered',
    interval: 'month',
    price: { model: 'flat', amount: '0.00' },
    usage_charges: [{ metric: code, model: 'per_unit', amount: unitAmount }],
  });
  expect(plan.status, plan.text).toBe(201);
  return { metric: code, planId: (plan.body as Schemas['Plan']).id };
}

async function subscribe(planId: string) {
  const user = await createUser(t);
  const res = await t.api
    .post('/api/v1/subscriptions')
    .send({ user_id: user.id, status: 'active', plan_id: planId, start_date: '2026-01-01' });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Subscription'];
}

const send = (event: Record<string, unknown>) => t.api.post('/api/v1/usage-events').send(event);
const usageTotal = async (subscriptionId: string) => {
  const res = await t.api.get(`/api/v1/subscriptions/${subscriptionId}/usage`);
  expect(res.status, res.text).toBe(200);
  const usage = res.body as Schemas['SubscriptionUsage'];
  return usage.charges.map((c) => [c.quantity, c.amount]);
};

describe('single events sent at the same time', () => {
  it('answers each as if alone, counts each once, and records many in one transaction', async () => {
    const { metric, planId } = await meteredPlan('0.50');
    const subs = await Promise.all(Array.from({ length: 4 }, () => subscribe(planId)));
    const old = { event_id: `old-${tag()}`, user_id: subs[0]!.user_id, metric, properties: { n: 7 } };
    const recordedBefore = await send(old);
    expect(recordedBefore.status, recordedBefore.text).toBe(201);

    const run = tag();
    const valid = Array.from({ length: 40 }, (_, i) => ({
      event_id: `v-${run}-${i}`,
      user_id: subs[i % 4]!.user_id,
      metric,
      properties: { n: i + 1 },
    }));
    const twin = { event_id: `twin-${run}`, user_id: subs[1]!.user_id, metric, properties: { n: 1000 } };
    const unknownMetric = Array.from({ length: 4 }, (_, i) => ({
      event_id: `bad-metric-${run}-${i}`,
      user_id: subs[2]!.user_id,
      metric: `no-such-${run}`,
      properties: { n: 1 },
    }));
    const badValue = Array.from({ length: 4 }, (_, i) => ({
      event_id: `bad-value-${run}-${i}`,
      user_id: subs[3]!.user_id,
      metric,
      properties: { n: -1 },
    }));
    // Interleaved, all at once: valid events, five copies of one new event, a repeat of an event
    // recorded before (with other properties), and events that break a rule.
    const requests = [
      ...valid.map((e) => ({ kind: 'valid' as const, event: e })),
      ...Array.from({ length: 5 }, () => ({ kind: 'twin' as const, event: twin })),
      { kind: 'old' as const, event: { ...old, properties: { n: 99 } } },
      ...unknownMetric.map((e) => ({ kind: 'unknown-metric' as const, event: e })),
      ...badValue.map((e) => ({ kind: 'bad-value' as const, event: e })),
    ].sort(() => Math.random() - 0.5);
    const answers = await Promise.all(requests.map((r) => send(r.event)));

    const created: Schemas['UsageEvent'][] = [];
    const twins: Array<{ status: number; body: Schemas['UsageEvent'] }> = [];
    requests.forEach((request, i) => {
      const res = answers[i]!;
      switch (request.kind) {
        case 'valid':
          expect(res.status, res.text).toBe(201);
          expect(res.headers.location).toBe(`/api/v1/usage-events/${(res.body as Schemas['UsageEvent']).id}`);
          expect(res.body).toMatchObject({
            event_id: request.event.event_id,
            user_id: request.event.user_id,
            value: String(request.event.properties.n),
            counted: true,
          });
          created.push(res.body as Schemas['UsageEvent']);
          break;
        case 'twin':
          twins.push({ status: res.status, body: res.body as Schemas['UsageEvent'] });
          break;
        case 'old':
          expect(res.status, res.text).toBe(200);
          expect(res.body).toEqual(recordedBefore.body);
          break;
        case 'unknown-metric': {
          const problem = expectProblem(res, 422, 'unprocessable');
          expect(problem.errors).toEqual([
            { location: 'body', field: '/metric', message: `no billable metric has the code no-such-${run}` },
          ]);
          break;
        }
        case 'bad-value': {
          const problem = expectProblem(res, 422, 'unprocessable');
          expect(problem.errors).toEqual([
            expect.objectContaining({ location: 'body', field: '/properties/n' }),
          ]);
          break;
        }
      }
    });
    // One of the five copies recorded it; the others got that same event back as a duplicate.
    expect(twins.map((x) => x.status).sort()).toEqual([200, 200, 200, 200, 201]);
    for (const x of twins) expect(x.body).toEqual(twins.find((y) => y.status === 201)!.body);

    // Counted exactly once each: the usage now against an independent sum of the distinct events.
    for (const [k, sub] of subs.entries()) {
      const mine = valid.filter((_, i) => i % 4 === k).reduce((sum, e) => sum + e.properties.n, 0);
      const quantity = mine + (k === 0 ? 7 : 0) + (k === 1 ? 1000 : 0);
      expect(await usageTotal(sub.id)).toEqual([[String(quantity), (quantity * 0.5).toFixed(2)]]);
    }
    // Refused events left nothing behind.
    const listed = await t.api.get('/api/v1/usage-events').query({ user_id: subs[3]!.user_id, limit: 100 });
    expect((listed.body as Schemas['UsageEventList']).data.map((e) => e.event_id).sort()).toEqual(
      valid
        .filter((_, i) => i % 4 === 3)
        .map((e) => e.event_id)
        .sort(),
    );
    // Shared transactions: the rows of events recorded together carry one transaction id.
    const { rows } = await sql<{ transactions: number }>`
      select count(distinct xmin::text)::int as transactions from usage_events
      where event_id = any(${created.map((e) => e.event_id)}::text[])`.execute(ctx.db);
    expect(rows[0]!.transactions).toBeLessThan(created.length);
  });

  it('refuses only the events over a charge limit when a group would cross it, recording the rest', async () => {
    // 9 events of 1 bill 9,000,000,000.00; a tenth would bill 10,000,000,000.00, over the limit.
    const { metric, planId } = await meteredPlan('1000000000.00');
    const capped = await subscribe(planId);
    const cheap = await meteredPlan('0.01');
    const other = await subscribe(cheap.planId);
    const run = tag();
    const requests = [
      ...Array.from({ length: 12 }, (_, i) => ({
        capped: true,
        event: { event_id: `cap-${run}-${i}`, user_id: capped.user_id, metric, properties: { n: 1 } },
      })),
      ...Array.from({ length: 12 }, (_, i) => ({
        capped: false,
        event: {
          event_id: `other-${run}-${i}`,
          user_id: other.user_id,
          metric: cheap.metric,
          properties: { n: 2 },
        },
      })),
    ].sort(() => Math.random() - 0.5);
    const answers = await Promise.all(requests.map((r) => send(r.event)));
    const period = `${new Date().toISOString().slice(0, 7)}-01`;
    const over = `the usage of the period starting ${period} would bill more than 9999999999.99 for one charge of the plan, the most a charge bills a period`;
    const statuses = { capped: [] as number[], other: [] as number[] };
    requests.forEach((request, i) => {
      const res = answers[i]!;
      if (res.status === 422) {
        expect(expectProblem(res, 422, 'unprocessable').errors).toEqual([
          { location: 'body', field: '', message: over },
        ]);
      } else expect(res.status, res.text).toBe(201);
      (request.capped ? statuses.capped : statuses.other).push(res.status);
    });
    expect(statuses.capped.sort()).toEqual([...Array(9).fill(201), 422, 422, 422]);
    expect(statuses.other).toEqual(Array(12).fill(201));
    expect(await usageTotal(capped.id)).toEqual([['9', '9000000000.00']]);
    expect(await usageTotal(other.id)).toEqual([['24', '0.24']]);
  });
});

describe('an event whose metric is deleted while it is recorded', () => {
  it('is refused with 422 naming the metric, not 409: read again once the delete committed', async () => {
    const code = `gone-${tag()}`;
    const made = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code, name: 'Gone', aggregation: 'count' });
    expect(made.status, made.text).toBe(201);
    const user = await createUser(t);
    // The delete, not committed yet: the event reads the metric, then its insert's foreign key
    // check waits for the delete's row lock, and fails once it commits.
    const deleter = await ctx.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      await sql`delete from billable_metrics where id = ${(made.body as Schemas['BillableMetric']).id}`.execute(
        conn,
      );
      // Sent now (a supertest request starts when it is awaited or then'd).
      const answer = send({ event_id: `e-${tag()}`, user_id: user.id, metric: code }).then((res) => res);
      for (let i = 0; ; i++) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks
          where not granted and locktype = 'transactionid'`.execute(ctx.db);
        if (rows[0]!.n > 0) break;
        if (i > 200) throw new Error('the event never waited for the delete');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await sql`commit`.execute(conn);
      return answer;
    });
    const problem = expectProblem(deleter, 422, 'unprocessable');
    expect(problem.errors).toEqual([expect.objectContaining({ field: '/metric' })]);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
