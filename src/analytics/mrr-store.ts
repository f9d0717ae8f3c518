// The MRR engine's tables (db/migrations/202612030001_mrr_engine.ts): the daily sums it writes
// (mrr_days), what each customer is counted with (mrr_counted), and the customers waiting for
// compaction (mrr_dirty). Run inside the tenant's transaction (RLS), or on a connection scoped
// to the tenant (the rebuild).
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import { COLUMNS, type CustomerInput, type DayRows } from './mrr-engine.js';
import { decodeInput, everyInput } from './mrr-input.js';

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
  /**
   * As dirtyCustomers reads them: the mark's version (the xmin of its row, which each marking
   * transaction rewrites, with the time it was marked at, in case xids wrap around) and the digest
   * of what the customer is counted with (null: nothing).
   */
  version?: string;
  digest?: string | null;
}

type MarkRow = { user_id: string; whole: boolean; subscriptions: string[] };
const toDirty = (rows: MarkRow[]): DirtyCustomer[] =>
  rows.map((r) => ({ user: r.user_id, whole: r.whole, subscriptions: r.subscriptions }));

/**
 * The marks, with their subscriptions joined in one pass: a lookup per mark could be planned as
 * a scan of the whole (busy, often just emptied) table per customer.
 */
const withSubscriptions = (marks: ReturnType<typeof sql>) => sql<MarkRow>`
  with marks as (${marks})
  select marks.user_id, marks.whole,
         coalesce(array_agg(m.subscription_id::text) filter (where m.subscription_id is not null), '{}') as subscriptions
  from marks left join mrr_dirty_subscriptions m on m.tenant_id = ${TENANT} and m.user_id = marks.user_id
  group by marks.user_id, marks.whole
  order by marks.user_id`;

/**
 * Every customer waiting for compaction, in id order, with its mark's version and counted digest
 * (what a read's correction of it depends on). Two statements without a join, put together here:
 * the marks tables are emptied and refilled all day, and joined, a thousand marks took 0.4 s as
 * the server ran the statement (prepared) where its EXPLAIN ANALYZE took 7 ms: a plan kept from
 * while the tables were empty, most likely.
 */
export async function dirtyCustomers(db: Db): Promise<DirtyCustomer[]> {
  // Sent together (the connection is pipelined), in one snapshot (the caller's transaction).
  const [{ rows: marks }, { rows: marked }] = await Promise.all([
    sql<{ user_id: string; whole: boolean; version: string; digest: string | null }>`
      select d.user_id, d.whole, d.xmin::text || ' ' || d.marked_at::text as version,
             (select c.digest from mrr_counted c where c.tenant_id = ${TENANT} and c.user_id = d.user_id) as digest
      from mrr_dirty d where d.tenant_id = ${TENANT} order by d.user_id`.execute(db),
    sql<{ user_id: string; subscription_id: string }>`
      select user_id, subscription_id::text as subscription_id from mrr_dirty_subscriptions
      where tenant_id = ${TENANT}`.execute(db),
  ]);
  const subscriptions = new Map<string, string[]>();
  for (const { user_id, subscription_id } of marked) {
    const ids = subscriptions.get(user_id);
    if (ids) ids.push(subscription_id);
    else subscriptions.set(user_id, [subscription_id]);
  }
  return marks.map((m) => ({
    user: m.user_id,
    whole: m.whole,
    // In id order: a read keeps its parts by these.
    subscriptions: subscriptions.get(m.user_id)?.sort() ?? [],
    version: m.version,
    digest: m.digest,
  }));
}

/** Up to `limit` marks no writer holds, locked until the transaction ends (compaction takes them). */
export async function takeDirtyCustomers(db: Db, limit: number): Promise<DirtyCustomer[]> {
  // A writer holds its customer's mark from its change to its commit, so no subscription mark of
  // a taken customer can commit before this transaction ends.
  const { rows: taken } = await sql<{ user_id: string; whole: boolean }>`
    select user_id, whole from mrr_dirty order by user_id limit ${limit} for update skip locked`.execute(db);
  if (taken.length === 0) return [];
  // The marked subscriptions in a statement of their own, after the locks: one that commits
  // between a statement's snapshot and its lock is locked (the lock follows the writer's update of
  // the mark) but invisible to that snapshot, and clearMarks would delete it unread.
  const { rows } = await withSubscriptions(
    sql`select * from unnest(${taken.map((t) => t.user_id)}::uuid[], ${taken.map((t) => t.whole)}::boolean[])
      as taken (user_id, whole)`,
  ).execute(db);
  return toDirty(rows);
}

