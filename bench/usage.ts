// Usage-based billing at scale (issue 22), in a scratch database of its own (usage events and
// issued invoices can never be deleted, so no scratch tenant could be cleaned away):
//   1. SUBSCRIPTIONS (default 10,000) monthly subscriptions whose period ends today, and EVENTS
//      (default 10,000,000) usage events in that period with their totals, written in bulk by
//      SQL (with progress);
//   2. batch ingestion: 4 clients sending batches of 1,000 new events for BENCH_SECONDS (60);
//   3. single-event ingestion: 32 clients sending one event per request for 20 s;
//   4. GET /subscriptions/{id}/usage of that period, one request at a time, 500 of them;
//   5. the worker's renewals, all due now: every subscription's next invoice, with the period's
//      usage lines (as `make start`'s worker does them: a few at once).
// BENCH_ONLY=usage make bench (BENCH_USAGE_EVENTS, BENCH_USAGE_SUBSCRIPTIONS, BENCH_SECONDS).
import os from 'node:os';
import { sql } from 'kysely';
import { startProgress } from '../src/cli/progress.js';
import { KeptAliveClient } from './http-client.js';
import { createDb, type Db } from '../src/database/connection.js';
import { migrateToLatest } from '../src/database/migrator.js';
import { simulatedGateway } from '../src/billing/gateway.js';
import { anniversary } from '../src/billing/periods.js';
import { dayOf } from '../src/billing/subscription-time.js';
import { issueApiKey } from '../src/services/api-keys.js';
import { createBillableMetric } from '../src/services/billable-metrics.js';
import { inTenant } from '../src/services/context.js';
import { performDueWork } from '../src/services/due-work.js';
import { createPlan } from '../src/services/plans.js';
import { createTenant } from '../src/services/tenants.js';

type StartServer = (
  script: string,
  env: Record<string, string>,
) => Promise<{ base: string; stop(): Promise<void> }>;

const CHUNK = 500_000;
const MODELS = ['cheap', 'standard', 'advanced'];

/** Percentile of sorted numbers. */
const at = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

