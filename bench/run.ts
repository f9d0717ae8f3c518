// `make bench` (ROWS=500000): seeds the demo tenant unless it already has ROWS subscriptions, then
// measures, on the same database in one run:
//   1. this API (its own process, NODE_ENV=production: response validation off) against the floor
//      (bench/floor.ts: node:http + pg, one query per request) under the same load (autocannon,
//      32 connections), and prints each ratio;
//   2. GET /analytics under that load;
//   3. the API again with WORKERS=2;
//   4. single-row insert throughput with and without the maintained analytics aggregates;
//   5. the worker with 1,000 renewals due at once (bench/renewals.ts, in a scratch database);
//   6. GET /analytics and GET /metrics/mrr timed throughout 60 s of concurrent writes (after 10 s
//      of the same load unmeasured) and after them (bench/write-load.ts): 12 writers as fast as
//      they are answered, then paced at 50 writes/s (BENCH_WRITE_RATES=0,50; 0 = unpaced), each
//      against a server as deployed (one process per core) and one of WORKERS=1
//      (BENCH_WRITE_WORKERS=<cores>,1); BENCH_ONLY=write-load runs this step alone;
//   7. BENCH_ONLY=metrics: the MRR engine's targets (issue 21) alone: reads for every filter, with
//      1,000 customers awaiting compaction, the check, the rebuild under writes, a 100,000
//      subscription import, write costs, and a recomputation (bench/metrics-scale.ts);
//   8. BENCH_ONLY=usage: usage billing (issue 22) in a scratch database: batch and single-event
//      ingestion, GET /usage with 10,000,000 events, 10,000 usage invoices (bench/usage.ts);
//   9. BENCH_ONLY=wallets: hold + capture pairs on one hot wallet and on 32 (bench/wallets.ts).
//  10. BENCH_ONLY=usage-margin: GET /reports/usage-margin over a year of usage totals and usage
//      invoices of 10,000 subscriptions, in a scratch database (bench/usage-margin.ts).
// BENCH_ROWS (or ROWS) sets the demo tenant's size: BENCH_ROWS=5000000 for the 5M mode.
// Prints the tables and writes them to bench/results.md (bench/results-<ROWS>.md for other sizes);
// a step run alone replaces its own section there.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { createDb, type Db, withTenant } from '../src/database/connection.js';
import { migrateToLatest } from '../src/database/migrator.js';
import { openDatabase } from '../src/database/open.js';
import { insertUser } from '../src/queries/users.js';
import { authenticateKey, issueApiKey } from '../src/services/api-keys.js';
import { createUser } from '../src/services/users.js';
import { inTenant } from '../src/services/context.js';
import { rebuild } from '../src/services/analytics.js';
import { createTenant } from '../src/services/tenants.js';
import { runMain } from '../src/startup.js';
import { formatLoad, type LoadOptions, type LoadResult, runLoad } from './load.js';
import {
  compactionRate,
  type MetricsLatency,
  formatMetricsLatencies,
  formatWriteCosts,
  metricsLatencies,
  metricsWhileDirty,
  subscriptionWriteCosts,
} from './metrics.js';
import { benchImport, benchRebuild, benchRecompute } from './metrics-scale.js';
import { benchRenewals, formatRenewals } from './renewals.js';
import { benchUsage } from './usage.js';
import { benchUsageMargin } from './usage-margin.js';
import { benchWallets } from './wallets.js';
import { benchWriteLoad, formatWriteLoad, type WriteLoadResult } from './write-load.js';

const ROWS = Number(process.env.BENCH_ROWS ?? process.env.ROWS ?? 500_000);
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 32;
const ONLY = process.env.BENCH_ONLY;
if (
  ONLY !== undefined &&
  !['crud', 'write-load', 'metrics', 'usage', 'usage-margin', 'wallets'].includes(ONLY)
) {
  console.error(
    `BENCH_ONLY must be crud, write-load, metrics, usage, usage-margin or wallets (or unset for every step), got "${ONLY}"`,
  );
  process.exit(2);
}
const RESULTS = `bench/results${ROWS === 500_000 ? '' : `-${ROWS}`}.md`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/**
 * The API runs as production runs it: compiled JavaScript (dist/, `make build`, which `make bench`
 * runs first), not TypeScript through tsx's loader. BENCH_TSX=1 serves src/main.ts through tsx
 * instead (as `make start` does), to compare.
 */
