// Counting a whole tenant with the MRR engine: the rebuild (POST /analytics/rebuild, make rebuild,
// the seed) and the consistency check. Customers are read in ranges of ids on several connections
// that share one snapshot (pg_export_snapshot), and counted as they arrive.
//
// The rebuild never stops writers. It holds the tenant's MRR lock (so no compaction runs) from
// before its snapshot to its commit, and replaces the tenant's sums and counted inputs with those
// of the snapshot. Writes after the snapshot marked their customers (mrr_dirty); those marks stay,
// and compaction counts those customers again afterwards, from the inputs the rebuild stored.
// Marks the snapshot saw are removed only if no write has touched them since (same xmin).
import { sql } from 'kysely';
import type { Schemas } from '../contract.js';
import { APP_ROLE, type Db } from '../database/connection.js';
import {
  Buckets,
  collapseCutoff,
  contribute,
  type CustomerInput,
  dayFromIso,
  Dimensions,
  isoDate,
  storedDay,
  toDayRows,
} from '../analytics/mrr-engine.js';
import { encodeInput, loadCustomerRange } from '../analytics/mrr-input.js';
import { dirtyCustomers, insertDays, MRR_LOCK, saveCounted } from '../analytics/mrr-store.js';
import { recount } from '../analytics/mrr-counting.js';
import { createHash } from 'node:crypto';

/** Customers per range read: large enough to amortize a query, small enough to keep both busy. */
const RANGE = 5_000;
/** Ranges the readers may count ahead of the writer storing their inputs. */
const STORE_AHEAD = 4;

export interface CountProgress {
  (customersDone: number, customersTotal: number): void;
}

type Difference = Schemas['AnalyticsConsistency']['differences'][number];

