// The MRR engine at the demo tenant's size (BENCH_ONLY=metrics, ROWS=500000 or 5000000): each
// step of issue 21's targets, measured on the seeded tenant.
//   - the consistency check, and the rebuild while writers keep writing (their pace and worst
//     latency during it);
//   - a bulk import of 100,000 subscriptions (33,334 new customers) in batches of 5,000 with the
//     server's worker compacting: GET /metrics/mrr timed one request after another during the
//     import and until every customer is compacted; how long absorbing took;
//   - the API's answers for 24 months against the independent recomputation from the base tables
//     (test/helpers/mrr-reference.ts), unfiltered and for one plan.
// BENCH_STEPS picks some of them (bench/run.ts).
import { sql } from 'kysely';
import { type Db, withTenant } from '../src/database/connection.js';
import { checkConsistency, rebuildUnchecked } from '../src/services/analytics.js';
import { createSubscription } from '../src/services/subscriptions.js';
import { loadTenant, recompute } from '../test/helpers/mrr-reference.js';
import { compactAll } from './metrics.js';

/** fetch, again on a dropped keep-alive connection (the server closes idle ones after 5 s). */
async function get(url: string, headers: Record<string, string>): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, { headers });
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentiles(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  return { count: sorted.length, p50: at(50), p95: at(95), max: sorted.at(-1) ?? NaN };
}
const formatTimes = (t: ReturnType<typeof percentiles>) =>
  `${t.count} reads: p50 ${t.p50.toFixed(1)} ms, p95 ${t.p95.toFixed(1)} ms, max ${t.max.toFixed(1)} ms`;

const dirtyCount = async (owner: Db, tenantId: string) =>
  (
    await sql<{ n: number }>`select count(*)::int as n from mrr_dirty where tenant_id = ${tenantId}`.execute(
      owner,
    )
  ).rows[0]!.n;

/** Creates subscriptions through the service from 4 loops until `stop`; their pace and latencies. */
function writeWhile(app: Db, tenantId: string, users: string[]) {
  let stopping = false;
  const latencies: number[] = [];
  const created: string[] = [];
  const started = performance.now();
  const loops = Promise.all(
    Array.from({ length: 4 }, async (_, loop) => {
      for (let i = 0; !stopping; i++) {
        const at = performance.now();
        const outcome = await createSubscription(
          { db: app },
          { tenantId, keyId: 'system' },
          {
            user_id: users[(loop * 7919 + i * 104_729) % users.length]!,
            status: 'active',
            plan_cost: `${10 + (i % 90)}.00`,
            start_date: '2026-01-15',
          },
        );
        if (outcome.kind !== 'created') throw new Error(`create: ${outcome.kind}`);
        created.push(outcome.subscription.id);
        latencies.push(performance.now() - at);
      }
    }),
  );
  return async () => {
    stopping = true;
    await loops;
    return {
      created,
      perSecond: created.length / ((performance.now() - started) / 1000),
      latency: percentiles(latencies),
    };
  };
}

/** Check and rebuild of the demo tenant; the rebuild with 4 writers creating subscriptions. */
export async function benchRebuild(owner: Db, app: Db, tenantId: string): Promise<string[]> {
  const actor = { tenantId, keyId: 'system' };
  const lines: string[] = [];
  let at = performance.now();
  const before = await checkConsistency({ db: owner }, actor);
  lines.push(
    `| GET /analytics/consistency (the service) | ${seconds(performance.now() - at)}, ${before.length} differences |`,
  );
  const users = await withTenant(owner, actor, async (trx) =>
    (await sql<{ id: string }>`select id from users tablesample system (1) limit 1000`.execute(trx)).rows.map(
      (r) => r.id,
    ),
  );
  const stopWriting = writeWhile(app, tenantId, users);
  at = performance.now();
  let lastPrinted = 0;
  await rebuildUnchecked({ db: owner }, actor, (stage, done, total) => {
    if (performance.now() - lastPrinted > 5000) {
      lastPrinted = performance.now();
      console.log(stage === 'reading' ? '  rebuild: reading' : `  rebuild: ${done} of ${total} customers`);
    }
  });
  const rebuilt = performance.now() - at;
  const writes = await stopWriting();
  lines.push(
    `| POST /analytics/rebuild without its check (the service), 4 writers meanwhile | ${seconds(rebuilt)}; writers: ${Math.round(writes.perSecond)} subscriptions/s, p95 ${writes.latency.p95.toFixed(0)} ms, max ${writes.latency.max.toFixed(0)} ms |`,
  );
  at = performance.now();
  const leftDirty = await dirtyCount(owner, tenantId);
  await compactAll(owner, tenantId);
  lines.push(
    `| compaction of what the writers changed during the rebuild | ${leftDirty} customers in ${seconds(performance.now() - at)} |`,
  );
  at = performance.now();
  const after = await checkConsistency({ db: owner }, actor);
  lines.push(
    `| consistency check after the rebuild and the writes | ${seconds(performance.now() - at)}, ${after.length} differences |`,
  );
  await withTenant(owner, actor, (trx) =>
    sql`delete from subscriptions where id = any(${writes.created}::uuid[])`.execute(trx),
  );
  await compactAll(owner, tenantId);
  if (before.length + after.length > 0)
    throw new Error(`differences: ${JSON.stringify([...before, ...after].slice(0, 5))}`);
  return lines;
}

