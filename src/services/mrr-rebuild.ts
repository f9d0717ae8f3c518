// Counting a whole tenant with the MRR engine: the rebuild (POST /analytics/rebuild, make rebuild,
// the seed) and the consistency check. PostgreSQL builds every customer's input in one set-based
// statement (analytics/mrr-input.ts, everyInput: each table read once, no lookups per customer);
// the engine counts the inputs as a cursor hands them over.
//
// The rebuild never stops writers. It holds the tenant's MRR lock (so no compaction runs) for its
// transaction, and replaces the tenant's counted inputs and sums with those of one statement's
// snapshot. Writes after it marked their customers (mrr_dirty); those marks stay, and compaction
// counts those customers again afterwards, from the inputs the rebuild stored. Marks the snapshot
// saw are removed only if no write has touched them since (same xmin).
import { type RawBuilder, sql } from 'kysely';
import type { Schemas } from '../contract.js';
import { APP_ROLE, type Db, poolMax } from '../database/connection.js';
import { forEachBatch } from '../database/cursor.js';
import { exemptFromFeedHorizon } from '../queries/events.js';
import {
  Buckets,
  collapseCutoff,
  contribute,
  dayFromIso,
  type DayRows,
  Dimensions,
  forEachPackedCell,
  isoDate,
  packCells,
  storedDay,
  WIDTH,
} from '../analytics/mrr-engine.js';
import { decodeInput, encodeInput, everyInput, loadCustomers } from '../analytics/mrr-input.js';
import { type Counter, openCounter } from '../analytics/mrr-count-pool.js';
import {
  digestOf,
  dirtyCustomers,
  insertDays,
  loadCounted,
  MRR_LOCK,
  replaceCounted,
} from '../analytics/mrr-store.js';
import { recount } from '../analytics/mrr-counting.js';

/** Inputs per fetch from the cursor. */
const BATCH = 2_000;

/**
 * Where a rebuild or a check stands: PostgreSQL reading and encoding every input (one statement,
 * no finer progress), then the customers counted so far of about `total`; for the check, then
 * comparing (the count is over, the inputs now are still being compared with the stored ones).
 */
export type CountProgress = (
  stage: 'reading' | 'counting' | 'comparing',
  done: number,
  total: number,
) => void;

type Difference = Schemas['AnalyticsConsistency']['differences'][number];

/** The transaction's settings for one statement over a whole tenant: memory to sort and hash in, one process. */
async function scopeTo(db: Db, tenantId: string): Promise<void> {
  // No parallel workers: in the merge joins of that statement each worker aggregated every
  // version again, and the engine needs the other core meanwhile.
  await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true),
    set_config('work_mem', '256MB', true), set_config('max_parallel_workers_per_gather', '0', true)`.execute(
    db,
  );
}

/** Hands each row's input to the counter as the cursor hands the rows over; how many there were. */
async function feed(
  db: Db,
  query: RawBuilder<{ input: string }>,
  counter: Counter,
  total: number,
  progress: CountProgress | undefined,
): Promise<number> {
  let customers = 0;
  await forEachBatch(db, query, BATCH, async (rows) => {
    customers += rows.length;
    await counter.count(rows.map((row) => row.input));
    progress?.('counting', customers, Math.max(total, customers));
  });
  return customers;
}

/**
 * Counts each row's input, on threads for a large tenant: the mrr_days rows of every customer,
 * and what was counted.
 */
async function countRows(
  db: Db,
  query: RawBuilder<{ input: string }>,
  total: number,
  options: { progress?: CountProgress | undefined; threads?: number | undefined },
): Promise<{ rows: DayRows; customers: number; subscriptions: number }> {
  options.progress?.('reading', 0, total);
  const counter = openCounter(total, options.threads);
  try {
    const customers = await feed(db, query, counter, total, options.progress);
    const { rows, subscriptions } = await counter.finish(collapseCutoff());
    return { rows, customers, subscriptions };
  } finally {
    await counter.close();
  }
}

/**
 * Records a first version for subscriptions written without one (triggers off: the seed).
 * `skipTriggers` (a superuser's replica mode) skips the foreign key check of each row, which is
 * two thirds of the time: for the seed, whose subscriptions exist by construction.
 */
export async function recordMissingVersions(
  db: Db,
  tenantId: string,
  options: { skipTriggers?: boolean } = {},
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (options.skipTriggers) await sql`set local session_replication_role = replica`.execute(trx);
    await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`.execute(
      trx,
    );
    // Without history, a subscription had its status since it started, but a canceled one was
    // active until canceled_at (as the versions trigger records a subscription created canceled).
    await sql`
      insert into subscription_versions (subscription_id, valid_from, status, monthly_amount, plan_id)
      select s.id, s.created_at, case s.status when 'canceled' then 'active' else s.status end,
             subscription_monthly_amount(s.plan_cost, s.billing_interval, s.interval_count, s.discount, s.plan_id),
             s.plan_id
      from subscriptions s
      where s.tenant_id = ${tenantId} and s.test_clock_id is null
        and not exists (select from subscription_versions v where v.tenant_id = s.tenant_id and v.subscription_id = s.id)`.execute(
      trx,
    );
  });
}

