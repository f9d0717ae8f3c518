// GET /api/v1/reports/usage-margin against an independent sum: customers on two plans send usage
// events with random costs (several metrics and dimension values, one customer whose cost dwarfs
// what it pays, one with no subscription), their months are invoiced (one invoice voided, one left
// a draft, the last month not invoiced), and every report equals what this file computes from what
// it sent, with BigInt: the costs it drew, the charges priced here, the invoices it issued.
import { beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import * as migration from '../../db/migrations/202612030007_usage_cost.js';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type Api, type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

// ---- exact money in ten-thousandths, independent of the code under test

const SCALE = 10_000n;
const fmt4 = (v: bigint) => {
  const abs = v < 0n ? -v : v;
  return `${v < 0n ? '-' : ''}${abs / SCALE}.${String(abs % SCALE).padStart(4, '0')}`;
};
const toCents = (v: bigint) => ((v + 50n) / 100n) * 100n; // half up, v ≥ 0
const percent = (margin: bigint, revenue: bigint) => {
  if (revenue === 0n) return null;
  const abs = margin < 0n ? -margin : margin;
  const exact = abs * 10_000n; // hundredths of a percent × revenue
  let h = exact / revenue;
  if ((exact % revenue) * 2n >= revenue) h += 1n; // half away from zero
  return `${margin < 0n && h > 0n ? '-' : ''}${h / 100n}.${String(h % 100n).padStart(2, '0')}`;
};

// A seeded generator, so that a run (CI's included) is reproducible and a failure can be replayed
// (the seed is printed); another MARGIN_SEED explores further.
const SEED = Number(process.env.MARGIN_SEED ?? 20261206);
let state = SEED;
const random = () => {
  state = (state + 0x6d2b79f5) | 0;
  let x = Math.imul(state ^ (state >>> 15), 1 | state);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
};
const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;

const tag = Math.random().toString(36).slice(2, 8);
const MONTHS = ['2026-01-01', '2026-02-01', '2026-03-01'];

interface Customer {
  name: string;
  user: Schemas['User'];
  plan: 'A' | 'B' | null;
  subscription: Schemas['Subscription'] | null;
}

/** What was sent: one counted (or not) event. */
interface Sent {
  user: string;
  metric: string;
  dimension: string | null;
  /** Tokens for the sum metric, 1 for the count metrics. */
  quantity: bigint;
  cost: bigint;
  period: string;
  counted: boolean;
}

/** One usage line this file expects an invoice to carry. */
interface Line {
  user: string;
  subscription: string;
  metric: string;
  dimension: string | null;
  period: string;
  amount: bigint;
}

const customers: Customer[] = [];
const sent: Sent[] = [];
let metrics: Record<'tokens' | 'calls' | 'images', Schemas['BillableMetric']>;
/** Periods whose invoice is issued (open) per subscription; the others are void or draft. */
const issued = new Map<string, Set<string>>();
const voided: string[] = [];

/** The usage lines of a subscription's period, priced here from the events sent. */
function expectedLines(c: Customer, period: string): Line[] {
  const of = (metric: string, dimension?: string | null) =>
    sent
      .filter(
        (e) =>
          e.counted &&
          e.user === c.user.id &&
          e.period === period &&
          e.metric === metric &&
          (dimension === undefined || e.dimension === dimension),
      )
      .reduce((sum, e) => sum + e.quantity, 0n);
  const line = (metric: string, dimension: string | null, amount: bigint): Line => ({
    user: c.user.id,
    subscription: c.subscription!.id,
    metric,
    dimension,
    period,
    amount,
  });
  const { tokens, calls, images } = metrics;
  if (c.plan === 'A') {
    const cheap = of(tokens.code, 'cheap') - 500n;
    return [
      line(tokens.code, 'advanced', toCents(of(tokens.code, 'advanced') * 20n)), // 0.002 each
      line(tokens.code, 'cheap', cheap > 0n ? ((cheap + 999n) / 1000n) * SCALE : 0n), // 1.00 a started 1,000
      line(calls.code, null, toCents(of(calls.code) * 100n)), // 0.01 each
    ];
  }
  return [
    line(tokens.code, null, toCents(of(tokens.code) * 10n)), // 0.001 each, whatever the model
    line(images.code, 'large', toCents(of(images.code, 'large') * 500n)), // 0.05 each
  ];
}

async function post(api: Api, path: string, body: unknown, status = 201) {
  const req = api.post(path);
  const res = await (body === undefined ? req : req.send(body as object));
  expect(res.status, res.text).toBe(status);
  return res.body as Record<string, unknown>;
}

beforeAll(async () => {
  console.log(`usage-margin.test.ts: MARGIN_SEED=${SEED}`);
  t = await ctx.newTenant();
  const metric = async (body: Record<string, unknown>) =>
    (await post(t.api, '/api/v1/billable-metrics', body)) as unknown as Schemas['BillableMetric'];
  metrics = {
    tokens: await metric({
      code: `tokens-${tag}`,
      name: 'Tokens',
      aggregation: 'sum',
      field: 'tokens',
      group_by: 'model',
    }),
    calls: await metric({ code: `calls-${tag}`, name: 'Calls', aggregation: 'count' }),
    images: await metric({ code: `images-${tag}`, name: 'Images', aggregation: 'count', group_by: 'size' }),
  };
  const plan = async (code: string, usage_charges: unknown[]) =>
    (await post(t.api, '/api/v1/plans', {
      code: `${code}-${tag}`,
      name: code,
      interval: 'month',
      price: { model: 'flat', amount: '10.00' },
      usage_charges,
    })) as unknown as Schemas['Plan'];
  const planA = await plan('a', [
    { metric: metrics.tokens.code, dimension_value: 'advanced', model: 'per_unit', amount: '0.002' },
    {
      metric: metrics.tokens.code,
      dimension_value: 'cheap',
      model: 'package',
      amount: '1.00',
      package_size: 1000,
      free_units: '500',
    },
    { metric: metrics.calls.code, model: 'per_unit', amount: '0.01' },
  ]);
  const planB = await plan('b', [
    { metric: metrics.tokens.code, model: 'per_unit', amount: '0.001' },
    { metric: metrics.images.code, dimension_value: 'large', model: 'per_unit', amount: '0.05' },
  ]);
  for (const [name, p] of [
    ['a1', 'A'],
    ['a2', 'A'],
    ['a3', 'A'],
    ['loser', 'A'],
    ['b1', 'B'],
    ['b2', 'B'],
    ['stranger', null],
  ] as const) {
    const user = await createUser(t, { name: `${name} ${tag}` });
    const subscription =
      p === null
        ? null
        : ((await post(t.api, '/api/v1/subscriptions', {
            user_id: user.id,
            status: 'active',
            plan_id: (p === 'A' ? planA : planB).id,
            start_date: '2026-01-01',
          })) as unknown as Schemas['Subscription']);
    customers.push({ name, user, plan: p, subscription });
  }

  // Events: every customer, every month, with random quantities, dimension values and costs (a
  // fifth without a cost). The loser's costs are huge; the stranger (no subscription) and calls
  // on plan B (which does not charge them) are recorded but not counted.
  const events: Array<Record<string, unknown>> = [];
  let n = 0;
  const cost = (c: Customer) =>
    c.name === 'loser' ? pick([9_999_999_999_9999n, 50_000_0000n]) : BigInt(between(0, 50_000));
  for (const c of customers) {
    for (const period of MONTHS) {
      const at = () => `${period.slice(0, 8)}${String(between(1, 28)).padStart(2, '0')}T12:00:00Z`;
      const add = (
        metric: string,
        properties: Record<string, unknown>,
        quantity: bigint,
        dimension: string | null,
      ) => {
        const withCost = random() < 0.8;
        const drawn = withCost ? cost(c) : 0n;
        events.push({
          event_id: `m-${tag}-${n++}`,
          user_id: c.user.id,
          metric,
          timestamp: at(),
          properties,
          ...(withCost ? { cost: fmt4(drawn) } : {}),
        });
        const counted = c.plan !== null && !(metric === metrics.calls.code && c.plan === 'B');
        sent.push({ user: c.user.id, metric, dimension, quantity, cost: drawn, period, counted });
      };
      for (let k = between(2, 6); k > 0; k--) {
        const tokens = between(1, 3000);
        const model = pick(['advanced', 'cheap', 'standard', null]);
        add(metrics.tokens.code, model === null ? { tokens } : { tokens, model }, BigInt(tokens), model);
      }
      for (let k = between(1, 4); k > 0; k--) add(metrics.calls.code, {}, 1n, null);
      if (c.plan === 'B') {
        for (let k = between(1, 4); k > 0; k--) {
          const size = pick(['large', 'small']);
          add(metrics.images.code, { size }, 1n, size);
        }
      }
    }
  }
  // Started 2026-01-01 in real time, two or more periods back: no renewal bills January's or
  // February's usage, so it is closed at creation (and refused). This file bills those months by
  // issuing their invoices by hand, as a subscription made before that rule could: reopened here.
  await sql`update subscriptions set usage_invoiced_until = null
    where id = any(${customers.flatMap((c) => (c.subscription ? [c.subscription.id] : []))}::uuid[])`.execute(
    ctx.db,
  );
  const batch = await post(t.api, '/api/v1/usage-events/batch', { events }, 200);
  expect(batch.created).toBe(events.length);

  // February's invoices bill January's usage, March's February's: all issued, but a2's March
  // invoice is voided and b2's left a draft. March's usage is not invoiced.
  for (const c of customers.filter((x) => x.subscription)) {
    const id = c.subscription!.id;
    issued.set(id, new Set());
    for (const [date, usagePeriod] of [
      ['2026-02-10', '2026-01-01'],
      ['2026-03-10', '2026-02-01'],
    ] as const) {
      const invoice = await post(t.api, `/api/v1/subscriptions/${id}/invoices`, { date });
      if (c.name === 'b2' && usagePeriod === '2026-02-01') continue; // a draft
      await post(t.api, `/api/v1/invoices/${invoice.id as string}/finalize`, undefined, 200);
      if (c.name === 'a2' && usagePeriod === '2026-02-01') {
        await post(t.api, `/api/v1/invoices/${invoice.id as string}/void`, undefined, 200);
        voided.push(invoice.id as string);
        continue;
      }
      issued.get(id)!.add(usagePeriod);
    }
  }
});

type Group = Schemas['UsageMarginReport']['group_by'];

interface Sums {
  events: bigint;
  revenue: bigint;
  cost: bigint;
  unbilled: bigint;
}

/** The report this file expects, from what it sent and issued. */
function expectedReport(from: string, to: string, groupBy: Group): Schemas['UsageMarginReport'] {
  const inRange = (period: string) => period >= from && period < to;
  const closed = (period: string) => period < '2026-03-01'; // every subscription invoiced Jan and Feb
  const groups = new Map<string, Sums & { user: string; metric: string; dimension: string | null }>();
  const users = new Map<string, Sums>();
  const add = (user: string, metric: string, dimension: string | null, s: Partial<Sums>) => {
    const key = groupBy === 'user' ? user : groupBy === 'metric' ? metric : `${metric}|${dimension ?? ''}`;
    const zero = { events: 0n, revenue: 0n, cost: 0n, unbilled: 0n };
    const g = groups.get(key) ?? { ...zero, user, metric, dimension };
    const u = users.get(user) ?? { ...zero };
    for (const target of [g, u])
      for (const k of ['events', 'revenue', 'cost', 'unbilled'] as const) target[k] += s[k] ?? 0n;
    groups.set(key, g);
    users.set(user, u);
  };
  for (const e of sent.filter((x) => x.counted && inRange(x.period))) {
    add(e.user, e.metric, e.dimension, {
      events: 1n,
      ...(closed(e.period) ? { cost: e.cost } : { unbilled: e.cost }),
    });
  }
  for (const c of customers.filter((x) => x.subscription)) {
    for (const period of issued.get(c.subscription!.id)!) {
      if (!inRange(period)) continue;
      for (const line of expectedLines(c, period))
        add(line.user, line.metric, line.dimension, { revenue: line.amount });
    }
  }
  const figures = (s: Sums) => ({
    revenue: fmt4(s.revenue),
    cost: fmt4(s.cost),
    margin: fmt4(s.revenue - s.cost),
    margin_percent: percent(s.revenue - s.cost, s.revenue),
    unbilled_cost: fmt4(s.unbilled),
  });
  const byCode = new Map(Object.values(metrics).map((m) => [m.code, m]));
  const userOf = (id: string) => {
    const { user } = customers.find((c) => c.user.id === id)!;
    return { id, name: user.name, email: user.email };
  };
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const sign = (v: bigint) => (v < 0n ? -1 : v > 0n ? 1 : 0);
  const rows = [...groups.values()]
    .filter((g) => g.events !== 0n || g.revenue !== 0n || g.cost !== 0n || g.unbilled !== 0n)
    .sort((a, b) =>
      groupBy === 'user'
        ? sign(a.revenue - a.cost - (b.revenue - b.cost)) || cmp(a.user, b.user)
        : cmp(a.metric, b.metric) ||
          (a.dimension === b.dimension
            ? 0
            : a.dimension === null
              ? -1
              : b.dimension === null
                ? 1
                : cmp(a.dimension, b.dimension)),
    )
    .map((g) => {
      const m = byCode.get(g.metric)!;
      const metric = { id: m.id, code: m.code, name: m.name };
      if (groupBy === 'user') return { user: userOf(g.user), ...figures(g) };
      if (groupBy === 'metric') return { metric, ...figures(g) };
      return { metric, dimension_value: g.dimension, ...figures(g) };
    });
  const losers = [...users.entries()]
    .filter(([, s]) => s.cost > s.revenue)
    .sort(([ia, a], [ib, b]) => sign(a.revenue - a.cost - (b.revenue - b.cost)) || cmp(ia, ib));
  const total = [...users.values()].reduce(
    (sum, s) => ({
      events: sum.events + s.events,
      revenue: sum.revenue + s.revenue,
      cost: sum.cost + s.cost,
      unbilled: sum.unbilled + s.unbilled,
    }),
    { events: 0n, revenue: 0n, cost: 0n, unbilled: 0n },
  );
  return {
    from,
    to,
    group_by: groupBy,
    totals: figures(total),
    rows,
    loss_leaders: losers.slice(0, 100).map(([id, s]) => ({ user: userOf(id), ...figures(s) })),
    loss_leader_count: losers.length,
    next_cursor: null,
  };
}

const report = async (query: Record<string, string>, api: Api = t.api) => {
  const res = await api.get('/api/v1/reports/usage-margin').query(query);
  expect(res.status, res.text).toBe(200);
  return res.body as Schemas['UsageMarginReport'];
};

describe('GET /api/v1/reports/usage-margin', () => {
  it('bills what this file priced: the invoices carry the expected usage lines', async () => {
    for (const c of customers.filter((x) => x.subscription)) {
      const list = (await t.api.get('/api/v1/invoices').query({ subscription_id: c.subscription!.id }))
        .body as Schemas['InvoiceList'];
      for (const period of ['2026-01-01', '2026-02-01']) {
        const invoice = list.data.find((i) =>
          i.lines.some((l) => l.type === 'usage' && l.period_start === period),
        )!;
        const lines = invoice.lines
          .filter((l) => l.type === 'usage')
          .map((l) => [l.usage!.metric, l.usage!.dimension_value, l.amount]);
        expect(lines, `${c.name} ${period}`).toEqual(
          expectedLines(c, period).map((l) => [l.metric, l.dimension, fmt4(l.amount).slice(0, -2)]),
        );
      }
    }
  });

  it.each([
    ['2026-01-01', '2026-04-01'],
    ['2026-02-01', '2026-03-01'],
    ['2026-01-15', '2026-03-01'],
    ['2026-03-01', '2026-04-01'],
  ])(
    'equals the independent sum from %s to %s, by metric, by dimension and by customer',
    async (from, to) => {
      for (const group_by of ['metric', 'dimension', 'user'] as const) {
        expect(await report({ from, to, group_by }), group_by).toEqual(expectedReport(from, to, group_by));
      }
    },
  );

  it('groups by metric by default; dimension rows add up to their metric; customer rows to the totals', async () => {
    const range = { from: '2026-01-01', to: '2026-04-01' };
    const byMetric = await report(range);
    expect(byMetric.group_by).toBe('metric');
    expect(byMetric.rows.map((r) => ('metric' in r ? r.metric.code : null))).toEqual(
      [metrics.calls.code, metrics.images.code, metrics.tokens.code].sort(),
    );
    const byDimension = await report({ ...range, group_by: 'dimension' });
    for (const row of byMetric.rows) {
      if (!('metric' in row)) throw new Error('a metric row');
      const parts = byDimension.rows.filter((r) => 'metric' in r && r.metric.id === row.metric.id);
      const sum = (field: 'revenue' | 'cost' | 'unbilled_cost') =>
        fmt4(parts.reduce((s, r) => s + BigInt(r[field].replace('.', '')), 0n));
      expect([sum('revenue'), sum('cost'), sum('unbilled_cost')]).toEqual([
        row.revenue,
        row.cost,
        row.unbilled_cost,
      ]);
    }
    const tokens = byDimension.rows.filter((r) => 'metric' in r && r.metric.id === metrics.tokens.id);
    expect(tokens.map((r) => ('dimension_value' in r ? r.dimension_value : 'x'))).toEqual([
      null,
      'advanced',
      'cheap',
      'standard',
    ]);
    const byUser = await report({ ...range, group_by: 'user' });
    expect(byUser.totals).toEqual(byMetric.totals);
    expect(byUser.rows.map((r) => ('user' in r ? r.user.name : null))).not.toContain(`stranger ${tag}`);
  });

  it('lists the loser first among the loss leaders, whatever group_by is', async () => {
    const loser = customers.find((c) => c.name === 'loser')!;
    for (const group_by of ['metric', 'dimension', 'user']) {
      const body = await report({ from: '2026-01-01', to: '2026-04-01', group_by });
      expect(body.loss_leaders[0]!.user).toEqual({
        id: loser.user.id,
        name: loser.user.name,
        email: loser.user.email,
      });
      expect(body.loss_leaders[0]!.margin.startsWith('-')).toBe(true);
      expect(body.loss_leader_count).toBe(body.loss_leaders.length);
    }
  });

  it('counts a voided invoice and a draft as no revenue, and a month not invoiced as unbilled cost', async () => {
    const feb = await report({ from: '2026-02-01', to: '2026-03-01', group_by: 'user' });
    const a2 = customers.find((c) => c.name === 'a2')!;
    const row = feb.rows.find((r) => 'user' in r && r.user.id === a2.user.id)!;
    expect(row.revenue).toBe('0.0000');
    expect(row.margin_percent).toBeNull();
    expect(voided).toHaveLength(1);
    const march = await report({ from: '2026-03-01', to: '2026-04-01' });
    expect(march.totals).toMatchObject({
      revenue: '0.0000',
      cost: '0.0000',
      margin: '0.0000',
      margin_percent: null,
    });
    expect(march.totals.unbilled_cost).not.toBe('0.0000');
    expect(march.loss_leaders).toEqual([]);
  });

  it("answers an empty report for a range without usage, and never another tenant's", async () => {
    const empty = {
      revenue: '0.0000',
      cost: '0.0000',
      margin: '0.0000',
      margin_percent: null,
      unbilled_cost: '0.0000',
    };
    expect(await report({ from: '2025-01-01', to: '2025-02-01' })).toEqual({
      from: '2025-01-01',
      to: '2025-02-01',
      group_by: 'metric',
      totals: empty,
      rows: [],
      loss_leaders: [],
      loss_leader_count: 0,
      next_cursor: null,
    });
    const other = await report({ from: '2026-01-01', to: '2026-04-01', group_by: 'user' }, ctx.api);
    expect(other).toMatchObject({ totals: empty, rows: [], loss_leaders: [] });
  });

  it('refuses a bad range or group_by with 400 problem+json', async () => {
    const get = (query: Record<string, string>) => t.api.get('/api/v1/reports/usage-margin').query(query);
    expectProblem(await get({ to: '2026-02-01' }), 400, 'validation-error');
    expectProblem(await get({ from: '2026-02-30', to: '2026-03-01' }), 400, 'validation-error');
    expectProblem(
      await get({ from: '2026-01-01', to: '2026-02-01', group_by: 'month' }),
      400,
      'validation-error',
    );
    for (const to of ['2026-01-01', '2025-12-31']) {
      const problem = expectProblem(await get({ from: '2026-01-01', to }), 400, 'validation-error');
      expect(problem.errors).toEqual([{ location: 'query', field: 'to', message: 'must be after from' }]);
    }
    const long = expectProblem(await get({ from: '2026-01-01', to: '2027-01-03' }), 400, 'validation-error');
    expect(long.errors).toEqual([
      { location: 'query', field: 'to', message: 'must be at most 366 days after from' },
    ]);
    await report({ from: '2026-01-01', to: '2027-01-02' }); // 366 days
  });

  it("pages its rows in their order, each page with the whole range's totals and loss leaders", async () => {
    const range = { from: '2026-01-01', to: '2026-04-01' };
    for (const group_by of ['metric', 'dimension', 'user'] as const) {
      const whole = expectedReport(range.from, range.to, group_by);
      expect(whole.rows.length, group_by).toBeGreaterThan(2);
      for (const limit of [1, 2, whole.rows.length - 1]) {
        const rows: Schemas['UsageMarginReport']['rows'] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: Schemas['UsageMarginReport'] = await report({
            ...range,
            group_by,
            limit: String(limit),
            ...(cursor ? { cursor } : {}),
          });
          expect(page.rows.length).toBeLessThanOrEqual(limit);
          const { rows: pageRows, next_cursor, ...rest } = page;
          const { rows: _all, next_cursor: _none, ...wholeRest } = whole;
          expect(rest).toEqual(wholeRest);
          rows.push(...pageRows);
          cursor = next_cursor;
          pages++;
        } while (cursor !== null);
        expect(rows, `${group_by} by ${limit}`).toEqual(whole.rows);
        expect(pages).toBe(Math.ceil(whole.rows.length / limit));
      }
    }
  });

  it('refuses a cursor of another grouping, of another tenant or edited, and a limit out of range', async () => {
    const range = { from: '2026-01-01', to: '2026-04-01' };
    const { next_cursor } = await report({ ...range, group_by: 'user', limit: '1' });
    expect(next_cursor).toEqual(expect.any(String));
    const get = (query: Record<string, string>, api: Api = t.api) =>
      api.get('/api/v1/reports/usage-margin').query({ ...range, ...query });
    expectProblem(await get({ group_by: 'metric', cursor: next_cursor! }), 400, 'invalid-cursor');
    expectProblem(await get({ group_by: 'user', cursor: next_cursor! }, ctx.api), 400, 'invalid-cursor');
    const edited = Buffer.from(
      Buffer.from(next_cursor!, 'base64url')
        .toString('utf8')
        .replace(/"-?[\d.]+"/, '"-99999.0000"'),
    ).toString('base64url');
    expect(edited).not.toBe(next_cursor);
    expectProblem(await get({ group_by: 'user', cursor: edited }), 400, 'invalid-cursor');
    const list = await t.api.get('/api/v1/users').query({ limit: 1 });
    expectProblem(
      await get({ group_by: 'user', cursor: (list.body as { next_cursor: string }).next_cursor }),
      400,
      'invalid-cursor',
    );
    for (const limit of ['0', '1001', 'x']) expectProblem(await get({ limit }), 400, 'validation-error');
  });

  it('needs the analytics scope: a read-only key gets 403, an analyst key the report', async () => {
    const keyOf = async (role: string) =>
      ctx.withKey(((await post(t.api, '/api/v1/api-keys', { name: role, role })) as { key: string }).key);
    expectProblem(
      await (
        await keyOf('viewer')
      )
        .get('/api/v1/reports/usage-margin')
        .query({ from: '2026-01-01', to: '2026-02-01' }),
      403,
      'forbidden',
    );
    const analyst = await report({ from: '2026-01-01', to: '2026-04-01' }, await keyOf('analyst'));
    expect(analyst).toEqual(expectedReport('2026-01-01', '2026-04-01', 'metric'));
  });

  it("keeps each total's cost as its events add up, and the migration's backfill finds the same", async () => {
    const costs = sql<{ key: string; cost: string }>`
      select subscription_id || '|' || billable_metric_id || '|' || period_start || '|' || coalesce(dimension, '*') as key,
        cost::numeric(30, 4)::text as cost
      from usage_totals where tenant_id = ${t.id} order by 1`;
    const before = (await costs.execute(ctx.db)).rows;
    const expected = new Map<string, bigint>();
    const subOf = new Map(customers.map((c) => [c.user.id, c.subscription?.id]));
    for (const e of sent.filter((x) => x.counted)) {
      const metricId = Object.values(metrics).find((m) => m.code === e.metric)!.id;
      for (const dim of e.dimension === null ? ['*'] : ['*', e.dimension]) {
        const key = `${subOf.get(e.user)}|${metricId}|${e.period}|${dim}`;
        expected.set(key, (expected.get(key) ?? 0n) + e.cost);
      }
    }
    expect(new Map(before.map((r) => [r.key, r.cost]))).toEqual(
      new Map([...expected].map(([k, v]) => [k, fmt4(v)])),
    );
    const reported = await report({ from: '2026-01-01', to: '2026-04-01', group_by: 'dimension' });
    // The column again, filled from the events by the migration, as on a deployment upgrading.
    await migration.down(ctx.db);
    await migration.up(ctx.db);
    expect((await costs.execute(ctx.db)).rows).toEqual(before);
    expect(await report({ from: '2026-01-01', to: '2026-04-01', group_by: 'dimension' })).toEqual(reported);
  });

  it('counts captured credits ÷ rate exactly, half up to 4 decimals, at every size', async () => {
    // Each capture alone in its month, on a tenant of its own: the month's totals are that
    // capture's revenue. Expected with BigInt, in millionths: half up of c ÷ r to 4 decimals.
    const millionths = (v: string) => {
      const [whole, fraction = ''] = v.split('.');
      return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
    };
    const exact = (c: string, r: string) => {
      const [a, b] = [millionths(c), millionths(r)];
      return fmt4((a * 2n * SCALE + b) / (2n * b));
    };
    const cases: Array<[credits: string, rate: string]> = [
      // c ÷ r rounded at 6 decimals first, then at 4: 10000000000000000.0000496… gave .0001.
      ['30000000000000000.000149', '3'],
      ['795161142491552.430100', '697.897731'], // 1139366281291.93964… gave .9397
      // The largest credits at the smallest rates (24 significant digits, exact).
      ['999999999999999999.999999', '0.000001'],
      ['999999999999999999.999999', '0.000007'],
      ['999999999999999999.999999', '0.0001'],
      ['100000000000000000.000001', '7'],
      ['0.000001', '0.000003'],
      ['0.000050', '1'],
    ];
    const own = await ctx.newTenant();
    const user = await createUser(own);
    for (const [i, [credits, rate]] of cases.entries()) {
      const month = `2031-${String(i + 1).padStart(2, '0')}`;
      const clock = await post(own.api, '/api/v1/test-clocks', {
        name: `margin ${i}`,
        frozen_time: `${month}-10T12:00:00Z`,
      });
      const w = await post(own.api, '/api/v1/wallets', {
        user_id: user.id,
        name: `w${i}`,
        rate,
        test_clock_id: clock.id,
      });
      await post(own.api, `/api/v1/wallets/${w.id as string}/grants`, { credits });
      const h = await post(own.api, `/api/v1/wallets/${w.id as string}/holds`, { credits, expires_in: 60 });
      await post(own.api, `/api/v1/holds/${h.id as string}/capture`, { credits }, 200);
      const next = `2031-${String(i + 2).padStart(2, '0')}`;
      const got = await report({ from: `${month}-01`, to: `${next}-01`, group_by: 'user' }, own.api);
      expect([credits, rate, got.totals.revenue]).toEqual([credits, rate, exact(credits, rate)]);
      expect(got.rows).toEqual([expect.objectContaining({ revenue: exact(credits, rate) })]);
    }
  });
});