const API_TSX = process.env.BENCH_TSX === '1';
if (!API_TSX && !existsSync('dist/main.js')) {
  console.error('dist/main.js is missing: run make build first (make bench does), or set BENCH_TSX=1');
  process.exit(2);
}

/** Starts a server process and waits until it answers on its port. */
async function startServer(
  script: string,
  env: Record<string, string>,
): Promise<{ base: string; stop(): Promise<void> }> {
  const port = await freePort();
  // BENCH_CPU_PROF=<dir>: each server writes a CPU profile there when it stops (node --cpu-prof).
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const args = [
    ...profile,
    ...(script === 'src/main.ts' && !API_TSX ? ['dist/main.js'] : ['--import', 'tsx', script]),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, ...env, PORT: String(port), FLOOR_PORT: String(port), HOST: '127.0.0.1' },
    // Output goes nowhere, as a production log shipper's pipe would cost about the same.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    const up = await fetch(`${base}/healthz`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 200) throw new Error(`${script} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    base,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const load = (options: LoadOptions) =>
  runLoad({ connections: CONNECTIONS, durationSeconds: DURATION, ...options });

interface Crud {
  getById: LoadResult;
  list: LoadResult;
  create: LoadResult;
}

const crudLoad = (base: string, paths: CrudPaths, headers: Record<string, string>) => ({
  getById: () => load({ url: base + paths.user, headers }),
  list: () => load({ url: base + paths.list, headers }),
  create: () =>
    load({
      url: base + paths.create,
      method: 'POST',
      headers,
      body: '{"name": "Bench User", "email": "bench-[<id>]@example.com"}',
      idReplacement: true,
    }),
});

interface CrudPaths {
  user: string;
  list: string;
  create: string;
}

async function crud(base: string, paths: CrudPaths, headers: Record<string, string>): Promise<Crud> {
  const run = crudLoad(base, paths, headers);
  return { getById: await run.getById(), list: await run.list(), create: await run.create() };
}

function crudOne(
  base: string,
  paths: CrudPaths,
  headers: Record<string, string>,
  kind: keyof Crud,
): Promise<LoadResult> {
  return crudLoad(base, paths, headers)[kind]();
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** BENCH_ONLY=crud: the floor and the API taking turns, round by round, from one run. */
function formatCrud(turns: Array<{ floor: Crud; api: Crud }>, two: Crud | undefined): string {
  const rows: Array<[string, keyof Crud]> = [
    ['GET user by id', 'getById'],
    ['GET page of 20 subscriptions', 'list'],
    ['POST create user', 'create'],
  ];
  const last = turns.at(-1)!;
  return [
    `CRUD against the floor, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, ROWS=${ROWS} (\`BENCH_ONLY=crud make bench\`): the API in production mode, ${API_TSX ? 'TypeScript through tsx (BENCH_TSX=1)' : 'compiled JavaScript (dist/)'}; the floor and the API take turns, ${turns.length} rounds of ${DURATION} s each; the ratio is the median of the rounds' ratios, the figures are of the last round`,
    '',
    `| ${CONNECTIONS} connections | floor | this API, 1 process | API ÷ floor, each round | median |${two ? ' this API, WORKERS=2 | 2 ÷ 1 |' : ''}`,
    `| --- | --- | --- | --- | --- |${two ? ' --- | --- |' : ''}`,
    ...rows.map(([label, k]) => {
      const ratios = turns.map((t) => t.api[k].requestsPerSecond / t.floor[k].requestsPerSecond);
      return (
        `| ${label} | ${formatLoad(last.floor[k])} | ${formatLoad(last.api[k])} | ${ratios.map((r) => `${Math.round(100 * r)}%`).join(', ')} | ${Math.round(100 * median(ratios))}% |` +
        (two
          ? ` ${formatLoad(two[k])} | ${(two[k].requestsPerSecond / last.api[k].requestsPerSecond).toFixed(2)}× |`
          : '')
      );
    }),
  ].join('\n');
}

const SERVICE_SECONDS = 5;

/** Runs `write` from 8 loops for SERVICE_SECONDS; returns completed writes per second. */
async function writesPerSecond(write: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const until = performance.now() + SERVICE_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async (_, loop) => {
      for (let i = 0; performance.now() < until; i++) {
        await write(loop * 1_000_000 + i);
        done++;
      }
    }),
  );
  return done / SERVICE_SECONDS;
}