/**
 * Replaces every counted input of the tenant with its input now (everyInput), in one statement,
 * and answers with the marks that statement saw: the inputs and the marks are of one snapshot.
 * Hold the tenant's MRR lock from before it until the transaction ends.
 */
export async function replaceCounted(
  db: Db,
): Promise<{ customers: number; seen: Array<{ user: string; version: string }> }> {
  await sql`delete from mrr_counted where tenant_id = ${TENANT}`.execute(db);
  const { rows } = await sql<{ customers: number; users: string[]; versions: string[] }>`
    with seen as (select user_id, xmin::text as version from mrr_dirty where tenant_id = ${TENANT}),
    stored as (insert into mrr_counted (user_id, input) select user_id, input::json from (${everyInput}) e returning 1)
    select (select count(*)::int from stored) as customers,
           coalesce((select array_agg(user_id::text order by user_id) from seen), '{}') as users,
           coalesce((select array_agg(version order by user_id) from seen), '{}') as versions`.execute(db);
  const { customers, users, versions } = rows[0]!;
  return { customers, seen: users.map((user, i) => ({ user, version: versions[i]! })) };
}

export async function clearMarks(db: Db, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  // Sent together (the connection is pipelined): one round trip.
  await Promise.all([
    sql`delete from mrr_dirty_subscriptions where tenant_id = ${TENANT} and user_id = any (${userIds}::uuid[])`.execute(
      db,
    ),
    sql`delete from mrr_dirty where tenant_id = ${TENANT} and user_id = any (${userIds}::uuid[])`.execute(db),
  ]);
}

/**
 * Decoded counted inputs, by digest (md5 of the stored text, so never stale): parsing a customer
 * with thousands of subscriptions costs more than the rest of a read, and a read corrects for the
 * same waiting customers again and again until they are compacted (with their series, memoized on
 * the input, parsing and deriving them again was a third of such a read). With each, the customer
 * it was stored for, whose latest digest `cachedFor` holds. Least recently used first out; callers
 * never change what it holds.
 */
const countedCache = new Map<string, { user: string; input: CustomerInput }>();
const cachedFor = new Map<string, string>();
/**
 * Compaction keeps only inputs of at least CACHE_FROM subscriptions (compacting an import would
 * otherwise push every large one out for customers nobody reads); reads keep every one. The cache
 * holds at most CACHED_TOTAL subscriptions.
 */
const CACHE_FROM = 10;
const CACHED_TOTAL = 100_000;
let cachedSubscriptions = 0;

export const digestOf = (encoded: string) => createHash('md5').update(encoded).digest('hex');

/**
 * Keeps a customer's decoded input under its digest: any input for a read (`anySize`), else one
 * large enough to be worth it.
 */
export function rememberCounted(user: string, digest: string, input: CustomerInput, anySize = false): void {
  const size = input.subscriptions.length;
  if ((size < CACHE_FROM && !anySize) || size > CACHED_TOTAL || countedCache.has(digest)) return;
  countedCache.set(digest, { user, input });
  cachedFor.set(user, digest);
  cachedSubscriptions += size;
  for (const [key, old] of countedCache) {
    if (cachedSubscriptions <= CACHED_TOTAL) break;
    countedCache.delete(key);
    if (cachedFor.get(old.user) === key) cachedFor.delete(old.user);
    cachedSubscriptions -= old.input.subscriptions.length;
  }
}

function recall(digest: string): CustomerInput | undefined {
  const entry = countedCache.get(digest);
  if (entry) {
    countedCache.delete(digest);
    countedCache.set(digest, entry);
  }
  return entry?.input;
}

/**
 * What these customers are counted with now (absent: not counted). `forRead`: every input parsed
 * is kept (rememberCounted's anySize).
 */
export async function loadCounted(
  db: Db,
  userIds: readonly string[],
  forRead = false,
): Promise<Map<string, CustomerInput>> {
  const counted = new Map<string, CustomerInput>();
  if (userIds.length === 0) return counted;
  // The text only where the digest is not the one cached for the customer (joined, not "= any"
  // over every cached digest: that compared each row with the whole cache).
  const { rows } = await sql<{ user_id: string; digest: string; input: string | null }>`
    select c.user_id, c.digest, case when c.digest = k.digest then null else c.input::text end as input
    from unnest(${userIds}::uuid[], ${userIds.map((u) => cachedFor.get(u) ?? '')}::text[]) as k (user_id, digest)
    join mrr_counted c on c.tenant_id = ${TENANT} and c.user_id = k.user_id`.execute(db);
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
      rememberCounted(row.user_id, row.digest, input, forRead);
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
