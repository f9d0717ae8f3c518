// GET /reports/usage-margin at scale (issue 23), in a scratch database of its own:
//   SUBSCRIPTIONS (default 10,000) monthly subscriptions with a year of usage history: the usage
//   totals of 13 periods (the current one not invoiced; one all-events row and three dimension rows
//   each, 520,000 rows at the default) and 12 issued invoices each carrying the usage lines of the
//   period before (120,000 invoices), written in bulk by SQL. The report reads the totals and the
//   invoices, never the events, so no events are written: their number changes nothing here.
// Then the report over HTTP (production mode, one process), one request at a time, for the last
// month and for the last 12 months, grouped by metric, dimension and customer.
// BENCH_ONLY=usage-margin make bench (BENCH_MARGIN_SUBSCRIPTIONS, BENCH_MARGIN_REQUESTS).
import os from 'node:os';
import { sql } from 'kysely';
import { anniversary } from '../src/billing/periods.js';
import { dayOf } from '../src/billing/subscription-time.js';
import { createDb, type Db } from '../src/database/connection.js';
import { migrateToLatest } from '../src/database/migrator.js';
import { issueApiKey } from '../src/services/api-keys.js';
import { createBillableMetric } from '../src/services/billable-metrics.js';
import { inTenant } from '../src/services/context.js';
import { createPlan } from '../src/services/plans.js';
import { createTenant } from '../src/services/tenants.js';

type StartServer = (
  script: string,
  env: Record<string, string>,
) => Promise<{ base: string; stop(): Promise<void> }>;

const at = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

export async function benchUsageMargin(
  serverUrl: string,
  startServer: StartServer,
  options: { subscriptions: number; requests: number },
): Promise<string> {
  const name = `bench_margin_${process.pid}`;
  const admin = createDb(serverUrl, { poolSize: 1 });
  await sql.raw(`create database ${name}`).execute(admin);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const owner = createDb(url.toString(), { poolSize: 2 });
  try {
    await migrateToLatest(owner);
    const started = performance.now();
    const setup = await prepareUsageMargin(owner, options.subscriptions);
    const loadSeconds = (performance.now() - started) / 1000;
    const server = await startServer('src/main.ts', {
      DATABASE_URL: url.toString(),
      NODE_ENV: 'production',
      WORKERS: '1',
      JOBS: 'off',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    const lines: string[] = [];
    try {
      const lastMonth = { from: anniversary(setup.current, 'month', 1, -1), to: setup.current };
      const lastYear = { from: anniversary(setup.current, 'month', 1, -12), to: setup.current };
      for (const [label, range] of [
        ['the last month', lastMonth],
        ['the last 12 months', lastYear],
      ] as const) {
        for (const groupBy of ['metric', 'dimension', 'user']) {
          const query = `from=${range.from}&to=${range.to}&group_by=${groupBy}`;
          const times = await timeReport(server.base, setup.key, query, options.requests);
          console.log(`usage-margin: ${label}, group_by=${groupBy}: p50 ${at(times, 50).toFixed(1)} ms`);
          lines.push(
            `| ${label} (${range.from} to ${range.to}), \`group_by=${groupBy}\` | p50 ${at(times, 50).toFixed(1)} ms, p95 ${at(times, 95).toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms |`,
          );
        }
        // Every customer's row, page after page (the first page alone is the row above).
        const paged = await timePages(
          server.base,
          setup.key,
          `from=${range.from}&to=${range.to}&group_by=user`,
          3,
        );
        console.log(
          `usage-margin: ${label}, group_by=user, every page: p50 ${at(paged.times, 50).toFixed(1)} ms`,
        );
        lines.push(
          `| ${label}, \`group_by=user\`, every row: ${paged.pages} pages of up to 1,000 (${paged.rows.toLocaleString('en')} rows, ${(paged.bytes / 1e6).toFixed(2)} MB in all; the first page ${(paged.firstBytes / 1e6).toFixed(2)} MB), 3 times | all pages p50 ${at(paged.times, 50).toFixed(1)} ms, max ${paged.times.at(-1)!.toFixed(1)} ms |`,
        );
      }
    } finally {
      await server.stop();
    }
    const { rows } = await sql<{ totals: string; invoices: string }>`
      select (select count(*) from usage_totals) as totals, (select count(*) from invoices) as invoices`.execute(
      owner,
    );
    return [
      `Usage margin report, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (\`BENCH_ONLY=usage-margin make bench\`): ${options.subscriptions.toLocaleString('en')} monthly subscriptions with a year of history, ${Number(rows[0]!.totals).toLocaleString('en')} usage totals rows and ${Number(rows[0]!.invoices).toLocaleString('en')} issued invoices with usage lines (bulk load ${loadSeconds.toFixed(1)} s); GET /reports/usage-margin over HTTP, one request at a time, ${options.requests} of each`,
      '',
      '| report | latency |',
      '| --- | --- |',
      ...lines,
    ].join('\n');
  } finally {
    await owner.destroy();
    await sql.raw(`drop database if exists ${name} with (force)`).execute(admin);
    await admin.destroy();
  }
}

async function timeReport(base: string, key: string, query: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count + 2; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}/api/v1/reports/usage-margin?${query}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`GET usage-margin: ${res.status}`);
    if (i >= 2) times.push(performance.now() - t0); // two warm-up requests
  }
  return times.sort((a, b) => a - b);
}