describe("a trial's usage (free: no invoice bills it)", () => {
  it('costs as unbilled while the trial runs, then as cost, whether it ends on its date or is canceled', async () => {
    const own = await ctx.newTenant();
    const made = await own.api
      .post('/api/v1/billable-metrics')
      .send({ code: 'calls', name: 'Calls', aggregation: 'count' });
    expect(made.status, made.text).toBe(201);
    const plan = await own.api.post('/api/v1/plans').send({
      code: 'trial-metered',
      name: 'Metered',
      interval: 'month',
      price: { model: 'flat', amount: '10.00' },
      usage_charges: [{ metric: 'calls', model: 'per_unit', amount: '1.00' }],
    });
    expect(plan.status, plan.text).toBe(201);
    const clock = (
      await own.api.post('/api/v1/test-clocks').send({ name: 'trials', frozen_time: '2026-03-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const trial = async (cost: string) => {
      const user = await createUser(own);
      const sub = await own.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'trialing',
        trial_end: '2026-03-15',
        plan_id: (plan.body as Schemas['Plan']).id,
        start_date: '2026-03-01',
        test_clock_id: clock.id,
      });
      expect(sub.status, sub.text).toBe(201);
      const event = await own.api
        .post('/api/v1/usage-events')
        .send({ event_id: `e-${user.id}`, user_id: user.id, metric: 'calls', cost });
      expect(event.status, event.text).toBe(201);
      return sub.body as Schemas['Subscription'];
    };
    const ends = await trial('7.7700');
    const canceled = await trial('2.0000');
    const march = async () =>
      (await report({ from: '2026-03-01', to: '2026-04-01', group_by: 'user' }, own.api)).rows.map((r) => [
        'user' in r ? r.user.id : null,
        r.revenue,
        r.cost,
        r.unbilled_cost,
      ]);
    const advance = async (to: string) => {
      const res = await own.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
      expect(res.status, res.text).toBe(202);
      await performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: own.id, clockId: clock.id },
      );
    };
    await advance('2026-03-05T00:00:00Z');
    expect(await march()).toEqual(
      expect.arrayContaining([
        [ends.user_id, '0.0000', '0.0000', '7.7700'],
        [canceled.user_id, '0.0000', '0.0000', '2.0000'],
      ]),
    );
    // Canceled during its trial: over, its cost is a cost with no revenue, for good.
    expect(
      (await own.api.post(`/api/v1/subscriptions/${canceled.id}/cancel`).send({ at: 'now' })).status,
    ).toBe(200);
    expect(await march()).toContainEqual([canceled.user_id, '0.0000', '2.0000', '0.0000']);
    // Ended on its date: a cost from then on, not only once a later period's usage is invoiced.
    await advance('2026-03-16T00:00:00Z');
    expect(await march()).toEqual(
      expect.arrayContaining([
        [ends.user_id, '0.0000', '7.7700', '0.0000'],
        [canceled.user_id, '0.0000', '2.0000', '0.0000'],
      ]),
    );
    await advance('2026-04-16T00:00:00Z');
    expect(await march()).toContainEqual([ends.user_id, '0.0000', '7.7700', '0.0000']);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