/**
 * 100,000 subscriptions imported in batches of 5,000 (one statement each, triggers on: every new
 * customer is marked for compaction) while GET /metrics/mrr is timed; the server's worker compacts.
 */
export async function benchImport(
  base: string,
  headers: Record<string, string>,
  owner: Db,
  tenantId: string,
): Promise<string[]> {
  const month = (offset: number) => {
    const now = new Date();
    return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 7);
  };
  const url = `${base}/api/v1/metrics/mrr?from=${month(-23)}&to=${month(0)}`;
  type Phase = 'before' | 'during' | 'absorbing' | 'done';
  const state: { phase: Phase } = { phase: 'before' };
  const times = { during: [] as number[], absorbing: [] as number[], after: [] as number[] };
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const at = performance.now();
      const res = await get(url, headers);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`GET /metrics/mrr: ${res.status}`);
      const ms = performance.now() - at;
      if (state.phase === 'during') times.during.push(ms);
      else if (state.phase === 'absorbing') times.absorbing.push(ms);
      else if (state.phase === 'done') times.after.push(ms);
    }
  })();
  const run = Date.now();
  const started = performance.now();
  state.phase = 'during';
  for (let batch = 0; batch < 20; batch++) {
    await withTenant(owner, { tenantId }, async (trx) => {
      await sql`
        with u as (
          insert into users (name, email, region)
          select 'Imported ' || i, 'import-' || ${run} || '-' || ${batch} || '-' || i || '@example.com',
                 (array['DE', 'FR', 'US-CA', 'US-NY', null])[1 + i % 5]
          from generate_series(1, 1667) i
          returning id)
        insert into subscriptions (user_id, status, plan_cost, start_date)
        select u.id, 'active', (10 + (k * 7) % 90)::numeric + 0.99, current_date - (k % 700)
        from u, generate_series(1, 3) k`.execute(trx);
    });
  }
  const imported = performance.now() - started;
  state.phase = 'absorbing';
  while ((await dirtyCount(owner, tenantId)) > 0) await sleep(200);
  const absorbed = performance.now() - started;
  state.phase = 'done';
  await sleep(5000);
  reading = false;
  await reader;
  const lines = [
    `| import of 100,020 subscriptions for 33,340 new customers (20 statements) | ${seconds(imported)} |`,
    `| every imported customer compacted by the worker, from the import's start | ${seconds(absorbed)} (${Math.round(33_340 / (absorbed / 1000))} customers/s) |`,
    `| GET /metrics/mrr, 24 months, during the import | ${formatTimes(percentiles(times.during))} |`,
    `| the same, after the import until compacted | ${formatTimes(percentiles(times.absorbing))} |`,
    `| the same, the 5 s after | ${formatTimes(percentiles(times.after))} |`,
  ];
  // Gone again through the triggers, and compacted, so the demo tenant is as seeded.
  await withTenant(owner, { tenantId }, async (trx) => {
    await sql`delete from subscriptions s using users u
      where u.id = s.user_id and u.tenant_id = s.tenant_id and u.email like ${`import-${run}-%`}`.execute(
      trx,
    );
    await sql`delete from users where email like ${`import-${run}-%`}`.execute(trx);
  });
  await compactAll(owner, tenantId);
  return lines;
}

/** The API's 24 months against the independent recomputation, unfiltered and for one plan. */
export async function benchRecompute(
  base: string,
  headers: Record<string, string>,
  owner: Db,
  tenantId: string,
): Promise<string[]> {
  const month = (offset: number) => {
    const now = new Date();
    return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 7);
  };
  const [from, to] = [month(-23), month(0)];
  const at = performance.now();
  const subs = await loadTenant(owner, tenantId);
  const plan = (
    await withTenant(owner, { tenantId }, (trx) =>
      sql<{ id: string }>`select id from plans where code = 'standard-monthly'`.execute(trx),
    )
  ).rows[0]!.id;
  const lines: string[] = [];
  const filters: Array<Record<string, string>> = [{}, { plan_id: plan }];
  for (const filter of filters) {
    const query = new URLSearchParams({ from, to, ...filter }).toString();
    const res = await get(`${base}/api/v1/metrics/mrr?${query}`, headers);
    const api = (await res.json()) as { months: unknown[]; as_of: string };
    const churnRes = await get(`${base}/api/v1/metrics/churn?${query}`, headers);
    const churn = (await churnRes.json()) as { months: unknown[] };
    const reference = recompute(subs, filter, from, to, new Date(api.as_of));
    const same =
      JSON.stringify(api.months) === JSON.stringify(reference.mrr) &&
      JSON.stringify(churn.months) === JSON.stringify(reference.churn);
    if (!same) throw new Error(`the API and the recomputation differ for ${JSON.stringify(filter)}`);
    lines.push(
      `| 24 months of /metrics/mrr and /churn ${'plan_id' in filter ? 'for one plan' : 'unfiltered'} against the recomputation from the base tables | identical |`,
    );
  }
  lines.push(
    `| the recomputation itself (${subs.length} subscriptions loaded and counted twice) | ${seconds(performance.now() - at)} |`,
  );
  return lines;
}
