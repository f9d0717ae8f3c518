// `make bench` (ROWS=500000): seeds the demo tenant unless it already has ROWS subscriptions,
// then measures the analytics endpoint and representative CRUD calls over HTTP on loopback, and
// the write throughput with and without the maintained aggregates. Prints a table and writes it
// to bench/results.md.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { sql } from 'kysely';
import { createApp } from '../src/app.js';
import { rebuildAggregates } from '../src/analytics/maintenance.js';
import { loadConfig } from '../src/config.js';
import { createDb, type Db, withTenant } from '../src/database/connection.js';
import { openDatabase } from '../src/database/open.js';
import { issueApiKey } from '../src/services/api-keys.js';
import { createTenant } from '../src/services/tenants.js';

const ROWS = Number(process.env.ROWS ?? 500_000);
const SAMPLES = Number(process.env.SAMPLES ?? 1000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Row {
  what: string;
  p50: string;
  p95: string;
  p99: string;
  rate: string;
}

/** Sequential latency of SAMPLES requests after a warm-up, then requests/second with 8 in flight. */
async function measure(what: string, call: () => Promise<Response>): Promise<Row> {
  for (let i = 0; i < 100; i++) await (await call()).arrayBuffer();
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    const res = await call();
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status}`);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  let done = 0;
  const until = performance.now() + 3000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        await (await call()).arrayBuffer();
        done++;
      }
    }),
  );
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  return {
    what,
    p50: ms(percentile(times, 50)),
    p95: ms(percentile(times, 95)),
    p99: ms(percentile(times, 99)),
    rate: `${Math.round(done / 3)} req/s`,
  };
}

/** Single-row inserts, each in its own tenant transaction, from 4 connections at once. */
async function writeThroughput(db: Db, tenantId: string, userId: string, count: number): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) {
        const i = next++;
        await withTenant(db, { tenantId }, (trx) =>
          trx
            .insertInto('subscriptions')
            .values({
              user_id: userId,
              status: 'active',
              plan_cost: `${i % 100}.99`,
              start_date: '2026-01-15',
            })
            .execute(),
        );
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

const config = loadConfig();
const database = await openDatabase(config);
const db = createDb(database.url, { poolSize: 8 });
try {
  const demo = await db.selectFrom('tenants').select('id').where('name', '=', 'Demo').executeTakeFirst();
  const have = demo
    ? Number(
        (
          await sql<{
            n: string;
          }>`select count(*) as n from subscriptions where tenant_id = ${demo.id}`.execute(db)
        ).rows[0]?.n,
      )
    : 0;
  if (have !== ROWS) {
    console.log(`seeding ${ROWS} subscriptions (found ${have})…`);
    execFileSync('npx', ['tsx', 'src/cli/seed.ts'], {
      stdio: 'inherit',
      env: { ...process.env, ROWS: String(ROWS) },
    });
  }
  const tenantId = (
    await db.selectFrom('tenants').select('id').where('name', '=', 'Demo').executeTakeFirstOrThrow()
  ).id;
  const { key } = await withTenant(db, { tenantId }, (trx) =>
    issueApiKey(trx, { name: 'bench', role: 'admin', expiresAt: null }),
  );
  const sample = await withTenant(db, { tenantId }, (trx) =>
    trx
      .selectFrom('subscriptions')
      .select(['id', 'user_id'])
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow(),
  );

  const app = createApp({ db, validateResponses: false, rateLimitPerMinute: 1_000_000_000 });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const get = (path: string) => () => fetch(base + path, { headers });

  const rows: Row[] = [];
  rows.push(await measure('GET /analytics', get('/analytics')));
  rows.push(await measure('GET /analytics?months=36&top=20', get('/analytics?months=36&top=20')));
  rows.push(await measure('GET /subscriptions/{id}', get(`/subscriptions/${sample.id}`)));
  rows.push(await measure('GET /subscriptions?limit=20', get('/subscriptions?limit=20')));
  rows.push(await measure(`GET /subscriptions?user_id=…`, get(`/subscriptions?user_id=${sample.user_id}`)));
  rows.push(
    await measure('PATCH /subscriptions/{id}', () =>
      fetch(`${base}/subscriptions/${sample.id}`, {
        method: 'PATCH',
        headers,
        body: JSON.stringify({ plan_cost: '49.99' }),
      }),
    ),
  );
  server.close();

  // Write throughput in a scratch tenant: with the aggregate triggers, then without them.
  const scratch = await createTenant({ db }, 'bench scratch');
  const scratchId = scratch.tenant.id;
  const user = await withTenant(db, { tenantId: scratchId }, (trx) =>
    trx
      .insertInto('users')
      .values({ name: 'Bench', email: 'bench@example.com' })
      .returning('id')
      .executeTakeFirstOrThrow(),
  );
  const writes = 4000;
  const withAggregates = await writeThroughput(db, scratchId, user.id, writes);
  await sql`alter table subscriptions disable trigger subscriptions_aggregates_insert`.execute(db);
  let withoutAggregates: number;
  try {
    withoutAggregates = await writeThroughput(db, scratchId, user.id, writes);
  } finally {
    await sql`alter table subscriptions enable trigger subscriptions_aggregates_insert`.execute(db);
  }
  await withTenant(db, { tenantId: scratchId }, (trx) => rebuildAggregates(trx));
  await db.transaction().execute(async (trx) => {
    for (const table of ['subscriptions', 'user_totals', 'users'] as const) {
      await trx.deleteFrom(table).where('tenant_id', '=', scratchId).execute();
    }
    await trx.deleteFrom('tenants').where('id', '=', scratchId).execute();
  });
  await withTenant(db, { tenantId }, (trx) =>
    trx.deleteFrom('api_keys').where('name', '=', 'bench').execute(),
  );

  const table = [
    '| call | p50 | p95 | p99 | throughput (8 in flight) |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.what} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.rate} |`),
    '',
    '| single-row inserts, 4 connections | rows/s |',
    '| --- | --- |',
    `| with the maintained aggregates | ${Math.round(withAggregates)} |`,
    `| without (aggregate trigger disabled) | ${Math.round(withoutAggregates)} |`,
  ].join('\n');
  const report = `# Benchmark\n\n\`make bench\` with ROWS=${ROWS} subscriptions in the demo tenant, ${SAMPLES} sequential requests per call over HTTP on loopback (after 100 warm-up), then 3 s with 8 requests in flight. ${os.cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.\n\n${table}\n`;
  console.log(`\n${table}`);
  writeFileSync(`bench/results${ROWS === 500_000 ? '' : `-${ROWS}`}.md`, report);
} finally {
  await db.destroy();
  await database.stop();
}
