// Usage is never lost when a subscription ends before the worker's first renewal of it: the
// period it ended in is its last, and that period's usage is billed when the period ends, as for
// any ended subscription.
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
let metric: string;

beforeAll(async () => {
  t = await ctx.newTenant();
  metric = 'api-calls';
  const made = await t.api
    .post('/api/v1/billable-metrics')
    .send({ code: metric, name: 'Calls', aggregation: 'count' });
  expect(made.status, made.text).toBe(201);
  const res = await t.api.post('/api/v1/plans').send({
    code: 'metered',
    name: 'Metered',
    interval: 'month',
    price: { model: 'flat', amount: '10.00' },
    usage_charges: [{ metric, model: 'per_unit', amount: '2.00' }],
  });
  expect(res.status, res.text).toBe(201);
  plan = res.body as Schemas['Plan'];
});

async function onClock(frozen: string, startDate: string) {
  const clock = (await t.api.post('/api/v1/test-clocks').send({ name: 'ended early', frozen_time: frozen }))
    .body as Schemas['TestClock'];
  const user = await createUser(t);
  const made = await t.api.post('/api/v1/subscriptions').send({
    user_id: user.id,
    status: 'active',
    plan_id: plan.id,
    start_date: startDate,
    test_clock_id: clock.id,
  });
  expect(made.status, made.text).toBe(201);
  const sub = made.body as Schemas['Subscription'];
  const record = async (id: string, at: string) => {
    const res = await t.api
      .post('/api/v1/usage-events')
      .send({ event_id: `${sub.id}-${id}`, user_id: user.id, metric, timestamp: at });
    expect(res.status, res.text).toBe(201);
  };
  const advance = async (at: string) => {
    const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: at });
    expect(res.status, res.text).toBe(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  };
  const usageLines = async () => {
    const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id, limit: 100 });
    return (res.body as Schemas['InvoiceList']).data.flatMap((i) =>
      i.lines
        .filter((l) => l.type === 'usage')
        .map((l) => [i.period_start, l.period_start, l.period_end, l.usage!.quantity, l.amount]),
    );
  };
  return { sub, record, advance, usageLines };
}

