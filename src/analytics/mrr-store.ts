// The MRR engine's tables (db/migrations/202612030001_mrr_engine.ts): the daily sums it writes
// (mrr_days), what each customer is counted with (mrr_counted), and the customers waiting for
// compaction (mrr_dirty). Run inside the tenant's transaction (RLS), or on a connection scoped
// to the tenant (the rebuild).
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import { COLUMNS, type CustomerInput, type DayRows } from './mrr-engine.js';
import { decodeInput } from './mrr-input.js';

const TENANT = sql`current_setting('app.tenant_id')::uuid`;

/** The tenant's MRR lock: compaction and rebuild count one tenant at a time. */
export const MRR_LOCK = sql`hashtextextended('mrr:' || current_setting('app.tenant_id'), 0)`;

/** Takes the tenant's MRR lock for the transaction, or answers false at once if it is taken. */
export async function tryMrrLock(db: Db): Promise<boolean> {
  const { rows } = await sql<{
    locked: boolean;
  }>`select pg_try_advisory_xact_lock(${MRR_LOCK}) as locked`.execute(db);
  return rows[0]!.locked;
}

/**
 * A customer waiting for compaction: the subscriptions whose change marked it, or whole when it
 * must be counted again from all of its rows (db/migrations/202612030013).
 */
export interface DirtyCustomer {
  user: string;
  whole: boolean;
  subscriptions: string[];
}

const markColumns = sql`d.user_id, d.whole, coalesce((select array_agg(m.subscription_id::text)
  from mrr_dirty_subscriptions m where m.tenant_id = d.tenant_id and m.user_id = d.user_id), '{}') as subscriptions`;
type MarkRow = { user_id: string; whole: boolean; subscriptions: string[] };
const toDirty = (rows: MarkRow[]): DirtyCustomer[] =>
  rows.map((r) => ({ user: r.user_id, whole: r.whole, subscriptions: r.subscriptions }));

/** Customers waiting for compaction, in id order, at most `limit` (all without one). */
export async function dirtyCustomers(db: Db, limit?: number): Promise<DirtyCustomer[]> {
  const { rows } = await sql<MarkRow>`
    select ${markColumns} from mrr_dirty d
    order by d.user_id ${limit === undefined ? sql`` : sql`limit ${limit}`}`.execute(db);
  return toDirty(rows);
}

/** Up to `limit` marks no writer holds, locked until the transaction ends (compaction takes them). */
export async function takeDirtyCustomers(db: Db, limit: number): Promise<DirtyCustomer[]> {
  // A writer holds its customer's mark from its change to its commit, so no subscription mark of
  // a taken customer can commit before this transaction ends.
  const { rows } = await sql<MarkRow>`
    select ${markColumns} from mrr_dirty d
    order by d.user_id limit ${limit} for update of d skip locked`.execute(db);
  return toDirty(rows);
}

export async function clearMarks(db: Db, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await sql`delete from mrr_dirty_subscriptions where tenant_id = ${TENANT} and user_id = any (${userIds}::uuid[])`.execute(
    db,
  );
  await sql`delete from mrr_dirty where tenant_id = ${TENANT} and user_id = any (${userIds}::uuid[])`.execute(
    db,
  );
}

/**
 * Decoded counted inputs of large customers, by digest (md5 of the stored text, so never stale):
 * parsing a customer with thousands of subscriptions costs more than the rest of a read.
 * Least recently used first out; callers never change what it holds.
 */
const countedCache = new Map<string, CustomerInput>();
/** Inputs with fewer subscriptions are parsed each time; the cache holds at most CACHED_TOTAL. */
const CACHE_FROM = 10;
const CACHED_TOTAL = 100_000;
let cachedSubscriptions = 0;

export const digestOf = (encoded: string) => createHash('md5').update(encoded).digest('hex');

/** Keeps a decoded input under its digest, if it is large enough to be worth it. */
export function rememberCounted(digest: string, input: CustomerInput): void {
  const size = input.subscriptions.length;
  if (size < CACHE_FROM || size > CACHED_TOTAL || countedCache.has(digest)) return;
  countedCache.set(digest, input);
  cachedSubscriptions += size;
  for (const [key, old] of countedCache) {
    if (cachedSubscriptions <= CACHED_TOTAL) break;
    countedCache.delete(key);
    cachedSubscriptions -= old.subscriptions.length;
  }
}

function recall(digest: string): CustomerInput | undefined {
  const input = countedCache.get(digest);
  if (input) {
    countedCache.delete(digest);
    countedCache.set(digest, input);
  }
  return input;
}