export async function benchUsage(
  serverUrl: string,
  startServer: StartServer,
  options: { subscriptions: number; events: number; seconds: number },
): Promise<string> {
  const name = `bench_usage_${process.pid}`;
  const admin = createDb(serverUrl, { poolSize: 1 });
  await sql.raw(`create database ${name}`).execute(admin);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const owner = createDb(url.toString(), { poolSize: 4 });
  const app = createDb(url.toString(), { poolSize: 8, asAppRole: true });
  try {
    await migrateToLatest(owner);
    const setup = await prepare(owner, options);
    const auth = { authorization: `Bearer ${setup.key}`, 'content-type': 'application/json' };
    const server = await startServer('src/main.ts', {
      DATABASE_URL: url.toString(),
      NODE_ENV: 'production',
      WORKERS: '1',
      JOBS: 'off',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    let batch: Throughput;
    let single: Throughput;
    let reads: number[];
    try {
      console.log(`usage: batch ingestion for ${options.seconds} s`);
      batch = await ingest(server.base, auth, setup, { clients: 4, size: 1000, seconds: options.seconds });
      console.log('usage: single-event ingestion for 20 s');
      single = await ingest(server.base, auth, setup, { clients: 32, size: 1, seconds: 20 });
      console.log('usage: GET /subscriptions/{id}/usage, 500 requests');
      reads = await readUsage(server.base, auth, setup, 500);
    } finally {
      await server.stop();
    }
    console.log(`usage: renewals of ${options.subscriptions} subscriptions into February`);
    const invoicing = await invoiceAll(owner, app, setup);
    const total = Number(
      (await sql<{ n: string }>`select count(*) as n from usage_events`.execute(owner)).rows[0]!.n,
    );
    return [
      `Usage billing, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (\`BENCH_ONLY=usage make bench\`): a tenant with ${options.subscriptions.toLocaleString('en')} subscriptions and ${options.events.toLocaleString('en')} events before the runs (${total.toLocaleString('en')} after)`,
      '',
      '| what | result | target |',
      '| --- | --- | --- |',
      `| bulk load of the events and their totals (SQL, not the API) | ${setup.loadSeconds.toFixed(1)} s | |`,
      `| batch ingestion, 4 clients × batches of 1,000, ${options.seconds} s | ${fmt(batch.eventsPerSecond)} events/s (${batch.failures} failed requests; request p95 ${batch.p95.toFixed(0)} ms) | ≥ 20,000 events/s |`,
      `| single-event ingestion, 32 clients, 20 s | ${fmt(single.eventsPerSecond)} events/s (${single.failures} failed; p95 ${single.p95.toFixed(1)} ms) | ≥ 2,000/s |`,
      `| GET /subscriptions/{id}/usage, 1 connection, 500 requests | p50 ${at(reads, 50).toFixed(1)} ms, p95 ${at(reads, 95).toFixed(1)} ms, max ${reads.at(-1)!.toFixed(1)} ms | p95 ≤ 20 ms |`,
      `| ${invoicing.invoices.toLocaleString('en')} invoices with usage lines issued at the period end (the worker's renewals, due at once) | ${invoicing.seconds.toFixed(1)} s (${invoicing.withUsage.toLocaleString('en')} with usage lines) | ≤ 60 s for 10,000 |`,
    ].join('\n');
  } finally {
    await Promise.all([owner.destroy(), app.destroy()]);
    await sql.raw(`drop database if exists ${name} with (force)`).execute(admin);
    await admin.destroy();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');

export interface Setup {
  tenantId: string;
  key: string;
  /** The period the events fall in: [start, end), end today or yesterday. */
  start: string;
  end: string;
  metric: string;
  userIds: string[];
  subscriptionIds: string[];
  loadSeconds: number;
}

/** The tenant, its catalog, the subscriptions whose period just ended, and the events in bulk. */
export async function prepare(owner: Db, options: { subscriptions: number; events: number }): Promise<Setup> {
  const ctx = { db: owner };
  const { tenant } = await createTenant(ctx, 'usage bench');
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
  const plan = await createPlan(ctx, system, {
    code: 'ai',
    name: 'AI',
    interval: 'month',
    price: { model: 'flat', amount: '20.00' },
    usage_charges: [
      { metric: 'tokens', dimension_value: 'cheap', model: 'package', amount: '1', package_size: 1000 },
      { metric: 'tokens', dimension_value: 'standard', model: 'per_unit', amount: '0.001' },
      {
        metric: 'tokens',
        dimension_value: 'advanced',
        model: 'graduated',
        tiers: [
          { up_to: 10_000, unit_amount: '0.004', flat_amount: '0' },
          { up_to: null, unit_amount: '0.003', flat_amount: '0' },
        ],
      },
    ],
  });
  if (plan.kind !== 'created') throw new Error(`plan: ${plan.kind}`);
  // A month ago, and its anniversary (today, or the end of a shorter month): the renewal is due.
  const start = anniversary(dayOf(new Date()), 'month', 1, -1);
  const end = anniversary(start, 'month', 1, 1);
  const n = options.subscriptions;
  const metricId = metric.metric.id;
  // Users and subscriptions in bulk: billed for the period that just ended, the next one due.
  await owner.transaction().execute(async (trx) => {
    await sql`select set_config('app.tenant_id', ${tenant.id}, true)`.execute(trx);
    await sql`insert into users (name, email)
      select 'Customer ' || i, 'customer-' || i || '@example.com' from generate_series(1, ${n}::int) i`.execute(
      trx,
    );
    await sql`insert into subscriptions (user_id, status, plan_cost, start_date, plan_id, plan_version_id,
        billed_until)
      select u.id, 'active', 20, ${start}, ${plan.plan.plan.id}, ${plan.plan.price.id}, ${end}
      from users u where u.tenant_id = ${tenant.id}`.execute(trx);
  });
  const { rows } = await sql<{ user_id: string; id: string }>`
    select user_id, id from subscriptions where tenant_id = ${tenant.id} order by id`.execute(owner);
  const started = performance.now();
  const progress = startProgress('events and totals');
  // Events spread over the subscriptions and January, in time order as they would arrive; their
  // totals computed from them in SQL, as recording them one by one would have.
  for (let from = 0; from < options.events; from += CHUNK) {
    const to = Math.min(options.events, from + CHUNK);
    await owner.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${tenant.id}, true)`.execute(trx);
      await sql`
        with subs as (select row_number() over (order by id) - 1 as k, id, user_id from subscriptions
                      where tenant_id = ${tenant.id})
        insert into usage_events (event_id, user_id, subscription_id, billable_metric_id, timestamp, properties,
          value, dimension, counted, period_start)
        select 'bulk-' || i, s.user_id, s.id, ${metricId},
          ${start}::timestamptz + (i::float8 / ${options.events}) * (${end}::timestamptz - ${start}::timestamptz - interval '1 day'),
          jsonb_build_object('tokens', 1 + i % 5000, 'model', (${MODELS}::text[])[1 + i % 3]),
          (1 + i % 5000)::text, (${MODELS}::text[])[1 + i % 3], true, ${start}::date
        from generate_series(${from}::int, ${to - 1}::int) i join subs s on s.k = i % ${n}::int`.execute(trx);
    });
    progress.update(to, options.events);
  }
  await sql`
    insert into usage_totals (tenant_id, subscription_id, billable_metric_id, period_start, dimension, events, total)
    select tenant_id, subscription_id, billable_metric_id, period_start, dimension, count(*), sum(value::numeric)
    from usage_events where tenant_id = ${tenant.id}
    group by grouping sets ((tenant_id, subscription_id, billable_metric_id, period_start, dimension),
                            (tenant_id, subscription_id, billable_metric_id, period_start))`.execute(owner);
  await sql`analyze`.execute(owner);
  progress.finish();
  return {
    tenantId: tenant.id,
    key,
    start,
    end,
    metric: 'tokens',
    userIds: rows.map((r) => r.user_id),
    subscriptionIds: rows.map((r) => r.id),
    loadSeconds: (performance.now() - started) / 1000,
  };
}

interface Throughput {
  eventsPerSecond: number;
  failures: number;
  p95: number;
}

let sequence = 0;

/** `clients` loops each sending `size` new events a request (batch or single) for `seconds`. */
async function ingest(
  base: string,
  headers: Record<string, string>,
  setup: Setup,
  { clients, size, seconds }: { clients: number; size: number; seconds: number },
): Promise<Throughput> {
  const run = `${Date.now()}`;
  // The period's last day (not yet invoiced: the API runs with JOBS=off).
  const at12 = new Date(Date.parse(`${setup.end}T00:00:00Z`) - 12 * 3_600_000).toISOString();
  const event = () => {
    const i = sequence++;
    return {
      event_id: `bench-${run}-${i}`,
      user_id: setup.userIds[i % setup.userIds.length]!,
      metric: setup.metric,
      timestamp: at12,
      properties: { tokens: 1 + (i % 977), model: MODELS[i % 3]! },
    };
  };
  const path = size === 1 ? '/api/v1/usage-events' : '/api/v1/usage-events/batch';
  const client = new KeptAliveClient(base, headers, clients);
  const deadline = performance.now() + seconds * 1000;
  let events = 0;
  let failures = 0;
  const times: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const body =
          size === 1
            ? JSON.stringify(event())
            : JSON.stringify({ events: Array.from({ length: size }, event) });
        const t0 = performance.now();
        const { status } = await client.post(path, body);
        times.push(performance.now() - t0);
        if (status >= 200 && status < 300) events += size;
        else failures += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  client.close();
  times.sort((a, b) => a - b);
  return { eventsPerSecond: events / elapsed, failures, p95: at(times, 95) };
}

async function readUsage(base: string, headers: Record<string, string>, setup: Setup, count: number) {
  const ids = setup.subscriptionIds;
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = ids[(i * 7919) % ids.length]!;
    const t0 = performance.now();
    const res = await fetch(`${base}/api/v1/subscriptions/${id}/usage?period_start=${setup.start}`, {
      headers,
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`GET usage: ${res.status}`);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
}

/** The worker's renewals, all due now: every subscription's next invoice, with the usage lines. */
async function invoiceAll(owner: Db, app: Db, setup: Setup) {
  const started = performance.now();
  await performDueWork(
    { db: app, ownerDb: owner, gateway: simulatedGateway, settlementDelayScale: 0 },
    { tenantId: setup.tenantId },
  );
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await sql<{ invoices: string; with_usage: string }>`
    select count(*) as invoices,
      count(*) filter (where jsonb_path_exists(lines, '$[*] ? (@.type == "usage")')) as with_usage
    from invoices where tenant_id = ${setup.tenantId} and period_start = ${setup.end}`.execute(owner);
  return { seconds, invoices: Number(rows[0]!.invoices), withUsage: Number(rows[0]!.with_usage) };
}
