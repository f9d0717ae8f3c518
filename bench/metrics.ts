// The subscription metrics in `make bench`: latency of GET /metrics/mrr and /metrics/churn over
// a 24-month window, one request at a time, unfiltered and with each kind of filter, on the demo
// tenant; what maintaining them costs writes; and how fast compaction catches up.
import { sql } from 'kysely';
import { type Db, withTenant } from '../src/database/connection.js';
import { compactMetrics } from '../src/services/metrics.js';
import { createSubscription } from '../src/services/subscriptions.js';
import { formatLoad, type LoadResult, runLoad } from './load.js';

export interface MetricsLatency {
  label: string;
  result: LoadResult;
}

const month = (offset: number) => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 7);
};

/** One connection, 5 s per case, against a running server. */
export async function metricsLatencies(
  base: string,
  headers: Record<string, string>,
  owner: Db,
  tenantId: string,
): Promise<MetricsLatency[]> {
  const pick = async (query: ReturnType<typeof sql<{ id: string }>>) =>
    (await withTenant(owner, { tenantId }, (trx) => query.execute(trx))).rows[0]!.id;
  const plan = await pick(sql`select id from plans where code = 'standard-monthly'`);
  const feature = await pick(sql`select id from features order by name limit 1`);
  const window = `from=${month(-23)}&to=${month(0)}`;
  const cases: Array<[string, string]> = [
    ['MRR, no filter', `/api/v1/metrics/mrr?${window}`],
    ['MRR, plan_id', `/api/v1/metrics/mrr?${window}&plan_id=${plan}`],
    ['MRR, feature_id', `/api/v1/metrics/mrr?${window}&feature_id=${feature}`],
    ['MRR, region', `/api/v1/metrics/mrr?${window}&region=DE`],
    ['MRR, plan_id and region', `/api/v1/metrics/mrr?${window}&plan_id=${plan}&region=US-CA`],
    ['churn, no filter', `/api/v1/metrics/churn?${window}`],
    ['churn, feature_id and region', `/api/v1/metrics/churn?${window}&feature_id=${feature}&region=DE`],
    ['MRR, plan_id and feature_id', `/api/v1/metrics/mrr?${window}&plan_id=${plan}&feature_id=${feature}`],
  ];
  const results: MetricsLatency[] = [];
  for (const [label, path] of cases) {
    const result = await runLoad({
      url: base + path,
      headers,
      connections: 1,
      durationSeconds: 5,
      warmupSeconds: 1,
      timeoutSeconds: 300,
    });
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${label}: ${formatLoad(result)}`);
    results.push({ label, result });
  }
  return results;
}

/**
 * GET /metrics/mrr (24 months, no filter) while `dirty` customers await compaction, so every
 * read adds the engine's correction for them: against a server with JOBS=off, so nothing
 * compacts them meanwhile. Compacted afterwards. `whole`: the customers are marked whole (a mark
 * made by hand: each read counts them again from all their rows, the worst case); otherwise one
 * subscription of each is re-priced, so they are marked as writes mark them (the read counts
 * again what changed), and put back afterwards.
 */
export async function metricsWhileDirty(
  base: string,
  headers: Record<string, string>,
  owner: Db,
  tenantId: string,
  dirty: number,
  how: 'whole' | 'written' = 'whole',
): Promise<MetricsLatency> {
  const reprice = (by: number, ids: string[]) =>
    withTenant(owner, { tenantId }, (trx) =>
      sql`update subscriptions set plan_cost = plan_cost + ${by} where id = any (${ids}::uuid[])`.execute(
        trx,
      ),
    );
  let repriced: string[] = [];
  if (how === 'whole')
    await withTenant(owner, { tenantId }, (trx) =>
      sql`insert into mrr_dirty (tenant_id, user_id)
        select ${tenantId}::uuid, user_id from (select distinct user_id from subscriptions tablesample system (1)) s
        order by random() limit ${dirty}
        on conflict do nothing`.execute(trx),
    );
  else {
    repriced = await withTenant(owner, { tenantId }, async (trx) =>
      (
        await sql<{ id: string }>`
          select id from (select distinct on (user_id) id from subscriptions tablesample system (1)
                          where test_clock_id is null order by user_id, id) s
          order by random() limit ${dirty}`.execute(trx)
      ).rows.map((r) => r.id),
    );
    await reprice(1, repriced);
  }
  try {
    const url = `${base}/api/v1/metrics/mrr?from=${month(-23)}&to=${month(0)}`;
    // The first read after the marks counts every waiting customer again; later reads reuse
    // the parts of the customers whose marks did not change (src/analytics/mrr-counting.ts).
    const started = performance.now();
    const first = await fetch(url, { headers });
    await first.text();
    if (first.status !== 200) throw new Error(`dirty: the first read answered ${first.status}`);
    const firstMs = performance.now() - started;
    const result = await runLoad({ url, headers, connections: 1, durationSeconds: 5, warmupSeconds: 1 });
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`dirty: ${formatLoad(result)}`);
    const label =
      (how === 'whole'
        ? `MRR, no filter, ${dirty} customers awaiting compaction, marked whole (by hand)`
        : `MRR, no filter, ${dirty} customers awaiting compaction, each with a subscription re-priced`) +
      `; the first read after the marks ${firstMs.toFixed(0)} ms, then`;
    return { label, result };
  } finally {
    if (repriced.length > 0) await reprice(-1, repriced);
    await compactAll(owner, tenantId);
  }
}

/** Compacts the tenant in the worker's batches until no customer waits; how many it counted. */
export async function compactAll(owner: Db, tenantId: string): Promise<number> {
  let count = 0;
  for (let done = -1; done !== 0;) {
    done = await compactMetrics({ db: owner }, tenantId, 1000);
    if (done > 0) count += done;
  }
  return count;
}

/** Compaction's pace: every customer of the tenant marked dirty, compacted in the worker's batches. */
export async function compactionRate(owner: Db, tenantId: string): Promise<number> {
  const start = performance.now();
  const count = await compactAll(owner, tenantId);
  return count / ((performance.now() - start) / 1000);
}

export function formatMetricsLatencies(latencies: MetricsLatency[]): string {
  return [
    '| GET /metrics, 24 months, 1 connection, 5 s each | |',
    '| --- | --- |',
    ...latencies.map(({ label, result }) => `| ${label} | ${formatLoad(result)} |`),
  ].join('\n');
}

export interface WriteCosts {
  /** Writes per second in each configuration, per round. */
  all: number[];
  withoutMrr: number[];
  withoutAggregates: number[];
}

/** Rounds of the three configurations, each round in the reverse order of the one before. */
const COST_ROUNDS = 6;

/**
 * POST /subscriptions' write path without HTTP (the service: the insert, its event, every
 * trigger), 8 at once for `seconds`, for customers drawn from `users`: with every aggregate, then
 * without the MRR triggers, then without any aggregate trigger, in rounds. Writes per second.
 */
export async function subscriptionWriteCosts(
  owner: Db,
  app: Db,
  actor: { tenantId: string; keyId: string },
  users: string[],
  seconds = 2,
): Promise<WriteCosts> {
  const run = async () => {
    let done = 0;
    const until = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: 8 }, async (_, loop) => {
        for (let i = 0; performance.now() < until; i++) {
          const outcome = await createSubscription({ db: app }, actor, {
            user_id: users[(loop * 7919 + i * 104_729) % users.length]!,
            status: 'active',
            plan_cost: `${10 + (i % 90)}.00`,
            start_date: '2026-01-15',
          });
          if (outcome.kind !== 'created') throw new Error(`create: ${outcome.kind}`);
          done++;
        }
      }),
    );
    return done / seconds;
  };
  const triggers = async (action: 'enable' | 'disable', names: string[]) => {
    for (const name of names)
      await sql.raw(`alter table subscriptions ${action} trigger ${name}`).execute(owner);
  };
  const mrr = ['mrr_subscriptions_insert', 'mrr_subscriptions_insert_then_subscriptions'];
  const aggregates = ['subscriptions_aggregates_insert'];
  const off: Record<keyof WriteCosts, string[]> = {
    all: [],
    withoutMrr: mrr,
    withoutAggregates: [...mrr, ...aggregates],
  };
  const measure = async (name: keyof WriteCosts) => {
    await triggers('disable', off[name]);
    try {
      return await run();
    } finally {
      await triggers('enable', off[name]);
    }
  };
  // This machine's speed drifts by ±20% within a minute: each round compares the three side by
  // side, in an order that alternates (A B C, then C B A), and the costs are the rounds' median.
  const names = ['all', 'withoutMrr', 'withoutAggregates'] as const;
  const rates: WriteCosts = { all: [], withoutMrr: [], withoutAggregates: [] };
  await run(); // warm-up: plans prepared, pages cached
  for (let round = 0; round < COST_ROUNDS; round++)
    for (const name of round % 2 === 0 ? names : [...names].reverse()) rates[name].push(await measure(name));
  return rates;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export function formatWriteCosts(costs: WriteCosts, compacted: number): string {
  // Each round's cost against the same round without any aggregate trigger; their median, and range.
  const cost = (name: 'all' | 'withoutMrr') => {
    const each = costs[name].map(
      (rate, i) => (100 * (costs.withoutAggregates[i]! - rate)) / costs.withoutAggregates[i]!,
    );
    return `${Math.round(median(each))}% (rounds: ${Math.round(Math.min(...each))}% to ${Math.round(Math.max(...each))}%)`;
  };
  return [
    `| create a subscription (the service, 8 at once), 10,000 customers: ${COST_ROUNDS} rounds of 2 s per configuration, alternating order; medians | writes/s | cost vs no aggregates |`,
    '| --- | --- | --- |',
    `| no aggregate triggers | ${Math.round(median(costs.withoutAggregates))} | |`,
    `| GET /analytics aggregates only (before the metrics) | ${Math.round(median(costs.withoutMrr))} | ${cost('withoutMrr')} |`,
    `| every aggregate (analytics + MRR marks) | ${Math.round(median(costs.all))} | ${cost('all')} |`,
    `| compaction of marked customers, worker-side (customers/s) | ${Math.round(compacted)} | |`,
  ].join('\n');
}
