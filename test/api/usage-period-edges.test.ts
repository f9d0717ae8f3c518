// The edges of usage periods, probed from outside: a subscription created two or more periods
// back counted usage in periods no invoice would ever bill; a new start_date orphaned the usage
// counted (its periods no longer existed); ending a trial early billed a usage line for a period
// before the start; deleting a subscription left its events counted for nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

beforeAll(async () => {
  t = await ctx.newTenant();
});

const tag = () => Math.random().toString(36).slice(2, 10);

async function created<T>(path: string, body: Record<string, unknown>): Promise<T> {
  const res = await t.api.post(path).send(body);
  expect(res.status, res.text).toBe(201);
  return res.body as T;
}

/**
 * A sum metric (field n), a plan at 10.00 a month charging it per unit at 2.00 (plus `charge`),
 * a test clock at `now` and a monthly subscription on it (`subscription`: its fields).
 */
async function setUp(
  now: string,
  subscription: Record<string, unknown>,
  charge: Record<string, unknown> = {},
) {
  const metric = await created<Schemas['BillableMetric']>('/api/v1/billable-metrics', {
    code: `edge-${tag()}`,
    name: 'Edge',
    aggregation: 'sum',
    field: 'n',
  });
  const plan = await created<Schemas['Plan']>('/api/v1/plans', {
    code: `edge-${tag()}`,
    name: 'Edge plan',
    interval: 'month',
    price: { model: 'flat', amount: '10.00' },
    usage_charges: [{ metric: metric.code, model: 'per_unit', amount: '2.00', ...charge }],
  });
  const clock = await created<Schemas['TestClock']>('/api/v1/test-clocks', {
    name: 'edges',
    frozen_time: now,
  });
  const user = await createUser(t);
  const sub = await created<Schemas['Subscription']>('/api/v1/subscriptions', {
    user_id: user.id,
    status: 'active',
    plan_id: plan.id,
    test_clock_id: clock.id,
    ...subscription,
  });
  const advance = async (to: string) => {
    const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
    expect(res.status, res.text).toBe(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
  };
  const send = (n: number, at: string) =>
    t.api.post('/api/v1/usage-events').send({
      event_id: `e-${tag()}`,
      user_id: user.id,
      metric: metric.code,
      timestamp: at,
      properties: { n },
    });
  const record = async (n: number, at: string) => {
    const res = await send(n, at);
    expect(res.status, res.text).toBe(201);
    return res.body as Schemas['UsageEvent'];
  };
  const invoices = async () => {
    const res = await t.api.get('/api/v1/invoices').query({ subscription_id: sub.id });
    expect(res.status, res.text).toBe(200);
    return (res.body as Schemas['InvoiceList']).data.filter((i) => i.status !== 'void');
  };
  const usageLines = async () =>
    (await invoices())
      .flatMap((i) => i.lines.map((l) => ({ ...l, invoice: i.period_start })))
      .filter((l) => l.type === 'usage')
      .map((l) => [l.invoice, l.period_start, l.usage!.quantity, l.amount])
      .sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  const usage = (periodStart?: string) =>
    t.api
      .get(`/api/v1/subscriptions/${sub.id}/usage`)
      .query(periodStart === undefined ? {} : { period_start: periodStart });
  return { metric, plan, clock, user, sub, advance, send, record, invoices, usageLines, usage };
}

describe('a subscription created two or more periods back (F1)', () => {
  it('refuses usage in the periods before the one just before billed_until, which are never billed', async () => {
    const s = await setUp('2026-03-10T00:00:00Z', { start_date: '2026-01-01' });
    expect(s.sub.billed_until).toBe('2026-03-01');
    // January is never invoiced: refused, saying from which day the usage is billed.
    const january = await s.send(5, '2026-01-15T00:00:00Z');
    const problem = expectProblem(january, 422, 'unprocessable');
    expect(problem.errors).toEqual([
      expect.objectContaining({ field: '/timestamp', message: expect.stringContaining('2026-02-01') }),
    ]);
    // So is a batch carrying such an event, naming it.
    const batch = await t.api.post('/api/v1/usage-events/batch').send({
      events: [
        {
          event_id: `b-${tag()}`,
          user_id: s.user.id,
          metric: s.metric.code,
          timestamp: '2026-02-02T00:00:00Z',
          properties: { n: 1 },
        },
        {
          event_id: `b-${tag()}`,
          user_id: s.user.id,
          metric: s.metric.code,
          timestamp: '2026-01-31T00:00:00Z',
          properties: { n: 1 },
        },
      ],
    });
    expect(expectProblem(batch, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({
        field: '/events/1/timestamp',
        message: expect.stringContaining('2026-02-01'),
      }),
    ]);
    // February (just before billed_until) and March are billed as before.
    expect(await s.record(3, '2026-02-15T00:00:00Z')).toMatchObject({
      counted: true,
      period_start: '2026-02-01',
    });
    expect(await s.record(4, '2026-03-05T00:00:00Z')).toMatchObject({
      counted: true,
      period_start: '2026-03-01',
    });
    // January does not claim to be invoiced (or billable): it never is.
    const before = await s.usage('2026-01-01');
    expect(expectProblem(before, 422, 'unprocessable').detail).toContain('2026-02-01');
    const feb = await s.usage('2026-02-01');
    expect(feb.status, feb.text).toBe(200);
    expect(feb.body).toMatchObject({ invoiced: false, amount: '6.00' });
    await s.advance('2026-04-02T00:00:00Z');
    expect(await s.usageLines()).toEqual([
      ['2026-03-01', '2026-02-01', '3', '6.00'],
      ['2026-04-01', '2026-03-01', '4', '8.00'],
    ]);
    const after = await s.usage('2026-01-01');
    expectProblem(after, 422, 'unprocessable');
    expect((await s.usage('2026-02-01')).body).toMatchObject({ invoiced: true, amount: '6.00' });
  });

  it('one period back, bills the usage of that first period as before', async () => {
    const s = await setUp('2026-02-10T00:00:00Z', { start_date: '2026-01-01' });
    expect(await s.record(5, '2026-01-15T00:00:00Z')).toMatchObject({
      counted: true,
      period_start: '2026-01-01',
    });
    await s.advance('2026-03-02T00:00:00Z');
    expect(await s.usageLines()).toEqual([
      ['2026-02-01', '2026-01-01', '5', '10.00'],
      ['2026-03-01', '2026-02-01', '0', '0.00'],
    ]);
  });
});

describe('PATCH start_date (F2)', () => {
  it('is refused while the subscription has counted usage: it would orphan it', async () => {
    const s = await setUp('2026-01-20T00:00:00Z', { start_date: '2026-01-01' });
    await s.record(3, '2026-01-15T00:00:00Z');
    for (const start_date of ['2026-01-10', '2025-12-01', '2026-01-02']) {
      const res = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date });
      expect(expectProblem(res, 422, 'unprocessable').errors).toEqual([
        expect.objectContaining({ field: '/start_date' }),
      ]);
    }
    await s.advance('2026-02-02T00:00:00Z');
    expect(await s.usageLines()).toEqual([['2026-02-01', '2026-01-01', '3', '6.00']]);
  });

  it('is taken without usage; moved back, the periods no invoice would bill refuse usage', async () => {
    const s = await setUp('2026-03-10T00:00:00Z', { start_date: '2026-03-01' });
    const res = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ start_date: '2026-01-01' });
    expect(res.status, res.text).toBe(200);
    expectProblem(await s.send(5, '2026-01-15T00:00:00Z'), 422, 'unprocessable');
    expect(await s.record(3, '2026-02-15T00:00:00Z')).toMatchObject({
      counted: true,
      period_start: '2026-02-01',
    });
  });
});