/** Runs fn with `count` connections in one repeatable-read snapshot of the tenant, read only. */
async function inSnapshot<T>(
  db: Db,
  tenantId: string,
  count: number,
  fn: (readers: Db[]) => Promise<T>,
): Promise<T> {
  const releases: Array<() => void> = [];
  const readers: Db[] = [];
  const opened: Array<Promise<void>> = [];
  let snapshot: string | undefined;
  let ready!: (id: string) => void;
  const exported = new Promise<string>((resolve) => (ready = resolve));
  try {
    for (let i = 0; i < count; i++) {
      opened.push(
        new Promise<void>((resolveOpen, rejectOpen) => {
          void db
            .connection()
            .execute(async (conn) => {
              await sql`begin isolation level repeatable read read only`.execute(conn);
              if (i === 0) {
                const { rows } = await sql<{ id: string }>`select pg_export_snapshot() as id`.execute(conn);
                snapshot = rows[0]!.id;
                ready(snapshot);
              } else await sql`set transaction snapshot ${sql.lit(await exported)}`.execute(conn);
              await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`.execute(
                conn,
              );
              readers[i] = conn;
              let release!: () => void;
              const released = new Promise<void>((resolve) => (release = resolve));
              releases.push(release);
              resolveOpen();
              await released;
              await sql`commit`.execute(conn);
            })
            .catch(rejectOpen);
        }),
      );
    }
    await Promise.all(opened);
    return await fn(readers);
  } finally {
    for (const release of releases) release();
  }
}

/**
 * Every customer of the tenant, counted into `buckets`, range after range on the readers; each
 * range's inputs also go to onRange (the rebuild stores them). Returns customers and subscriptions.
 */
async function countTenant(
  readers: Db[],
  tenantId: string,
  buckets: Buckets,
  dims: Dimensions,
  onRange: (customers: Map<string, CustomerInput>) => void | Promise<void>,
  progress?: CountProgress,
): Promise<{ customers: number; subscriptions: number }> {
  const first = readers[0]!;
  const { rows: starts } = await sql<{ id: string | null; total: number }>`
    select (select count(*)::int from users where tenant_id = ${tenantId}) as total, null::uuid as id
    union all
    select 0, id from (select id, row_number() over (order by id) as n from users where tenant_id = ${tenantId}) x
    where n % ${RANGE} = 0`.execute(first);
  const total = starts[0]!.total;
  const ranges = starts.map((r) => r.id); // null: from the first customer
  let next = 0;
  let customersDone = 0;
  let subscriptions = 0;
  let counted = 0;
  const work = async (reader: Db) => {
    while (next < ranges.length) {
      const after = ranges[next++]!;
      const range = await loadCustomerRange(reader, tenantId, after, RANGE);
      for (const input of range.customers.values()) {
        contribute(input, dims, buckets, 1);
        subscriptions += input.subscriptions.length;
      }
      counted += range.customers.size;
      await onRange(range.customers);
      customersDone += range.users;
      progress?.(customersDone, total);
    }
  };
  await Promise.all(readers.map(work));
  return { customers: counted, subscriptions };
}

/** Records a first version for subscriptions written without one (triggers off: the seed). */
async function recordMissingVersions(db: Db, tenantId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
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

/**
 * Replaces the tenant's MRR sums and counted inputs with a count of every customer. `db` needs
 * `readers` + 1 free connections (the owner's pool, or the app's).
 */
export async function rebuildMrr(
  db: Db,
  tenantId: string,
  options: { readers?: number; progress?: CountProgress } = {},
): Promise<RebuildResult> {
  await recordMissingVersions(db, tenantId);
  return db.connection().execute(async (writer) => {
    await sql`begin`.execute(writer);
    try {
      await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`.execute(
        writer,
      );
      // Before the snapshot: no compaction may commit between it and this transaction's commit.
      await sql`select pg_advisory_xact_lock(${MRR_LOCK})`.execute(writer);
      await sql`delete from mrr_counted where tenant_id = ${tenantId}`.execute(writer);
      const dims = new Dimensions();
      const buckets = new Buckets();
      const result = await inSnapshot(db, tenantId, options.readers ?? 2, async (readers) => {
        const { rows: seen } = await sql<{ user_id: string; version: string }>`
          select user_id, xmin::text as version from mrr_dirty where tenant_id = ${tenantId}`.execute(
          readers[0]!,
        );
        // The writer stores each range's inputs (one statement at a time) while the readers go on,
        // up to a few ranges ahead of it: a reader waits only when the writer falls behind.
        let storing: Promise<void> = Promise.resolve();
        const pending: Array<Promise<void>> = [];
        const counted = await countTenant(
          readers,
          tenantId,
          buckets,
          dims,
          (customers) => {
            const entries = [...customers].map(([user, input]): [string, string] => [
              user,
              encodeInput(input),
            ]);
            storing = storing.then(() => saveCounted(writer, entries));
            storing.catch(() => {}); // awaited at the end; meanwhile not an unhandled rejection
            pending.push(storing);
            return pending.length > STORE_AHEAD ? pending[pending.length - 1 - STORE_AHEAD] : undefined;
          },
          options.progress,
        );
        await storing;
        return { ...counted, seen };
      });
      await sql`delete from mrr_days where tenant_id = ${tenantId}`.execute(writer);
      const rows = toDayRows(buckets, dims);
      await insertDays(writer, rows);
      const { rows: left } = await sql<{ left: number }>`
        with cleared as (
          delete from mrr_dirty d
          using unnest(${result.seen.map((s) => s.user_id)}::uuid[], ${result.seen.map((s) => s.version)}::text[])
            as seen (user_id, version)
          where d.tenant_id = ${tenantId} and d.user_id = seen.user_id and d.xmin::text = seen.version
          returning d.user_id),
        cleared_subscriptions as (
          delete from mrr_dirty_subscriptions m using cleared
          where m.tenant_id = ${tenantId} and m.user_id = cleared.user_id)
        select (select count(*)::int from mrr_dirty where tenant_id = ${tenantId}) - (select count(*)::int from cleared)
          as left`.execute(writer);
      await sql`commit`.execute(writer);
      return {
        customers: result.customers,
        subscriptions: result.subscriptions,
        days: rows.day.length,
        leftDirty: left[0]!.left,
      };
    } catch (error) {
      await sql`rollback`.execute(writer).catch(() => {});
      throw error;
    }
  });
}

const digest = (text: string) => createHash('md5').update(text).digest('hex');

/**
 * The MRR sums and counted inputs checked against a count of every customer now, in one
 * snapshot: the sums as reads see them (with the correction for customers waiting for
 * compaction) against the engine's count; each counted input not waiting for compaction against
 * the customer's input now.
 */
export async function checkMrr(
  db: Db,
  tenantId: string,
  options: { readers?: number; progress?: CountProgress } = {},
): Promise<Difference[]> {
  return inSnapshot(db, tenantId, options.readers ?? 2, async (readers) => {
    const first = readers[0]!;
    const marks = await dirtyCustomers(first);
    const dirty = new Set(marks.map((m) => m.user));
    // The inputs now of dirty customers, read whole, against what reads patch from their marks.
    const dirtyNow = new Map<string, string>();
    const { rows: digests } = await sql<{ user_id: string; digest: string }>`
      select user_id, digest from mrr_counted where tenant_id = ${tenantId}`.execute(first);
    const stored = new Map(digests.map((r) => [r.user_id, r.digest]));
    const differences: Difference[] = [];
    const expectedDims = new Dimensions();
    const expected = new Buckets();
    await countTenant(
      readers,
      tenantId,
      expected,
      expectedDims,
      (customers) => {
        for (const [user, input] of customers) {
          const was = stored.get(user);
          stored.delete(user);
          const now = digest(encodeInput(input));
          if (dirty.has(user)) {
            dirtyNow.set(user, now);
            continue;
          }
          if (was !== now)
            differences.push({
              aggregate: 'mrr_counted',
              key: user,
              maintained: was ?? 'missing',
              recomputed: now,
            });
        }
      },
      options.progress,
    );
    for (const [user, was] of stored)
      if (!dirty.has(user))
        differences.push({ aggregate: 'mrr_counted', key: user, maintained: was, recomputed: 'missing' });

    // The sums as a read sees them: mrr_days, plus the correction for the dirty customers.
    const maintained = new Map<string, string>();
    // Keys by stored day: compaction adds daily rows where the rebuild stored a month's sum.
    const cutoff = collapseCutoff();
    const key = (plan: string, feature: string, region: string, day: string) =>
      `${plan} ${feature} ${region} ${isoDate(storedDay(dayFromIso(day), cutoff))}`;
    const add = (k: string, values: string[]) => {
      const before = maintained.get(k)?.split('/').map(BigInt);
      maintained.set(k, values.map((v, i) => String(BigInt(v) + (before?.[i] ?? 0n))).join('/'));
    };
    const { rows: days } = await sql<Record<string, string>>`
      select plan_id, feature_id, region, day::text as day,
             concat_ws('/', mrr, customers, new_amount, new_count, reactivation_amount, reactivation_count,
                       expansion_amount, expansion_count, contraction_amount, contraction_count,
                       churn_amount, churn_count, nrr_base, nrr_num) as v
      from mrr_days where tenant_id = ${tenantId}`.execute(first);
    for (const d of days) add(key(d.plan_id!, d.feature_id!, d.region!, d.day!), d.v!.split('/'));
    // The correction as reads compute it: a change the marks missed shows as a difference.
    const { rows: correction, current } = await recount(first, marks);
    for (const user of dirty) {
      const patched = current.get(user);
      const was = patched ? digest(encodeInput(patched)) : 'missing';
      const now = dirtyNow.get(user) ?? 'missing';
      if (was !== now)
        differences.push({ aggregate: 'mrr_counted', key: user, maintained: was, recomputed: now });
    }
    for (let i = 0; i < correction.day.length; i++)
      add(
        key(correction.plan[i]!, correction.feature[i]!, correction.region[i]!, correction.day[i]!),
        correction.columns.map((c) => c[i]!),
      );
    const zero = (v: string) => v.split('/').every((x) => x === '0');
    const rows = toDayRows(expected, expectedDims, cutoff);
    for (let i = 0; i < rows.day.length; i++) {
      const k = key(rows.plan[i]!, rows.feature[i]!, rows.region[i]!, rows.day[i]!);
      const recomputed = rows.columns.map((c) => c[i]!).join('/');
      const have = maintained.get(k);
      maintained.delete(k);
      if (have !== recomputed && !(have === undefined && zero(recomputed)))
        differences.push({ aggregate: 'mrr_days', key: k, maintained: have ?? 'missing', recomputed });
    }
    for (const [k, have] of maintained)
      if (!zero(have))
        differences.push({ aggregate: 'mrr_days', key: k, maintained: have, recomputed: 'missing' });
    return differences.sort((a, b) => a.aggregate.localeCompare(b.aggregate) || a.key.localeCompare(b.key));
  });
}