/** What these customers are counted with now (absent: not counted). */
export async function loadCounted(db: Db, userIds: readonly string[]): Promise<Map<string, CustomerInput>> {
  const counted = new Map<string, CustomerInput>();
  if (userIds.length === 0) return counted;
  // The text only of inputs not in the cache.
  const { rows } = await sql<{ user_id: string; digest: string; input: string | null }>`
    select user_id, digest, case when digest = any (${[...countedCache.keys()]}::text[]) then null
                                 else input::text end as input
    from mrr_counted
    where tenant_id = ${TENANT} and user_id = any (${userIds}::uuid[])`.execute(db);
  for (const row of rows) {
    let input = row.input === null ? recall(row.digest) : undefined;
    if (!input) {
      // Evicted between the query and here: read alone.
      const text =
        row.input ??
        (
          await sql<{ input: string }>`select input::text as input from mrr_counted
            where tenant_id = ${TENANT} and user_id = ${row.user_id}::uuid`.execute(db)
        ).rows[0]!.input;
      input = decodeInput(text);
      rememberCounted(row.digest, input);
    }
    counted.set(row.user_id, input);
  }
  return counted;
}

const BATCH = 5_000;
/** Plain inserts take larger batches: no conflict to resolve. */
const INSERT_BATCH = 20_000;

/** Sets what customers are counted with: an encoded input, or null for no longer counted. */
export async function saveCounted(db: Db, entries: ReadonlyArray<[string, string | null]>): Promise<void> {
  const gone = entries.filter(([, input]) => input === null).map(([user]) => user);
  for (let i = 0; i < gone.length; i += BATCH) {
    await sql`delete from mrr_counted where tenant_id = ${TENANT}
      and user_id = any (${gone.slice(i, i + BATCH)}::uuid[])`.execute(db);
  }
  const kept = entries.filter((entry): entry is [string, string] => entry[1] !== null);
  for (let i = 0; i < kept.length; i += BATCH) {
    const batch = kept.slice(i, i + BATCH);
    await sql`
      insert into mrr_counted (user_id, input)
      select * from unnest(${batch.map(([user]) => user)}::uuid[], ${batch.map(([, input]) => input)}::json[])
      on conflict (tenant_id, user_id) do update set input = excluded.input`.execute(db);
  }
}

const slice = (rows: DayRows, from: number, to: number) => ({
  plan: rows.plan.slice(from, to),
  feature: rows.feature.slice(from, to),
  region: rows.region.slice(from, to),
  day: rows.day.slice(from, to),
  columns: rows.columns.map((c) => c.slice(from, to)),
});

const unnestDays = (rows: DayRows) => sql`unnest(${rows.plan}::uuid[], ${rows.feature}::uuid[],
  ${rows.region}::text[], ${rows.day}::date[], ${sql.join(rows.columns.map((c) => sql`${c}::bigint[]`))})`;

/** Adds the rows to mrr_days (a compaction's differences, or a rebuild's sums on emptied days). */
export async function addDays(db: Db, rows: DayRows): Promise<void> {
  const names = sql.join(COLUMNS.map((c) => sql.ref(c)));
  for (let i = 0; i < rows.day.length; i += BATCH) {
    const batch = slice(rows, i, i + BATCH);
    await sql`
      insert into mrr_days as d (plan_id, feature_id, region, day, ${names})
      select * from ${unnestDays(batch)}
      on conflict (tenant_id, plan_id, feature_id, region, day) do update set
        ${sql.join(COLUMNS.map((c) => sql`${sql.ref(c)} = ${sql.ref(`d.${c}`)} + ${sql.ref(`excluded.${c}`)}`))}`.execute(
      db,
    );
  }
}

/** Inserts the rows into mrr_days, whose cells they must not have (a rebuild, after emptying). */
export async function insertDays(db: Db, rows: DayRows): Promise<void> {
  const names = sql.join(COLUMNS.map((c) => sql.ref(c)));
  for (let i = 0; i < rows.day.length; i += INSERT_BATCH) {
    const batch = slice(rows, i, i + INSERT_BATCH);
    await sql`insert into mrr_days (plan_id, feature_id, region, day, ${names}) select * from ${unnestDays(batch)}`.execute(
      db,
    );
  }
}

/** The rows as a relation for a read: (day, the 14 columns), to union with mrr_days. */
export function daysRelation(rows: DayRows) {
  return sql`select day, ${sql.join(COLUMNS.map((c) => sql.ref(c)))} from ${unnestDays(rows)}
    as c (plan_id, feature_id, region, day, ${sql.join(COLUMNS.map((c) => sql.ref(c)))})`;
}