describe('a trial ended early (F3)', () => {
  it('bills no usage line for a period before the start or in the trial, even with a minimum', async () => {
    const s = await setUp(
      '2026-01-05T00:00:00Z',
      { status: 'trialing', start_date: '2026-01-01', trial_end: '2026-01-20' },
      { minimum_amount: '5.00' },
    );
    await s.record(2, '2026-01-03T00:00:00Z');
    const active = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    const upcoming = await t.api.get(`/api/v1/subscriptions/${s.sub.id}/upcoming-invoice`);
    expect(upcoming.status, upcoming.text).toBe(200);
    const predicted = upcoming.body as Schemas['Invoice'];
    expect(predicted.lines.filter((l) => l.type === 'usage')).toEqual([]);
    expect(predicted.subtotal).toBe('10.00');
    await s.advance('2026-01-05T01:00:00Z');
    const [first] = await s.invoices();
    expect(first).toMatchObject({ period_start: '2026-01-05', subtotal: '10.00' });
    expect(first!.lines.map((l) => l.type)).toEqual(['subscription']);
    // A late event in the (free) trial days is refused: usage is billed from the first period on.
    const late = await s.send(4, '2026-01-04T00:00:00Z');
    expect(expectProblem(late, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/timestamp', message: expect.stringContaining('2026-01-05') }),
    ]);
    await s.advance('2026-01-11T00:00:00Z');
    expect(await s.record(3, '2026-01-10T00:00:00Z')).toMatchObject({ period_start: '2026-01-05' });
    await s.advance('2026-02-06T00:00:00Z');
    expect(await s.usageLines()).toEqual([['2026-02-05', '2026-01-05', '3', '6.00']]);
    // The trial's own period stays readable, free: it ended the day its first period began.
    const trial = await s.usage('2026-01-01');
    expect(trial.status, trial.text).toBe(200);
    expect(trial.body).toMatchObject({
      period_start: '2026-01-01',
      period_end: '2026-01-05',
      trial: true,
      invoiced: false,
      charges: [expect.objectContaining({ quantity: '2' })],
    });
    // A day inside it names the trial's start, not a period of the new schedule before the start.
    const inside = await s.usage('2026-01-03');
    expect(expectProblem(inside, 422, 'unprocessable').detail).toContain('starts on 2026-01-01');
    const billed = await s.usage('2026-01-05');
    expect(billed.status, billed.text).toBe(200);
    expect(billed.body).toMatchObject({ period_start: '2026-01-05', trial: false, invoiced: true });
  });

  it('leaves a trial without an end readable too, its usage uncounted', async () => {
    const s = await setUp('2026-01-05T00:00:00Z', { status: 'trialing', start_date: '2026-01-01' });
    expect(await s.record(2, '2026-01-03T00:00:00Z')).toMatchObject({ counted: false });
    const active = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    const trial = await s.usage('2026-01-01');
    expect(trial.status, trial.text).toBe(200);
    expect(trial.body).toMatchObject({ period_end: '2026-01-05', trial: true, amount: '0.00' });
  });
});