/**
 * The same user insert three ways, on the app role's pool like a request: as a bare tenant
 * transaction (no event), through the service (insert + event), and through the service with an
 * idempotency key (+ the key's lock, lookup and stored reply).
 */
async function serviceWriteCosts(url: string, tenantId: string, apiKey: string) {
  const db = createDb(url, { poolSize: 8, asAppRole: true });
  const ctx = { db };
  const holder = await authenticateKey(ctx, apiKey);
  const actor = { tenantId, keyId: holder!.keyId, apiKey: holder!.apiKey };
  const run = Date.now();
  const email = (i: number) => `bench-svc-${run}-${i}@example.com`;
  try {
    const bare = await writesPerSecond((i) =>
      withTenant(db, actor, (trx) => insertUser(trx, { name: 'Bench', email: `${email(i)}.bare` })),
    );
    const events = await writesPerSecond((i) =>
      createUser(ctx, actor, { name: 'Bench', email: `${email(i)}.events` }),
    );
    const idempotent = await writesPerSecond((i) =>
      createUser(
        ctx,
        {
          ...actor,
          idempotency: {
            key: `bench-${run}-${i}`,
            fingerprint: String(i),
            reply: () => ({ status: 201, headers: {}, body: '{}' }),
          },
        },
        { name: 'Bench', email: `${email(i)}.keyed` },
      ),
    );
    return { bare, events, idempotent };
  } finally {
    await db.destroy();
  }
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

/** Step 6: a server of its own (production mode, worker in process, as `make start` runs it). */
/** The write loads of step 6: as fast as 12 writers are answered, then paced (BENCH_WRITE_RATES). */
const WRITE_RATES = (process.env.BENCH_WRITE_RATES ?? '0,50').split(',').map(Number);
/**
 * The server processes of each load (BENCH_WRITE_WORKERS): as deployed (NODE_ENV=production runs
 * one per core, the worker in the primary), then one, as the other steps measure per process.
 */
const WRITE_PROCESSES = [
  ...new Set((process.env.BENCH_WRITE_WORKERS ?? `${os.availableParallelism()},1`).split(',').map(Number)),
];

async function writeLoads(
  env: Record<string, string>,
  auth: Record<string, string>,
  owner: Db,
  tenantId: string,
): Promise<WriteLoadResult[]> {
  const results: WriteLoadResult[] = [];
  for (const [rate, processes] of WRITE_RATES.flatMap((rate) =>
    WRITE_PROCESSES.map((p) => [rate, p] as const),
  )) {
    // A server of its own for each load: none inherits another's backlog.
    const server = await startServer('src/main.ts', { ...env, WORKERS: String(processes) });
    let stopped = false;
    const stop = async () => {
      if (!stopped) await server.stop();
      stopped = true;
    };
    try {
      results.push(
        await benchWriteLoad({
          server: { base: server.base, stop },
          headers: auth,
          owner,
          tenantId,
          writers: Number(process.env.BENCH_WRITERS ?? 12),
          rate,
          processes,
          warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 10),
          writeSeconds: Number(process.env.BENCH_WRITE_SECONDS ?? 60),
          afterSeconds: Number(process.env.BENCH_AFTER_SECONDS ?? 20),
        }),
      );
    } finally {
      await stop();
    }
  }
  return results;
}

/** A section of the results file that a step run alone (BENCH_ONLY) replaces. */
const section = (name: string, table: string) => `<!-- ${name} -->\n${table}\n<!-- /${name} -->`;

/** The results file with the named section replaced (or added), the rest as it was. */
function withSection(name: string, table: string): string {
  const previous = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark\n';
  const [start, end] = [`<!-- ${name} -->`, `<!-- /${name} -->`];
  const from = previous.indexOf(start);
  const to = previous.indexOf(end);
  if (from < 0 || to < 0) return `${previous.trimEnd()}\n\n${section(name, table)}\n`;
  return previous.slice(0, from) + section(name, table) + previous.slice(to + end.length);
}

/**
 * What maintaining the metrics costs a subscription's write, and compaction's pace, in a scratch
 * tenant of 10,000 customers (removed afterwards).
 */