export interface RebuildResult {
  customers: number;
  subscriptions: number;
  days: number;
  /** Customers whose marks stay: written after the snapshot, compaction counts them next. */
  leftDirty: number;
}

/** Replaces the tenant's MRR sums and counted inputs with a count of every customer. */
export async function rebuildMrr(
  db: Db,
  tenantId: string,
  options: { progress?: CountProgress; threads?: number } = {},
): Promise<RebuildResult> {
  await recordMissingVersions(db, tenantId);
  return db.transaction().execute(async (trx) => {
    await scopeTo(trx, tenantId);
    // Before the statement that reads: no compaction may commit between its snapshot and this
    // transaction's commit.
    await sql`select pg_advisory_xact_lock(${MRR_LOCK})`.execute(trx);
    // It records no event: the feed of every tenant need not wait minutes for it. Registered on
    // another connection of the pool: without one free in time, the feed waits, as before.
    const release = await exemptFromFeedHorizon(db, trx, `mrr rebuild of tenant ${tenantId}`).catch(
      () => undefined,
    );
    try {
      return await rebuildInTransaction(trx, tenantId, options);
    } finally {
      await release?.().catch(() => undefined);
    }
  });
}

async function rebuildInTransaction(
  trx: Db,
  tenantId: string,
  options: { progress?: CountProgress; threads?: number },
): Promise<RebuildResult> {
  options.progress?.('reading', 0, 0);
  const stored = await replaceCounted(trx);
  // The inputs just stored (this transaction's rows), counted: the same text a check compares.
  const counted = await countRows(
    trx,
    sql<{ input: string }>`select input::text as input from mrr_counted where tenant_id = ${tenantId}`,
    stored.customers,
    options,
  );
  await sql`delete from mrr_days where tenant_id = ${tenantId}`.execute(trx);
  const rows = counted.rows;
  await insertDays(trx, rows);
  const { rows: left } = await sql<{ left: number }>`
      with cleared as (
        delete from mrr_dirty d
        using unnest(${stored.seen.map((s) => s.user)}::uuid[], ${stored.seen.map((s) => s.version)}::text[])
          as seen (user_id, version)
        where d.tenant_id = ${tenantId} and d.user_id = seen.user_id and d.xmin::text = seen.version
        returning d.user_id),
      cleared_subscriptions as (
        delete from mrr_dirty_subscriptions m using cleared
        where m.tenant_id = ${tenantId} and m.user_id = cleared.user_id)
      select (select count(*)::int from mrr_dirty where tenant_id = ${tenantId}) - (select count(*)::int from cleared)
        as left`.execute(trx);
  return {
    customers: counted.customers,
    subscriptions: counted.subscriptions,
    days: rows.day.length,
    leftDirty: left[0]!.left,
  };
}

/**
 * mrr_days cells as a read sees them (maintained) against a count (recomputed), by plan,
 * feature, region and stored day (compaction adds daily rows where the rebuild stored a month's
 * sum). Sums are integers within 2^53 (the engine refuses larger ones), so exact as numbers; a
 * stored value beyond that can only differ.
 */
class CellComparison {
  readonly #cells = new Map<string, { maintained?: number[]; recomputed?: number[] }>();
  readonly #unsafe = new Set<string>();
  /** Stored day of a day (as dates): computed once per distinct day. */
  readonly #days = new Map<string | number, string>();
  constructor(private readonly cutoff: number) {}