describe('a trial without an end (F6)', () => {
  it('keeps its usage free, renewal after renewal, and bills from the day it is made active', async () => {
    const s = await setUp('2026-01-05T00:00:00Z', { status: 'trialing', start_date: '2026-01-01' });
    // Recorded, not counted: a trial's usage is free, whenever it ends.
    expect(await s.record(2, '2026-01-03T00:00:00Z')).toMatchObject({ counted: false });
    await s.advance('2026-02-10T00:00:00Z');
    expect(await s.record(5, '2026-02-09T00:00:00Z')).toMatchObject({ counted: false });
    const during = await s.usage();
    expect(during.status, during.text).toBe(200);
    expect(during.body).toMatchObject({ trial: true, amount: '0.00' });
    expect(await s.invoices()).toEqual([]);
    // Made active on Feb 10: its first period starts that day, and bills no usage of the trial.
    const active = await t.api.patch(`/api/v1/subscriptions/${s.sub.id}`).send({ status: 'active' });
    expect(active.status, active.text).toBe(200);
    expect(active.body).toMatchObject({ billing_anchor: '2026-02-10', current_period_start: '2026-02-10' });
    await s.advance('2026-02-10T01:00:00Z');
    const [first] = await s.invoices();
    expect(first).toMatchObject({ period_start: '2026-02-10', subtotal: '10.00' });
    expect(first!.lines.map((l) => l.type)).toEqual(['subscription']);
    // A late event of the trial's days is refused; usage from that day on is billed in arrears.
    const late = await s.send(4, '2026-02-09T12:00:00Z');
    expect(expectProblem(late, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/timestamp', message: expect.stringContaining('2026-02-10') }),
    ]);
    expect(await s.record(3, '2026-02-10T00:30:00Z')).toMatchObject({
      counted: true,
      period_start: '2026-02-10',
    });
    await s.advance('2026-03-11T00:00:00Z');
    expect(await s.usageLines()).toEqual([['2026-03-10', '2026-02-10', '3', '6.00']]);
  });

  it('bills nothing when it is canceled', async () => {
    const s = await setUp('2026-01-05T00:00:00Z', { status: 'trialing', start_date: '2026-01-01' });
    await s.record(7, '2026-01-04T00:00:00Z');
    await s.advance('2026-02-03T00:00:00Z');
    await s.record(1, '2026-02-02T00:00:00Z');
    const canceled = await t.api.post(`/api/v1/subscriptions/${s.sub.id}/cancel`).send({ at: 'now' });
    expect(canceled.status, canceled.text).toBe(200);
    await s.advance('2026-03-05T00:00:00Z');
    expect(await s.invoices()).toEqual([]);
  });
});