async function metricsWriteCosts(owner: Db, url: string): Promise<string> {
  const scratch = await createTenant({ db: owner }, 'bench scratch');
  const scratchId = scratch.tenant.id;
  try {
    const customers = await withTenant(owner, { tenantId: scratchId }, async (trx) => {
      await sql`insert into users (name, email)
        select 'Customer ' || i, 'customer-' || i || '@example.com' from generate_series(1, 10000) i`.execute(
        trx,
      );
      return (await trx.selectFrom('users').select('id').execute()).map((u) => u.id);
    });
    const appDb = createDb(url, { poolSize: 8, asAppRole: true });
    let costs: Awaited<ReturnType<typeof subscriptionWriteCosts>>;
    try {
      costs = await subscriptionWriteCosts(owner, appDb, { tenantId: scratchId, keyId: 'system' }, customers);
    } finally {
      await appDb.destroy();
    }
    return formatWriteCosts(costs, await compactionRate(owner, scratchId));
  } finally {
    await owner.transaction().execute(async (trx) => {
      for (const table of [
        'subscriptions',
        'user_totals',
        'mrr_counted',
        'mrr_days',
        'mrr_dirty',
        'mrr_dirty_subscriptions',
        'users',
      ] as const) {
        await trx.deleteFrom(table).where('tenant_id', '=', scratchId).execute();
      }
      await trx.deleteFrom('tenants').where('id', '=', scratchId).execute();
    });
  }
}

/** Step 7 (BENCH_ONLY=metrics). */
async function metricsAtScale(
  env: Record<string, string>,
  auth: Record<string, string>,
  owner: Db,
  url: string,
  tenantId: string,
): Promise<string> {
  // Each step's lines are printed as soon as it ends: a later step's failure keeps them.
  const show = (lines: string[]) => {
    console.log(lines.join('\n'));
    return lines;
  };
  // BENCH_STEPS=reads,rebuild,costs,import,recompute (default: all) runs some of them.
  const steps = new Set((process.env.BENCH_STEPS ?? 'reads,rebuild,costs,import,recompute').split(','));
  const latencies: MetricsLatency[] = [];
  let rebuildLines: string[] = [];
  let costs: string[] = [];
  let importLines: string[] = [];
  let recomputeLines: string[] = [];
  if (steps.has('reads')) {
    console.log('metrics: reads');
    const quiet = await startServer('src/main.ts', { ...env, JOBS: 'off' });
    latencies.push(...(await metricsLatencies(quiet.base, auth, owner, tenantId)));
    latencies.push(await metricsWhileDirty(quiet.base, auth, owner, tenantId, 1000, 'written'));
    latencies.push(await metricsWhileDirty(quiet.base, auth, owner, tenantId, 1000, 'whole'));
    await quiet.stop();
    show([formatMetricsLatencies(latencies)]);
  }
  if (steps.has('rebuild')) {
    console.log('metrics: consistency check and rebuild');
    const app = createDb(url, { poolSize: 8, asAppRole: true });
    try {
      rebuildLines = show(await benchRebuild(owner, app, tenantId));
    } finally {
      await app.destroy();
    }
  }
  if (steps.has('costs')) {
    console.log('metrics: write costs');
    costs = show([await metricsWriteCosts(owner, url)]);
  }
  const server = await startServer('src/main.ts', env);
  try {
    if (steps.has('import')) {
      console.log('metrics: import of 100,000 subscriptions');
      importLines = show(await benchImport(server.base, auth, owner, tenantId));
    }
    // Last: it holds every subscription of the tenant in memory.
    if (steps.has('recompute')) {
      console.log('metrics: recomputation from the base tables');
      recomputeLines = show(await benchRecompute(server.base, auth, owner, tenantId));
    }
  } finally {
    await server.stop();
  }
  return [
    `MRR engine, ROWS=${ROWS}, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (\`BENCH_ONLY=metrics BENCH_ROWS=${ROWS} make bench\`)`,
    '',
    latencies.length > 0 ? formatMetricsLatencies(latencies) : '(reads not run: BENCH_STEPS)',
    '',
    '| check, rebuild, import | |',
    '| --- | --- |',
    ...rebuildLines,
    ...importLines,
    ...recomputeLines,
    '',
    ...costs,
  ].join('\n');
}