  #cell(plan: string, feature: string, region: string, day: string | number) {
    let stored = this.#days.get(day);
    if (stored === undefined) {
      stored = isoDate(storedDay(typeof day === 'number' ? day : dayFromIso(day), this.cutoff));
      this.#days.set(day, stored);
    }
    const key = `${plan} ${feature} ${region} ${stored}`;
    let cell = this.#cells.get(key);
    if (!cell) this.#cells.set(key, (cell = {}));
    return { key, cell };
  }

  maintained(plan: string, feature: string, region: string, day: string, values: readonly string[]): void {
    const { key, cell } = this.#cell(plan, feature, region, day);
    const sums = (cell.maintained ??= new Array<number>(WIDTH).fill(0));
    for (let i = 0; i < WIDTH; i++) {
      sums[i]! += Number(values[i]);
      if (!Number.isSafeInteger(sums[i])) this.#unsafe.add(key);
    }
  }

  recomputed(plan: string, feature: string, region: string, day: number, values: ArrayLike<number>): void {
    const { cell } = this.#cell(plan, feature, region, day);
    const sums = (cell.recomputed ??= new Array<number>(WIDTH).fill(0));
    for (let i = 0; i < WIDTH; i++) sums[i]! += values[i]!;
  }

  differences(): Difference[] {
    const differences: Difference[] = [];
    const text = (sums: number[] | undefined) =>
      sums === undefined || sums.every((v) => v === 0) ? undefined : sums.join('/');
    for (const [key, { maintained, recomputed }] of this.#cells) {
      const have = text(maintained);
      const want = text(recomputed);
      if (have !== want || this.#unsafe.has(key))
        differences.push({
          aggregate: 'mrr_days',
          key,
          maintained: maintained?.join('/') ?? 'missing',
          recomputed: want ?? 'missing',
        });
    }
    return differences;
  }
}

/**
 * The MRR sums and counted inputs checked against a count of every customer now, in one
 * snapshot: the sums as reads see them (with the correction for customers waiting for
 * compaction) against the engine's count; each counted input not waiting for compaction against
 * the customer's input now (by digest).
 *
 * Two connections share the snapshot, so that counting starts at once instead of after the
 * time PostgreSQL spends building every input (at 500,000 subscriptions, 5 s of 14): one
 * counts the stored inputs (mrr_counted, read in table order) on the counting threads, while the
 * other builds every input now and compares digests, sending the text of an input only where it
 * differs from the stored one (the inputs of customers waiting for compaction are read apart).
 * The count of every input now is then the count of the stored ones, minus those of these
 * customers, plus their inputs now: the same sums (an input whose digest is the stored one is
 * the stored text).
 */