describe('a subscription canceled before its first renewal ran', () => {
  it('bills the usage of the period it ended in, when that period ends', async () => {
    const s = await onClock('2026-07-01T00:00:00Z', '2026-07-01');
    await s.record('1', '2026-07-01T00:00:00Z');
    await s.record('2', '2026-07-01T00:00:00Z');
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await s.advance('2026-07-20T00:00:00Z');
    expect(await s.usageLines()).toEqual([]); // not before the period ends
    await s.advance('2026-08-02T00:00:00Z');
    expect(await s.usageLines()).toEqual([['2026-08-01', '2026-07-01', '2026-08-01', '2', '4.00']]);
    const usage = await t.api.get(`/api/v1/subscriptions/${s.sub.id}/usage`);
    expect(usage.body).toMatchObject({ invoiced: true, amount: '4.00' });
    // A late event of that last period: no later period will bill an adjustment, and the 422 says so.
    const late = await t.api.post('/api/v1/usage-events').send({
      event_id: `${s.sub.id}-late`,
      user_id: s.sub.user_id,
      metric,
      timestamp: '2026-07-01T00:00:00Z',
    });
    expect(late.status, late.text).toBe(422);
    const [error] = (late.body as Schemas['Problem']).errors!;
    expect(error!.message).toContain("the subscription's last (it ends on 2026-07-01)");
    expect(error!.message).toContain('one-off invoice');
    expect(error!.message).not.toContain('later period');
  });

  it('also when it started before the clock, in a period already under way', async () => {
    const s = await onClock('2026-05-10T00:00:00Z', '2026-05-01');
    await s.record('1', '2026-05-02T00:00:00Z');
    await s.record('2', '2026-05-09T00:00:00Z');
    await s.record('3', '2026-05-09T12:00:00Z');
    expect((await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' })).status).toBe(
      200,
    );
    await s.advance('2026-06-02T00:00:00Z');
    expect(await s.usageLines()).toEqual([['2026-06-01', '2026-05-01', '2026-06-01', '3', '6.00']]);
  });
});

describe('a subscription whose end_date passed, moved later or cleared', () => {
  it('bills the price of the period billing resumes with, which its closing invoice billed the usage of (usage7 #3)', async () => {
    for (const end_date of [null, '2026-02-20']) {
      const s = await onClock('2026-01-01T00:00:00Z', '2026-01-01');
      await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-01-15' }).expect(200);
      await s.advance('2026-01-10T00:00:00Z');
      await s.record('1', '2026-01-10T00:00:00Z');
      await s.advance('2026-02-10T00:00:00Z');
      const invoices = async () =>
        (
          (await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id }))
            .body as Schemas['InvoiceList']
        ).data
          .reverse()
          .map((i) => [i.kind, i.period_start, i.lines.map((l) => [l.type, l.amount])]);
      // January's price, then its usage on the closing invoice dated February 1.
      expect(await invoices()).toEqual([
        ['period', '2026-01-01', [['subscription', '10.00']]],
        ['period', '2026-02-01', [['usage', '2.00']]],
      ]);
      const moved = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date });
      expect(moved.status, moved.text).toBe(200);
      // February served again: its price invoiced at once, renewals from March 1.
      expect((moved.body as Schemas['Subscription']).billed_until).toBe('2026-03-01');
      expect((await invoices())[2]).toEqual(['proration', '2026-02-01', [['proration', '10.00']]]);
      await s.advance('2026-03-02T00:00:00Z');
      // Then March's price while it is served (cleared), none once it ended (Feb 20, no usage).
      const march = (await invoices()).slice(3).map(([kind, start]) => [kind, start]);
      expect(march).toEqual(end_date === null ? [['period', '2026-03-01']] : []);
    }
  });

  it('bills that price also when the closing invoice was voided: the void forgave its usage only', async () => {
    const s = await onClock('2026-01-01T00:00:00Z', '2026-01-01');
    await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-01-15' }).expect(200);
    await s.advance('2026-01-10T00:00:00Z');
    await s.record('1', '2026-01-10T00:00:00Z');
    await s.advance('2026-02-05T00:00:00Z');
    const list = async () =>
      (
        (await t.api.get('/api/v1/invoices').query({ subscription_id: s.sub.id }))
          .body as Schemas['InvoiceList']
      ).data.reverse();
    const closing = (await list())[1]!;
    expect(closing.lines.map((l) => l.type)).toEqual(['usage']);
    await t.api.post(`/api/v1/invoices/${closing.id}/void`).expect(200);
    const cleared = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: null });
    expect(cleared.status, cleared.text).toBe(200);
    expect((cleared.body as Schemas['Subscription']).billed_until).toBe('2026-03-01');
    await s.advance('2026-04-02T00:00:00Z');
    // February's price once (the usage stays forgiven), then March and April.
    expect((await list()).map((i) => [i.kind, i.period_start, i.status, i.subtotal])).toEqual([
      ['period', '2026-01-01', 'open', '10.00'],
      ['period', '2026-02-01', 'void', '2.00'],
      ['proration', '2026-02-01', 'open', '10.00'],
      ['period', '2026-03-01', 'open', '10.00'],
      ['period', '2026-04-01', 'open', '10.00'],
    ]);
  });

  it('is not moved back before the day of usage counted already (usage7 #2)', async () => {
    const s = await onClock('2026-01-01T00:00:00Z', '2026-01-01');
    await s.advance('2026-01-20T00:00:00Z');
    await s.record('early', '2026-01-10T00:00:00Z');
    await s.record('late', '2026-01-19T23:00:00Z');
    const read = async () =>
      (await t.api.get(`/api/v1/subscriptions/${s.sub.id}`)).body as Schemas['Subscription'];
    const before = await read();
    const refused = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-01-15' });
    const problem = expectProblem(refused, 422, 'unprocessable');
    expect(problem.errors).toEqual([
      {
        location: 'body',
        field: '/end_date',
        message: expect.stringContaining('end it on or after 2026-01-19'),
      },
    ]);
    // Wrote nothing.
    expect(await read()).toEqual(before);
    // The day of the latest event is its last day of service: both events billed when it ends.
    await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ end_date: '2026-01-19' }).expect(200);
    await s.advance('2026-02-02T00:00:00Z');
    expect(await s.usageLines()).toEqual([['2026-02-01', '2026-01-01', '2026-02-01', '2', '4.00']]);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