runMain(async () => {
  const config = loadConfig();
  const database = await openDatabase(config);
  const owner = createDb(database.url, { poolSize: 4 });
  try {
    await migrateToLatest(owner);
    if (ONLY === 'wallets') {
      const table = await benchWallets(database.url, startServer, Number(process.env.BENCH_SECONDS ?? 10));
      console.log(`\n${table}`);
      writeFileSync(RESULTS, withSection('wallets', table));
      return;
    }
    if (ONLY === 'usage-margin') {
      const table = await benchUsageMargin(database.url, startServer, {
        subscriptions: Number(process.env.BENCH_MARGIN_SUBSCRIPTIONS ?? 10_000),
        requests: Number(process.env.BENCH_MARGIN_REQUESTS ?? 20),
      });
      console.log(`\n${table}`);
      writeFileSync(RESULTS, withSection('usage-margin', table));
      return;
    }
    if (ONLY === 'usage') {
      const table = await benchUsage(database.url, startServer, {
        subscriptions: Number(process.env.BENCH_USAGE_SUBSCRIPTIONS ?? 10_000),
        events: Number(process.env.BENCH_USAGE_EVENTS ?? 10_000_000),
        seconds: Number(process.env.BENCH_SECONDS ?? 60),
      });
      console.log(`\n${table}`);
      writeFileSync(RESULTS, withSection('usage', table));
      return;
    }
    const count = async () => {
      const demo = await owner
        .selectFrom('tenants')
        .select('id')
        .where('name', '=', 'Demo')
        .executeTakeFirst();
      if (!demo) return { tenantId: undefined, have: 0 };
      const { rows } = await sql<{
        n: string;
      }>`select count(*) as n from subscriptions where tenant_id = ${demo.id}`.execute(owner);
      return { tenantId: demo.id, have: Number(rows[0]?.n) };
    };
    if ((await count()).have !== ROWS) {
      console.log(`seeding ${ROWS} subscriptions…`);
      execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/seed.ts'], {
        stdio: 'inherit',
        env: { ...process.env, ROWS: String(ROWS) },
      });
    }
    const tenantId = (await count()).tenantId!;
    const system = { tenantId, keyId: 'system' };
    const { key } = await inTenant({ db: owner }, system, (tx) =>
      issueApiKey(tx, { name: 'bench', role: 'admin', expiresAt: null }),
    );
    const sample = await withTenant(owner, system, (trx) =>
      trx.selectFrom('users').select('id').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow(),
    );
    const auth = { authorization: `Bearer ${key}` };
    const apiEnv = {
      DATABASE_URL: database.url,
      NODE_ENV: 'production',
      WORKERS: '1',
      RATE_LIMIT_PER_MINUTE: '1000000',
    };
    const revokeBenchKey = () =>
      owner.deleteFrom('api_keys').where('tenant_id', '=', tenantId).where('name', '=', 'bench').execute();

    if (ONLY === 'write-load') {
      const table = formatWriteLoad(await writeLoads(apiEnv, auth, owner, tenantId));
      await revokeBenchKey();
      console.log(`\n${table}`);
      writeFileSync(RESULTS, withSection('write-load', table));
      return;
    }

    if (ONLY === 'metrics') {
      const table = await metricsAtScale(apiEnv, auth, owner, database.url, tenantId);
      await revokeBenchKey();
      console.log(`\n${table}`);
      writeFileSync(RESULTS, withSection('metrics', table));
      return;
    }

    // 1. The floor and the API, one after the other, under the same load.
    const runFloor = async () => {
      const floor = await startServer('bench/floor.ts', {
        FLOOR_DATABASE_URL: database.url,
        FLOOR_TENANT_ID: tenantId,
      });
      try {
        return await crud(
          floor.base,
          { user: `/users/${sample.id}`, list: '/subscriptions?limit=20', create: '/users' },
          {},
        );
      } finally {
        await floor.stop();
      }
    };
    const apiPaths = {
      user: `/api/v1/users/${sample.id}`,
      list: '/api/v1/subscriptions?limit=20',
      create: '/api/v1/users',
    };

    if (ONLY === 'crud') {
      // Step 1 alone. The floor and the API run side by side and take turns under the load,
      // BENCH_ROUNDS times per request (default 3): each ratio is the median of its rounds, so a
      // machine busy with other work for a while moves both sides of a round alike.
      const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
      const floorServer = await startServer('bench/floor.ts', {
        FLOOR_DATABASE_URL: database.url,
        FLOOR_TENANT_ID: tenantId,
      });
      const api = await startServer('src/main.ts', apiEnv);
      const floorPaths = { user: `/users/${sample.id}`, list: '/subscriptions?limit=20', create: '/users' };
      const turns: Array<{ floor: Crud; api: Crud }> = [];
      try {
        for (let round = 0; round < rounds; round++) {
          const floor = {} as Crud;
          const one = {} as Crud;
          for (const kind of ['getById', 'list', 'create'] as const) {
            floor[kind] = await crudOne(floorServer.base, floorPaths, {}, kind);
            one[kind] = await crudOne(api.base, apiPaths, auth, kind);
          }
          turns.push({ floor, api: one });
        }
      } finally {
        await api.stop();
        await floorServer.stop();
      }
      let two: Crud | undefined;
      if (process.env.BENCH_CRUD_WORKERS !== '1') {
        const server = await startServer('src/main.ts', { ...apiEnv, WORKERS: '2' });
        two = await crud(server.base, apiPaths, auth).finally(() => server.stop());
      }
      await owner
        .deleteFrom('users')
        .where('tenant_id', '=', tenantId)
        .where('email', 'like', 'bench-%')
        .execute();
      await revokeBenchKey();
      const table = formatCrud(turns, two);
      console.log(`\n${table}`);
      writeFileSync(RESULTS, withSection('crud', table));
      return;
    }

    const floorResult = await runFloor();
    const api = await startServer('src/main.ts', apiEnv);
    const apiResult = await crud(api.base, apiPaths, auth);
    // 2. Analytics: latency one request at a time, throughput under the same load.
    const analyticsAlone = await load({ url: `${api.base}/api/v1/analytics`, headers: auth, connections: 1 });
    const analytics = await load({ url: `${api.base}/api/v1/analytics`, headers: auth });
    // The subscription metrics over 24 months, each kind of filter.
    const metricsLatency = await metricsLatencies(api.base, auth, owner, tenantId);
    // POST with a unique Idempotency-Key per request (autocannon replaces [<id>] in headers too).
    const createIdempotent = await load({
      url: api.base + apiPaths.create,
      method: 'POST',
      headers: { ...auth, 'idempotency-key': 'bench-[<id>]' },
      body: '{"name": "Bench User", "email": "bench-[<id>]@example.com"}',
      idReplacement: true,
    });
    await api.stop();
    const quiet = await startServer('src/main.ts', { ...apiEnv, JOBS: 'off' });
    metricsLatency.push(await metricsWhileDirty(quiet.base, auth, owner, tenantId, 100));
    await quiet.stop();

    // The write path without HTTP: what events and idempotency records cost a write.
    const writeCosts = await serviceWriteCosts(database.url, tenantId, key);

    // 3. Two server processes.
    const two = await startServer('src/main.ts', { ...apiEnv, WORKERS: '2' });
    const twoResult = await crud(two.base, apiPaths, auth);
    await two.stop();

    // 6. Reads while writers change the demo tenant (before the clean-up revokes the bench key).
    const writeLoadTable = formatWriteLoad(await writeLoads(apiEnv, auth, owner, tenantId));

    // 4. Write throughput in a scratch tenant: with the aggregate triggers, then without them.
    const scratch = await createTenant({ db: owner }, 'bench scratch');
    const scratchId = scratch.tenant.id;
    const user = await withTenant(owner, { tenantId: scratchId }, (trx) =>
      trx
        .insertInto('users')
        .values({ name: 'Bench', email: 'bench@example.com' })
        .returning('id')
        .executeTakeFirstOrThrow(),
    );
    const writes = 4000;
    const withAggregates = await writeThroughput(owner, scratchId, user.id, writes);
    await sql`alter table subscriptions disable trigger subscriptions_aggregates_insert`.execute(owner);
    let withoutAggregates: number;
    try {
      withoutAggregates = await writeThroughput(owner, scratchId, user.id, writes);
    } finally {
      await sql`alter table subscriptions enable trigger subscriptions_aggregates_insert`.execute(owner);
    }
    await rebuild({ db: owner }, { tenantId: scratchId, keyId: 'system' });

    const subscriptionCostsTable = await metricsWriteCosts(owner, database.url);

    // Leave the demo tenant as the seed made it.
    await owner.transaction().execute(async (trx) => {
      for (const table of [
        'subscriptions',
        'user_totals',
        'mrr_counted',
        'mrr_days',
        'mrr_dirty',
        'mrr_dirty_subscriptions',
        'users',
      ] as const) {
        await trx.deleteFrom(table).where('tenant_id', '=', scratchId).execute();
      }
      await trx.deleteFrom('tenants').where('id', '=', scratchId).execute();
      await trx
        .deleteFrom('users')
        .where('tenant_id', '=', tenantId)
        .where('email', 'like', 'bench-%')
        .execute();
    });
    await revokeBenchKey();

    // 5. The background worker.
    const renewals = await benchRenewals(database.url, 1000);

    const pct = (a: number, b: number) => `${Math.round((100 * a) / b)}%`;
    const ratio = (a: LoadResult, b: LoadResult) =>
      `${Math.round((100 * a.requestsPerSecond) / b.requestsPerSecond)}%`;
    const growth = (a: LoadResult, b: LoadResult) =>
      `${(a.requestsPerSecond / b.requestsPerSecond).toFixed(2)}×`;
    const rows: Array<[string, keyof Crud]> = [
      ['GET user by id', 'getById'],
      ['GET page of 20 subscriptions', 'list'],
      ['POST create user', 'create'],
    ];
    const table = [
      `| ${CONNECTIONS} connections, ${DURATION} s each | floor | this API, 1 process | API ÷ floor | this API, WORKERS=2 | 2 ÷ 1 |`,
      '| --- | --- | --- | --- | --- | --- |',
      ...rows.map(
        ([label, k]) =>
          `| ${label} | ${formatLoad(floorResult[k])} | ${formatLoad(apiResult[k])} | ${ratio(apiResult[k], floorResult[k])} | ${formatLoad(twoResult[k])} | ${growth(twoResult[k], apiResult[k])} |`,
      ),
      '',
      '| GET /api/v1/analytics, 1 process |  |',
      '| --- | --- |',
      `| 1 connection, ${DURATION} s | ${formatLoad(analyticsAlone)} |`,
      `| ${CONNECTIONS} connections, ${DURATION} s | ${formatLoad(analytics)} |`,
      '',
      formatMetricsLatencies(metricsLatency),
      '',
      '| POST create user, 1 process, 32 connections | req/s | ÷ without a key |',
      '| --- | --- | --- |',
      `| with events (every write records one) | ${formatLoad(apiResult.create)} | |`,
      `| with events and an Idempotency-Key each | ${formatLoad(createIdempotent)} | ${ratio(createIdempotent, apiResult.create)} |`,
      '',
      `| one user insert per transaction, in process, 8 at once, ${SERVICE_SECONDS} s | writes/s | ÷ insert only |`,
      '| --- | --- | --- |',
      `| the insert only (the write path before events) | ${Math.round(writeCosts.bare)} | 100% |`,
      `| createUser: the insert and its event | ${Math.round(writeCosts.events)} | ${pct(writeCosts.events, writeCosts.bare)} |`,
      `| createUser with an Idempotency-Key | ${Math.round(writeCosts.idempotent)} | ${pct(writeCosts.idempotent, writeCosts.bare)} |`,
      '',
      '| single-row inserts, 4 connections | rows/s |',
      '| --- | --- |',
      `| with the maintained aggregates | ${Math.round(withAggregates)} |`,
      `| without (aggregate trigger disabled) | ${Math.round(withoutAggregates)} |`,
      '',
      subscriptionCostsTable,
      '',
      formatRenewals(renewals),
      '',
      section('write-load', writeLoadTable),
    ].join('\n');
    const report = [
      '# Benchmark',
      '',
      `\`make bench\` with ROWS=${ROWS} subscriptions in the demo tenant; ${os.cpus().length} cores shared by PostgreSQL, the server under test and the load generator (autocannon, its own process); Node ${process.version}; ${new Date().toISOString().slice(0, 10)}. Throughput counts 2xx answers only; latencies are of 2xx answers.`,
      '',
      table,
      '',
    ].join('\n');
    console.log(`\n${table}`);
    writeFileSync(RESULTS, report);
  } finally {
    await owner.destroy();
    await database.stop();
  }
});
