// What the MRR engine counts a customer from, read from the tables: the customer's region and
// subscriptions (not those on a test clock), each with its versions and today's feature links. By
// customer (compaction, corrections), or every customer at once, encoded by PostgreSQL (rebuild, check).
// Also the encoding of that input as stored in mrr_counted: what each customer is counted with.
import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { CustomerInput, EngineSubscription, Version } from './mrr-engine.js';

/** One subscription per row, its versions and features aggregated: the rows of a customer together. */
interface SubscriptionRow {
  id: string;
  user_id: string;
  region: string;
  start_ms: number;
  end_ms: number | null;
  canceled_ms: number | null;
  /** [valid_from ms, counts (1/0), cents, plan id or null] per version, in time order. */
  versions: Array<[number, number, number, string | null]>;
  /** Feature ids, comma-separated: a string splits faster than pg parses a uuid[]. */
  features: string | null;
}

/** A subscription's columns (SubscriptionRow but region, which the caller adds where it needs it). */
const subscriptionColumns = sql`s.id, s.user_id,
  extract(epoch from s.start_date::timestamp)::float8 * 1000 as start_ms,
  extract(epoch from (s.end_date + 1)::timestamp)::float8 * 1000 as end_ms,
  extract(epoch from s.canceled_at)::float8 * 1000 as canceled_ms,
  (select json_agg(json_build_array(extract(epoch from v.valid_from)::float8 * 1000,
                                    (v.status in ('active', 'past_due'))::int,
                                    (v.monthly_amount * 100)::bigint, v.plan_id) order by v.valid_from)
   from subscription_versions v where v.tenant_id = s.tenant_id and v.subscription_id = s.id) as versions,
  (select string_agg(f.feature_id::text, ',' order by f.feature_id) from subscription_features f
   where f.tenant_id = s.tenant_id and f.subscription_id = s.id) as features`;

function toSubscription(row: Omit<SubscriptionRow, 'region'>): EngineSubscription {
  return {
    id: row.id,
    start: row.start_ms,
    end: row.end_ms,
    canceledAt: row.canceled_ms,
    versions: row.versions.map(([at, counts, cents, planId]) => ({
      at,
      counts: counts === 1,
      cents: Number(cents),
      planId,
    })),
    features: row.features === null ? [] : row.features.split(','),
  };
}

function group(rows: SubscriptionRow[], into: Map<string, CustomerInput>): void {
  for (const row of rows) {
    // A subscription without versions was written with its triggers off (the seed): the rebuild
    // records its first version before reading; until then it counts nowhere.
    if (!row.versions) continue;
    let customer = into.get(row.user_id);
    if (!customer) into.set(row.user_id, (customer = { region: row.region, subscriptions: [] }));
    customer.subscriptions.push(toSubscription(row));
  }
}

/** These customers' inputs (absent: no subscription that counts). Inside the tenant's transaction. */
export async function loadCustomers(db: Db, userIds: readonly string[]): Promise<Map<string, CustomerInput>> {
  const customers = new Map<string, CustomerInput>();
  if (userIds.length === 0) return customers;
  // Lateral: key lookups per customer, whatever the tenant's size. As joins, the planner chose to
  // hash the tenant's whole subscriptions and users for a thousand customers (0.5 s at 500k).
  const { rows } = await sql<SubscriptionRow>`
    select coalesce(u.region, '') as region, ${subscriptionColumns}
    from unnest(${userIds}::uuid[]) as wanted (user_id)
    cross join lateral (
      select * from subscriptions s
      where s.tenant_id = current_setting('app.tenant_id')::uuid and s.user_id = wanted.user_id
        and s.test_clock_id is null) s
    cross join lateral (
      select u.region from users u where u.tenant_id = s.tenant_id and u.id = wanted.user_id) u`.execute(db);
  group(rows, customers);
  return customers;
}

/** Each customer's region now ('' when none). */
export async function loadRegions(db: Db, userIds: readonly string[]): Promise<Map<string, string>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await sql<{ id: string; region: string }>`
    select id, coalesce(region, '') as region from users
    where tenant_id = current_setting('app.tenant_id')::uuid and id = any (${userIds}::uuid[])`.execute(db);
  return new Map(rows.map((r) => [r.id, r.region]));
}

/**
 * These subscriptions as they count now, each for the customer that names it (a subscription
 * moved to another customer, deleted or put on a test clock is absent for the customer that
 * marked it): per customer, by subscription id.
 */
export async function loadSubscriptions(
  db: Db,
  marks: ReadonlyArray<{ user: string; subscriptions: readonly string[] }>,
): Promise<Map<string, Map<string, EngineSubscription>>> {
  const users = marks.flatMap((m) => m.subscriptions.map(() => m.user));
  const ids = marks.flatMap((m) => m.subscriptions);
  const found = new Map<string, Map<string, EngineSubscription>>();
  if (ids.length === 0) return found;
  // The customers' regions are read apart (loadRegions): no lookup of the user per subscription.
  const { rows } = await sql<Omit<SubscriptionRow, 'region'>>`
    select ${subscriptionColumns}
    from unnest(${users}::uuid[], ${ids}::uuid[]) as wanted (user_id, id)
    join subscriptions s on s.tenant_id = current_setting('app.tenant_id')::uuid and s.id = wanted.id
      and s.user_id = wanted.user_id and s.test_clock_id is null`.execute(db);
  for (const row of rows) {
    if (!row.versions) continue;
    let mine = found.get(row.user_id);
    if (!mine) found.set(row.user_id, (mine = new Map<string, EngineSubscription>()));
    mine.set(row.id, toSubscription(row));
  }
  return found;
}