export async function checkMrr(
  db: Db,
  tenantId: string,
  options: { progress?: CountProgress; threads?: number } = {},
): Promise<Difference[]> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (first) => {
      await scopeTo(first, tenantId);
      const { rows: exported } = await sql<{
        snapshot: string;
      }>`select pg_export_snapshot() as snapshot`.execute(first);
      const marks = await dirtyCustomers(first);
      const dirty = new Set(marks.map((m) => m.user));
      const differences: Difference[] = [];
      const cutoff = collapseCutoff();
      const { rows: sizes } = await sql<{ customers: number }>`
      select count(*)::int as customers from mrr_counted where tenant_id = ${tenantId}`.execute(first);
      const total = sizes[0]!.customers;

      options.progress?.('reading', 0, total);
      const counter = openCounter(total, options.threads);
      try {
        // The stored inputs, counted on a second connection (the same snapshot)... A pool of one
        // connection (DB_POOL_SIZE=1) counts them on this one first, which takes longer.
        const countStored = (on: Db) =>
          feed(
            on,
            sql<{
              input: string;
            }>`select input::text as input from mrr_counted where tenant_id = ${tenantId}`,
            counter,
            total,
            options.progress,
          );
        const alone = (poolMax(db) ?? 2) < 2;
        if (alone) await countStored(first);
        const storedCounted = alone
          ? Promise.resolve()
          : db
              .transaction()
              .setIsolationLevel('repeatable read')
              .setAccessMode('read only')
              .execute(async (second) => {
                await sql`set transaction snapshot ${sql.lit(exported[0]!.snapshot)}`.execute(second);
                await scopeTo(second, tenantId);
                await countStored(second);
              });
        // ...while this one compares every input now with the stored one. The text of the inputs
        // that differ: `null` for a customer with nothing that counts now. Customers waiting for
        // compaction are read apart below: joining their marks here made PostgreSQL scan the
        // marks once per customer (it plans for none waiting).
        const now = new Map<string, string | null>();
        // The digests now of dirty customers, of their whole input, against what reads patch from their marks.
        const dirtyNow = new Map<string, string>();
        const compared = forEachBatch(
          first,
          sql<{ user_id: string; input: string | null; digest: string | null; stored: string | null }>`
          select user_id, digest, stored, case when digest is distinct from stored then input end as input
          from (
            select coalesce(e.user_id, c.user_id)::text as user_id, e.input, md5(e.input) as digest, c.digest as stored
            from (${everyInput}) e
            full join (select user_id, digest from mrr_counted where tenant_id = ${tenantId}) c on c.user_id = e.user_id) compared`,
          BATCH,
          (rows) => {
            for (const row of rows) {
              if (row.digest !== row.stored && !dirty.has(row.user_id)) {
                differences.push({
                  aggregate: 'mrr_counted',
                  key: row.user_id,
                  maintained: row.stored ?? 'missing',
                  recomputed: row.digest ?? 'missing',
                });
                now.set(row.user_id, row.input);
              }
            }
          },
          // Merge joins by subscription id, in the order of the tables' keys, instead of hashing
          // every subscription's versions and features: the statement alone took 6.1 s against
          // 6.8-8.1 s at 500,000 with this work_mem, 63.5 s against 74.0 s at 5,000,000 with the
          // default one (docs/scaling.md).
          { planWith: { enable_hashjoin: 'off' } },
        );
        if (options.progress) {
          const progress = options.progress;
          let comparedAll = false;
          const over = () => {
            comparedAll = true;
          };
          compared.then(over, over);
          // The comparison usually outlasts the count (at 5,000,000, by about 20 s): say so.
          storedCounted.then(
            () => comparedAll || progress('comparing', 0, 0),
            () => {},
          );
        }
        // Both run to their end before the threads stop (finally): neither is left waiting on them.
        const [comparing, counting] = await Promise.allSettled([compared, storedCounted]);
        if (comparing.status === 'rejected') throw comparing.reason;
        if (counting.status === 'rejected') throw counting.reason;
        // Customers waiting for compaction: their whole inputs now (in the same snapshot).
        const waiting = await loadCustomers(first, [...dirty]);
        for (const user of dirty) {
          const input = waiting.get(user);
          const text = input ? encodeInput(input) : null;
          dirtyNow.set(user, text === null ? 'missing' : digestOf(text));
          now.set(user, text);
        }
        const stored = await loadCounted(first, [...now.keys()]);
        const { parts } = await counter.finishPacked(cutoff);
        // The count of every input now: the stored inputs' count, minus those of the customers
        // whose input differs or waits, plus their inputs now.
        const apart = { dims: new Dimensions(), buckets: new Buckets() };
        for (const [user, text] of now) {
          const before = stored.get(user);
          if (before) contribute(before, apart.dims, apart.buckets, -1);
          if (text !== null) contribute(decodeInput(text), apart.dims, apart.buckets, 1);
        }
        const sums = new CellComparison(cutoff);
        for (const part of [...parts, packCells(apart.buckets, apart.dims, cutoff)])
          forEachPackedCell(part, (plan, feature, region, day, values) =>
            sums.recomputed(plan, feature, region, day, values),
          );

        // The sums as a read sees them: mrr_days, plus the correction for the dirty customers.
        const { rows: days } = await sql<Record<string, string>>`
        select plan_id, feature_id, region, day::text as day,
               concat_ws('/', mrr, customers, new_amount, new_count, reactivation_amount, reactivation_count,
                         expansion_amount, expansion_count, contraction_amount, contraction_count,
                         churn_amount, churn_count, nrr_base, nrr_num) as v
        from mrr_days where tenant_id = ${tenantId}`.execute(first);
        for (const d of days) sums.maintained(d.plan_id!, d.feature_id!, d.region!, d.day!, d.v!.split('/'));
        // The correction as reads compute it: a change the marks missed shows as a difference.
        const { rows: correction, current } = await recount(first, marks);
        for (const user of dirty) {
          const patched = current.get(user);
          const was = patched ? digestOf(encodeInput(patched)) : 'missing';
          const is = dirtyNow.get(user) ?? 'missing';
          if (was !== is)
            differences.push({ aggregate: 'mrr_counted', key: user, maintained: was, recomputed: is });
        }
        for (let i = 0; i < correction.day.length; i++)
          sums.maintained(
            correction.plan[i]!,
            correction.feature[i]!,
            correction.region[i]!,
            correction.day[i]!,
            correction.columns.map((c) => c[i]!),
          );
        differences.push(...sums.differences());
        return differences.sort(
          (a, b) => a.aggregate.localeCompare(b.aggregate) || a.key.localeCompare(b.key),
        );
      } finally {
        await counter.close();
      }
    });
}