describe('DELETE of a subscription (F4)', () => {
  it('is refused with 409 while it has counted usage: cancel it instead', async () => {
    const s = await setUp('2026-01-20T00:00:00Z', { start_date: '2026-01-01' });
    const event = await s.record(5, '2026-01-15T00:00:00Z');
    const res = await t.api.delete(`/api/v1/subscriptions/${s.sub.id}`);
    expect(expectProblem(res, 409, 'conflict').detail).toMatch(/cancel/);
    expect((await t.api.get(`/api/v1/subscriptions/${s.sub.id}`)).status).toBe(200);
    const read = await t.api.get(`/api/v1/usage-events/${event.id}`);
    expect(read.body).toMatchObject({ subscription_id: s.sub.id, counted: true });
  });

  it('still deletes one without usage', async () => {
    const s = await setUp('2026-01-20T00:00:00Z', { start_date: '2026-01-01' });
    expect((await t.api.delete(`/api/v1/subscriptions/${s.sub.id}`)).status).toBe(204);
  });
});

describe('a value sent as a JSON number with more digits than a double holds (F5)', () => {
  it('is refused, not rounded: send it as a decimal string', async () => {
    // Priced at 0: large quantities stay under the most a charge may bill.
    const s = await setUp('2026-01-20T00:00:00Z', { start_date: '2026-01-01' }, { amount: '0' });
    const raw = (path: string, body: string) =>
      t.api.post(path).set('Content-Type', 'application/json').send(body);
    const event = (v: string) =>
      `{"event_id":"n-${tag()}","user_id":"${s.user.id}","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":{"n":${v}}}`;
    for (const v of ['9007199254740.993', '99999999999999.999999', '0.1000000000000000055511151231257827']) {
      const res = await raw('/api/v1/usage-events', event(v));
      expect(expectProblem(res, 422, 'unprocessable').errors).toEqual([
        expect.objectContaining({
          field: '/properties/n',
          message: expect.stringContaining('decimal string'),
        }),
      ]);
    }
    const batch = await raw(
      '/api/v1/usage-events/batch',
      `{"events":[${event('1')},${event('123456789012.345678')}]}`,
    );
    expect(expectProblem(batch, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/events/1/properties/n' }),
    ]);
    // As strings, exact; numbers a double holds, and integers below 2^53, as before.
    const exact = await raw('/api/v1/usage-events', event('"9007199254740.993"'));
    expect(exact.status, exact.text).toBe(201);
    expect(exact.body).toMatchObject({ value: '9007199254740.993' });
    for (const v of ['1234567890123.45', '12345.000000000000000000', '1234567890123456']) {
      const res = await raw('/api/v1/usage-events', event(v));
      expect(res.status, res.text).toBe(201);
    }
    // An integer of 2^53 or more, in any property (a unique_count value, a group_by value), is
    // rounded as well (9007199254740993 would count as ...992): refused wherever it is.
    for (const v of ['9007199254740992', '9007199254740993', '12345678901234567890']) {
      const other = `{"event_id":"n-${tag()}","user_id":"${s.user.id}","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":{"n":1,"user":${v}}}`;
      const res = await raw('/api/v1/usage-events', other);
      expect(expectProblem(res, 422, 'unprocessable').errors, v).toEqual([
        expect.objectContaining({
          field: '/properties/user',
          message: expect.stringContaining('decimal string'),
        }),
      ]);
    }
    // A body the contract refuses anyway gets its 400 first, naming its fields (input9 #3).
    const notAnObject = `{"event_id":"n-${tag()}","user_id":"${s.user.id}","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":9007199254740992}`;
    expect(
      expectProblem(await raw('/api/v1/usage-events', notAnObject), 400, 'validation-error').errors,
    ).toEqual([expect.objectContaining({ field: '/properties' })]);
    const badUser = `{"event_id":"n-${tag()}","user_id":"nope","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":{"n":9007199254740993}}`;
    expect(
      expectProblem(await raw('/api/v1/usage-events', badUser), 400, 'validation-error').errors?.map(
        (e) => e.field,
      ),
    ).toEqual(['/user_id']);
    // Below a double's range, in the metric's field or any property, single or batch: read as 0
    // (or with digits lost), so refused (retest11 #2); zero however written, and the range's
    // ends, kept.
    for (const v of ['1e-400', '-1E-0400', '0.1e-307', '4.9e-324']) {
      const other = `{"event_id":"n-${tag()}","user_id":"${s.user.id}","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":{"n":1,"other":${v}}}`;
      expect(expectProblem(await raw('/api/v1/usage-events', other), 422, 'unprocessable').errors, v).toEqual(
        [
          expect.objectContaining({
            field: '/properties/other',
            message: expect.stringContaining('range'),
          }),
        ],
      );
    }
    // Infinity is no number to the contract: its 400.
    const overflow = `{"event_id":"n-${tag()}","user_id":"${s.user.id}","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":{"n":1,"other":2e308}}`;
    expectProblem(await raw('/api/v1/usage-events', overflow), 400, 'validation-error');
    const underflow = await raw(
      '/api/v1/usage-events/batch',
      `{"events":[${event('0')},${event('1e-400')}]}`,
    );
    expect(expectProblem(underflow, 422, 'unprocessable').errors).toEqual([
      expect.objectContaining({ field: '/events/1/properties/n' }),
    ]);
    for (const v of ['0', '-0', '0.000e-999', '0e5']) {
      const res = await raw('/api/v1/usage-events', event(v));
      expect(res.status, `${v}: ${res.text}`).toBe(201);
    }
    for (const v of ['2.3e-308', '1.7e308']) {
      const other = `{"event_id":"n-${tag()}","user_id":"${s.user.id}","metric":"${s.metric.code}","timestamp":"2026-01-15T00:00:00Z","properties":{"n":1,"other":${v}}}`;
      const res = await raw('/api/v1/usage-events', other);
      expect(res.status, `${v}: ${res.text}`).toBe(201);
    }
    const largestExact = await raw('/api/v1/usage-events', event('9007199254740991'));
    expect(largestExact.status, largestExact.text).toBe(201);
    // A long digit run in a string is no number.
    const inString = await raw('/api/v1/usage-events', event('1, "note": "x:12345678901234567.5"'));
    expect(inString.status, inString.text).toBe(201);
  });
});