/** Reads every page of a report `count` times: each read's total time, and what the pages held. */
async function timePages(base: string, key: string, query: string, count: number) {
  const times: number[] = [];
  let pages = 0;
  let rows = 0;
  let bytes = 0;
  let firstBytes = 0;
  for (let i = 0; i < count; i++) {
    [pages, rows, bytes] = [0, 0, 0];
    const t0 = performance.now();
    let cursor: string | null = null;
    do {
      const res = await fetch(
        `${base}/api/v1/reports/usage-margin?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { headers: { authorization: `Bearer ${key}` } },
      );
      const text = await res.text();
      if (!res.ok) throw new Error(`GET usage-margin: ${res.status}`);
      const page = JSON.parse(text) as { rows: unknown[]; next_cursor: string | null };
      if (pages === 0) firstBytes = text.length;
      pages += 1;
      rows += page.rows.length;
      bytes += text.length;
      cursor = page.next_cursor;
    } while (cursor !== null);
    times.push(performance.now() - t0);
  }
  return { times: times.sort((a, b) => a - b), pages, rows, bytes, firstBytes };
}

/** The tenant, its catalog, and a year of usage totals and usage invoices, in bulk. */
export async function prepareUsageMargin(owner: Db, n: number): Promise<{ key: string; current: string }> {
  const ctx = { db: owner };
  const { tenant } = await createTenant(ctx, 'usage margin bench');
  const system = { tenantId: tenant.id, keyId: 'system' };
  const { key } = await inTenant(ctx, system, (tx) =>
    issueApiKey(tx, { name: 'bench', role: 'admin', expiresAt: null }),
  );
  const metric = await createBillableMetric(ctx, system, {
    code: 'tokens',
    name: 'AI tokens',
    aggregation: 'sum',
    field: 'tokens',
    group_by: 'model',
  });
  if (metric.kind !== 'created') throw new Error(`metric: ${metric.kind}`);
  const models = ['cheap', 'standard', 'advanced'];
  const plan = await createPlan(ctx, system, {
    code: 'ai',
    name: 'AI',
    interval: 'month',
    price: { model: 'flat', amount: '20.00' },
    usage_charges: models.map((model) => ({
      metric: 'tokens',
      dimension_value: model,
      model: 'per_unit' as const,
      amount: '0.001',
    })),
  });
  if (plan.kind !== 'created') throw new Error(`plan: ${plan.kind}`);
  // The current period starts on the first of this month; 12 periods before it are invoiced.
  const today = dayOf(new Date());
  const current = `${today.slice(0, 7)}-01`;
  const first = anniversary(current, 'month', 1, -12);
  const metricId = metric.metric.id;
  await owner.transaction().execute(async (trx) => {
    await sql`select set_config('app.tenant_id', ${tenant.id}, true)`.execute(trx);
    await sql`insert into users (name, email)
      select 'Customer ' || i, 'customer-' || i || '@example.com' from generate_series(1, ${n}::int) i`.execute(
      trx,
    );
    await sql`insert into subscriptions (user_id, status, plan_cost, start_date, plan_id, plan_version_id,
        billed_until, usage_invoiced_until)
      select u.id, 'active', 20, ${first}, ${plan.plan.plan.id}, ${plan.plan.price.id},
        ${anniversary(current, 'month', 1, 1)}, ${current}
      from users u where u.tenant_id = ${tenant.id}`.execute(trx);
    // 13 periods × (the all-events row + one per model), with costs; the all-events row is the sum.
    await sql`
      with periods as (select (${first}::date + k * interval '1 month')::date as p from generate_series(0, 12) k),
      dims as (
        select s.id as subscription_id, p.p as period_start, d.model, 1 + (hashtext(s.id::text || p.p || d.model) & 1023) as events
        from subscriptions s cross join periods p cross join unnest(${models}::text[]) d(model)
        where s.tenant_id = ${tenant.id})
      insert into usage_totals (tenant_id, subscription_id, billable_metric_id, period_start, dimension, events, total, cost)
      select ${tenant.id}, subscription_id, ${metricId}, period_start, model, sum(events), sum(events * 100),
        sum(events * 0.0371)
      from dims group by grouping sets ((subscription_id, period_start, model), (subscription_id, period_start))
      -- In time order, as recording events creates them: a period's rows lie together.
      order by period_start, subscription_id, model nulls first`.execute(trx);
    // An issued invoice per subscription and invoiced period after the first, with the plan's
    // price and the usage lines of the period before, priced per unit at 0.001.
    await sql`
      insert into invoices (subscription_id, user_id, status, number, period_start, period_end, invoice_date,
        lines, subtotal, taxes, tax_total, total, finalized_at)
      select s.id, s.user_id, 'open', row_number() over (order by p.p, s.id), p.p, (p.p + interval '1 month')::date, p.p,
        jsonb_build_array(jsonb_build_object('type', 'subscription', 'description', 'AI', 'amount', '20.00',
          'quantity', 1, 'breakdown', '[]'::jsonb, 'period_start', p.p, 'period_end', (p.p + interval '1 month')::date,
          'usage', null)) || u.lines,
        20 + u.amount, '[]', 0, 20 + u.amount, p.p
      from subscriptions s
      cross join lateral (select (${first}::date + k * interval '1 month')::date as p from generate_series(1, 12) k) p
      cross join lateral (
        select jsonb_agg(jsonb_build_object('type', 'usage', 'description', 'tokens usage', 'amount', round(t.total * 0.001, 2)::text,
          'quantity', 1, 'breakdown', '[]'::jsonb, 'period_start', t.period_start,
          'period_end', p.p, 'usage', jsonb_build_object('metric', 'tokens', 'billable_metric_id', t.billable_metric_id,
            'dimension_value', t.dimension, 'quantity', t.total::text, 'billable_quantity', t.total::text,
            'breakdown', '[]'::jsonb)) order by t.dimension) as lines,
          sum(round(t.total * 0.001, 2)) as amount
        from usage_totals t
        where t.tenant_id = ${tenant.id} and t.subscription_id = s.id
          and t.period_start = (p.p - interval '1 month')::date and t.dimension is not null) u
      where s.tenant_id = ${tenant.id}
      -- In time order, as the renewals issue them.
      order by p.p, s.id`.execute(trx);
  });
  await sql`analyze`.execute(owner);
  return { key, current };
}