/**
 * Every customer's input, as encodeInput writes it, built by PostgreSQL in one set-based statement
 * over the tenant of the transaction: (user_id, input text), one row per customer with a
 * subscription that counts. The rebuild stores these rows and the consistency check compares them,
 * so a whole tenant is read in sequential passes (each table once, joined by hash or merge) instead
 * of by key per customer, and never crosses the wire as rows to be encoded again.
 *
 * The text must equal encodeInput's byte for byte (test/api/metrics.test.ts checks it): numbers
 * as JavaScript prints them (float8 prints the same shortest digits; dates are whole days of
 * milliseconds, so integers), subscriptions by id, features by id, versions by time.
 */
export const everyInput = sql<{ user_id: string; input: string }>`
  select s.user_id,
         '{"r":' || to_json(coalesce(u.region, ''))::text || ',"s":[' || string_agg(s.encoded, ',' order by s.id) || ']}'
           as input
  from (
    select s.user_id, s.id,
           '["' || s.id || '",' || ((s.start_date - date '1970-01-01')::bigint * 86400000)::text || ','
             || coalesce(((s.end_date + 1 - date '1970-01-01')::bigint * 86400000)::text, 'null') || ','
             || coalesce((extract(epoch from s.canceled_at)::float8 * 1000)::text, 'null') || ',['
             || v.versions || '],[' || coalesce(f.features, '') || ']]' as encoded
    from subscriptions s
    join (
      select subscription_id,
             string_agg('[' || (extract(epoch from valid_from)::float8 * 1000)::text || ','
                          || (status in ('active', 'past_due'))::int || ',' || ((monthly_amount * 100)::bigint)::text
                          || ',' || coalesce('"' || plan_id || '"', 'null') || ']', ',' order by valid_from) as versions
      from subscription_versions where tenant_id = current_setting('app.tenant_id')::uuid
      group by subscription_id) v on v.subscription_id = s.id
    left join (
      select subscription_id, string_agg('"' || feature_id || '"', ',' order by feature_id) as features
      from subscription_features where tenant_id = current_setting('app.tenant_id')::uuid
      group by subscription_id) f on f.subscription_id = s.id
    where s.tenant_id = current_setting('app.tenant_id')::uuid and s.test_clock_id is null) s
  join users u on u.tenant_id = current_setting('app.tenant_id')::uuid and u.id = s.user_id
  group by s.user_id, u.region`;

/**
 * A customer's input as stored in mrr_counted: JSON, subscriptions in a fixed order (by id; by
 * start, then the rest, for inputs counted before ids were stored), so that equal inputs encode
 * equally.
 */
export function encodeInput(input: CustomerInput): string {
  const subscriptions = input.subscriptions.map(encodeSubscription).sort();
  return `{"r":${JSON.stringify(input.region)},"s":[${subscriptions.join(',')}]}`;
}

/** Subscriptions are never changed once read: a large customer's unchanged ones encode once. */
const encoded = new WeakMap<EngineSubscription, string>();
function encodeSubscription(s: EngineSubscription): string {
  let text = encoded.get(s);
  if (text === undefined) {
    text = JSON.stringify([
      ...(s.id === undefined ? [] : [s.id]),
      s.start,
      s.end,
      s.canceledAt,
      s.versions.map((v) => [v.at, v.counts ? 1 : 0, v.cents, v.planId]),
      s.features,
    ]);
    encoded.set(s, text);
  }
  return text;
}

type EncodedSubscription = [
  number,
  number | null,
  number | null,
  Array<[number, 0 | 1, number, string | null]>,
  string[],
];

export function decodeInput(text: string): CustomerInput {
  const { r, s } = JSON.parse(text) as {
    r: string;
    s: Array<EncodedSubscription | [string, ...EncodedSubscription]>;
  };
  // Plain loops and no spreads: the rebuild decodes every customer of a tenant with this.
  const subscriptions = new Array<EngineSubscription>(s.length);
  for (let i = 0; i < s.length; i++) {
    const encoded = s[i]!;
    const at = typeof encoded[0] === 'string' ? 1 : 0;
    const versions = encoded[at + 3] as EncodedSubscription[3];
    const decoded = new Array<Version>(versions.length);
    for (let j = 0; j < versions.length; j++) {
      const v = versions[j]!;
      decoded[j] = { at: v[0], counts: v[1] === 1, cents: v[2], planId: v[3] };
    }
    const subscription: EngineSubscription = {
      start: encoded[at] as number,
      end: encoded[at + 1] as number | null,
      canceledAt: encoded[at + 2] as number | null,
      versions: decoded,
      features: encoded[at + 4] as string[],
    };
    if (at === 1) subscription.id = encoded[0] as string;
    subscriptions[i] = subscription;
  }
  return { region: r, subscriptions };
}
