// Wallets, their grants and holds, and the ledger (db/migrations/202612030006_wallets.ts). Every
// function that changes credits runs on a wallet locked by lockWallet (the caller's transaction).
import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { GrantRow, HoldRow, LedgerRow, WalletRow } from '../database/schema.js';

export type { GrantRow, HoldRow, LedgerRow, WalletRow };

export interface Balances {
  available: string;
  held: string;
}

const TENANT = sql`current_setting('app.tenant_id')::uuid`;
const walletColumns = sql`w.id, w.user_id, w.name, trim_scale(w.rate)::text as rate,
  trim_scale(w.low_balance_threshold)::text as low_balance_threshold, trim_scale(w.overdraft_limit)::text as overdraft_limit, w.pays_usage, w.blocks_usage, w.test_clock_id, w.version, w.created_at,
  w.updated_at`;
const grantColumns = sql`g.id, g.wallet_id, g.kind, trim_scale(g.credits)::text as credits, trim_scale(g.remaining)::text as remaining,
  trim_scale(g.reserved)::text as reserved, g.priority, g.expires_at, g.expired_at, g.amount::text as amount, g.invoice_id,
  g.available_at, g.canceled_at, g.created_at`;
const holdColumns = sql`h.id, h.wallet_id, h.status, trim_scale(h.credits)::text as credits, trim_scale(h.captured)::text as captured,
  h.billable_metric_id, h.dimension, h.expires_at, h.settled_at, h.created_at`;
const ledgerColumns = sql`l.id, l.wallet_id, l.type, trim_scale(l.credits)::text as credits,
  trim_scale(l.available_after)::text as available_after, trim_scale(l.held_after)::text as held_after, l.grant_id, l.hold_id,
  l.invoice_id, l.api_key_id, l.created_at`;

export interface WalletSettings {
  name: string;
  low_balance_threshold: string | null;
  overdraft_limit: string;
  pays_usage: boolean;
  blocks_usage: boolean;
}

export async function insertWallet(
  db: Db,
  values: WalletSettings & { user_id: string; rate: string; test_clock_id: string | null },
): Promise<WalletRow> {
  const { rows } = await sql<WalletRow>`
    insert into wallets as w (user_id, name, rate, low_balance_threshold, overdraft_limit, pays_usage, blocks_usage,
      test_clock_id)
    values (${values.user_id}, ${values.name}, ${values.rate}, ${values.low_balance_threshold}, ${values.overdraft_limit},
      ${values.pays_usage}, ${values.blocks_usage}, ${values.test_clock_id})
    returning ${walletColumns}`.execute(db);
  return rows[0]!;
}

export async function updateWallet(db: Db, id: string, values: WalletSettings): Promise<WalletRow> {
  const { rows } = await sql<WalletRow>`
    update wallets w set name = ${values.name}, low_balance_threshold = ${values.low_balance_threshold},
      overdraft_limit = ${values.overdraft_limit}, pays_usage = ${values.pays_usage}, blocks_usage = ${values.blocks_usage}, updated_at = now()
    where w.tenant_id = ${TENANT} and w.id = ${id}::uuid
    returning ${walletColumns}`.execute(db);
  return rows[0]!;
}

/** The wallets that pay these customers' usage (read, not locked): for the usage that they block. */
export async function usageWalletsOf(db: Db, userIds: readonly string[]): Promise<WalletRow[]> {
  const { rows } = await sql<WalletRow>`select ${walletColumns} from wallets w
    where w.tenant_id = ${TENANT} and w.user_id = any(${[...userIds]}::uuid[]) and w.pays_usage`.execute(db);
  return rows;
}

/**
 * A customer's wallets that pay usage charges in one timeline (a test clock's, or real time for
 * null), oldest first, locked (after the subscription).
 */
export async function lockUsageWallets(db: Db, userId: string, clockId: string | null): Promise<WalletRow[]> {
  const { rows } = await sql<WalletRow>`select ${walletColumns} from wallets w
    where w.tenant_id = ${TENANT} and w.user_id = ${userId}::uuid and w.pays_usage
      and w.test_clock_id is not distinct from ${clockId}::uuid
    order by w.id for update`.execute(db);
  return rows;
}

export async function findWallet(db: Db, id: string): Promise<WalletRow | undefined> {
  const { rows } = await sql<WalletRow>`select ${walletColumns} from wallets w
    where w.tenant_id = ${TENANT} and w.id = ${id}::uuid`.execute(db);
  return rows[0];
}

/** The wallet of a grant of the API (not an overdraft). */
export async function findWalletOfGrant(db: Db, grantId: string): Promise<WalletRow | undefined> {
  const { rows } = await sql<WalletRow>`select ${walletColumns} from wallet_grants g
    join wallets w on w.tenant_id = g.tenant_id and w.id = g.wallet_id
    where g.tenant_id = ${TENANT} and g.id = ${grantId}::uuid and g.kind <> 'overdraft'`.execute(db);
  return rows[0];
}

/** The wallet, locked until the transaction ends: every change to its credits starts here. */
export async function lockWallet(db: Db, id: string): Promise<WalletRow | undefined> {
  const { rows } = await sql<WalletRow>`select ${walletColumns} from wallets w
    where w.tenant_id = ${TENANT} and w.id = ${id}::uuid for update`.execute(db);
  return rows[0];
}

/** Newest first; limit + 1 rows. */
export async function listWallets(
  db: Db,
  filter: { limit: number; after?: string | undefined; userId?: string | undefined },
): Promise<WalletRow[]> {
  const { rows } = await sql<WalletRow>`select ${walletColumns} from wallets w
    where w.tenant_id = ${TENANT}
      ${filter.after ? sql`and w.id < ${filter.after}::uuid` : sql``}
      ${filter.userId ? sql`and w.user_id = ${filter.userId}::uuid` : sql``}
    order by w.id desc limit ${filter.limit + 1}`.execute(db);
  return rows;
}

/**
 * The wallets' balances as of `at`, exact without any write: what the expiry job will sweep is
 * counted as swept (a grant past its expiry holds only what pending holds reserve of it; a hold
 * past its expiry holds nothing, its parts back on their grants or expired with them).
 */
export async function balances(
  db: Db,
  walletIds: readonly string[],
  at: Date,
): Promise<Map<string, Balances>> {
  if (walletIds.length === 0) return new Map();
  const { rows } = await sql<Balances & { wallet_id: string }>`
    with wanted as (select unnest(${[...walletIds]}::uuid[]) as wallet_id),
    live_grants as (
      select g.wallet_id, sum(g.remaining - g.reserved) as free from wallet_grants g
      where g.tenant_id = ${TENANT} and g.wallet_id in (select wallet_id from wanted) and g.remaining > 0
        and (g.expires_at is null or g.expires_at > ${at})
      group by g.wallet_id),
    lapsed_parts as (
      select h.wallet_id, sum(p.credits) as back from wallet_holds h
      join wallet_hold_parts p on p.tenant_id = h.tenant_id and p.hold_id = h.id
      join wallet_grants g on g.tenant_id = p.tenant_id and g.id = p.grant_id
      where h.tenant_id = ${TENANT} and h.wallet_id in (select wallet_id from wanted) and h.status = 'pending'
        and h.expires_at <= ${at} and (g.expires_at is null or g.expires_at > ${at})
      group by h.wallet_id),
    holding as (
      select h.wallet_id, sum(h.credits) as held from wallet_holds h
      where h.tenant_id = ${TENANT} and h.wallet_id in (select wallet_id from wanted) and h.status = 'pending'
        and h.expires_at > ${at}
      group by h.wallet_id)
    select w.wallet_id,
           trim_scale(coalesce(g.free, 0) + coalesce(l.back, 0) - coalesce(ow.overdraft_limit, 0))::text as available,
           trim_scale(coalesce(h.held, 0))::text as held
    from wanted w left join live_grants g using (wallet_id) left join lapsed_parts l using (wallet_id)
      left join holding h using (wallet_id)
      left join wallets ow on ow.tenant_id = ${TENANT} and ow.id = w.wallet_id`.execute(db);
  return new Map(rows.map((r) => [r.wallet_id, { available: r.available, held: r.held }]));
}

export async function insertGrant(
  db: Db,
  values: {
    wallet_id: string;
    kind: GrantRow['kind'];
    credits: string;
    priority: number;
    expires_at: Date | null;
    /** A paid grant's purchase: pending (nothing left, not available) until its invoice is paid. */
    purchase?: { invoice_id: string; amount: string };
    /** When it is made: the wallet's test clock time, if on a clock (default now). */
    at?: Date;
  },
): Promise<GrantRow> {
  const pending = values.purchase !== undefined;
  const at = sql`coalesce(${values.at ?? null}::timestamptz, now())`;
  const { rows } = await sql<GrantRow>`
    insert into wallet_grants as g (wallet_id, kind, credits, remaining, priority, expires_at, invoice_id, amount,
      available_at, created_at)
    values (${values.wallet_id}, ${values.kind}, ${values.credits}, ${pending ? '0' : values.credits},
      ${values.priority}, ${values.expires_at}, ${values.purchase?.invoice_id ?? null}, ${values.purchase?.amount ?? null},
      ${pending ? null : at}, ${at})
    returning ${grantColumns}`.execute(db);
  return rows[0]!;
}

/** The paid grant of a purchase invoice. */
export async function findGrantOfInvoice(db: Db, invoiceId: string): Promise<GrantRow | undefined> {
  const { rows } = await sql<GrantRow>`select ${grantColumns} from wallet_grants g
    where g.tenant_id = ${TENANT} and g.invoice_id = ${invoiceId}::uuid`.execute(db);
  return rows[0];
}

/**
 * Grants as of `at`, exact without any write (as `balances`): a grant past its expiry has left
 * only what pending holds, not expired themselves, still reserve of it.
 */
const grantsAsOf = (at: Date) => sql`
  select g.id, g.wallet_id, g.kind, trim_scale(g.credits)::text as credits,
    trim_scale(case when g.expires_at <= ${at} then (
      select coalesce(sum(p.credits), 0) from wallet_hold_parts p
      join wallet_holds h on h.tenant_id = p.tenant_id and h.id = p.hold_id
      where p.tenant_id = g.tenant_id and p.grant_id = g.id and h.status = 'pending' and h.expires_at > ${at}
    ) else g.remaining end)::text as remaining,
    trim_scale(g.reserved)::text as reserved, g.priority, g.expires_at, g.expired_at, g.amount::text as amount,
    g.invoice_id, g.available_at, g.canceled_at, g.created_at
  from wallet_grants g`;

/**
 * The credits of the wallet's purchases not paid yet that may still be (to be added when they
 * are): not those past their expiry at `at`, which lapse unpaid.
 */
export async function pendingCredits(db: Db, walletId: string, at: Date): Promise<string> {
  const { rows } = await sql<{ credits: string }>`
    select trim_scale(coalesce(sum(g.credits), 0))::text as credits from wallet_grants g
    where g.tenant_id = ${TENANT} and g.wallet_id = ${walletId}::uuid
      and g.invoice_id is not null and g.available_at is null and g.canceled_at is null
      and (g.expires_at is null or g.expires_at > ${at})`.execute(db);
  return rows[0]!.credits;
}

/** A grant of the API (not a wallet's overdraft) as of `at`. */
export async function findGrant(db: Db, id: string, at: Date): Promise<GrantRow | undefined> {
  const { rows } = await sql<GrantRow>`${grantsAsOf(at)}
    where g.tenant_id = ${TENANT} and g.id = ${id}::uuid and g.kind <> 'overdraft'`.execute(db);
  return rows[0];
}

/** A page of the wallet's grants (not its overdraft) as of `at`, newest first. */
export async function listGrants(
  db: Db,
  walletId: string,
  at: Date,
  filter: { limit: number; after?: string | undefined },
): Promise<GrantRow[]> {
  const { rows } = await sql<GrantRow>`${grantsAsOf(at)}
    where g.tenant_id = ${TENANT} and g.wallet_id = ${walletId}::uuid and g.kind <> 'overdraft'
      ${filter.after ? sql`and g.id < ${filter.after}::uuid` : sql``}
    order by g.id desc limit ${filter.limit + 1}`.execute(db);
  return rows;
}

/** A pending paid grant's credits made available (its invoice was paid), or it is canceled. */
export async function settleGrant(
  db: Db,
  id: string,
  outcome: { available_at: Date } | { canceled_at: Date },
): Promise<GrantRow | undefined> {
  const { rows } = await sql<GrantRow>`
    update wallet_grants g set ${
      'available_at' in outcome
        ? sql`remaining = g.credits, available_at = ${outcome.available_at}`
        : sql`canceled_at = ${outcome.canceled_at}`
    }
    where g.tenant_id = ${TENANT} and g.id = ${id}::uuid and g.available_at is null and g.canceled_at is null
    returning ${grantColumns}`.execute(db);
  return rows[0];
}

/**
 * The wallet's grants with credits left, in consumption order: highest priority, soonest to
 * expire (never last), oldest. Locked with the wallet (the caller holds its lock).
 */
/** The grants with credits left, in consumption order, and the wallet's overdraft (last) if any. */
export async function liveGrants(db: Db, walletId: string): Promise<GrantRow[]> {
  const { rows } = await sql<GrantRow>`select ${grantColumns} from wallet_grants g
    where g.tenant_id = ${TENANT} and g.wallet_id = ${walletId}::uuid and (g.remaining > 0 or g.kind = 'overdraft')
    order by g.kind = 'overdraft', g.priority desc, g.expires_at asc nulls last, g.id`.execute(db);
  return rows;
}

/**
 * The wallet's overdraft grant set to `limit` credits: what is overdrawn stays overdrawn (the
 * caller checked that it and what is held of it fit in the new limit).
 */
export async function resizeOverdraft(db: Db, grantId: string, limit: string): Promise<GrantRow> {
  const { rows } = await sql<GrantRow>`
    update wallet_grants g set credits = ${limit}, remaining = g.remaining + (${limit}::numeric - g.credits)
    where g.tenant_id = ${TENANT} and g.id = ${grantId}::uuid
    returning ${grantColumns}`.execute(db);
  return rows[0]!;
}

/**
 * A hold made at `at` (now when absent), expiring `expires_in` seconds after it: both from one
 * reading of the time, so that expires_at - created_at is exactly expires_in.
 */
export async function insertHold(
  db: Db,
  values: { id: string; wallet_id: string; credits: string; expires_in: number; at?: Date },
  parts: ReadonlyArray<{ grant_id: string; credits: string }>,
): Promise<HoldRow> {
  // One statement, the hold and its parts: one round trip fewer under the wallet's lock.
  const { rows } = await sql<HoldRow>`
    with made as (select coalesce(${values.at ?? null}::timestamptz, now()) as at),
    h as (
      insert into wallet_holds as h (id, wallet_id, credits, expires_at, created_at)
      select ${values.id}::uuid, ${values.wallet_id}, ${values.credits},
        made.at + ${values.expires_in}::double precision * interval '1 second', made.at
      from made
      returning ${holdColumns}),
    parts as (
      insert into wallet_hold_parts (hold_id, grant_id, credits)
      select h.id, p.grant_id, p.credits from h,
        unnest(${parts.map((p) => p.grant_id)}::uuid[], ${parts.map((p) => p.credits)}::numeric[]) as p (grant_id, credits))
    select * from h`.execute(db);
  return rows[0]!;
}

export async function findHold(db: Db, id: string): Promise<HoldRow | undefined> {
  const { rows } = await sql<HoldRow>`select ${holdColumns} from wallet_holds h
    where h.tenant_id = ${TENANT} and h.id = ${id}::uuid`.execute(db);
  return rows[0];
}

/** A hold's parts: how many of its credits each grant reserves. */
export async function holdParts(
  db: Db,
  holdId: string,
): Promise<Array<{ grant_id: string; credits: string }>> {
  const { rows } = await sql<{ grant_id: string; credits: string }>`
    select grant_id, trim_scale(credits)::text as credits from wallet_hold_parts
    where tenant_id = ${TENANT} and hold_id = ${holdId}::uuid`.execute(db);
  return rows;
}

/** The wallet's pending holds past their expiry at `at` (the caller holds the wallet's lock). */
export async function lapsedHolds(db: Db, walletId: string, at: Date): Promise<HoldRow[]> {
  const { rows } = await sql<HoldRow>`select ${holdColumns} from wallet_holds h
    where h.tenant_id = ${TENANT} and h.wallet_id = ${walletId}::uuid and h.status = 'pending'
      and h.expires_at <= ${at} order by h.expires_at, h.id`.execute(db);
  return rows;
}

export async function settleHold(
  db: Db,
  id: string,
  values: {
    status: 'captured' | 'released' | 'expired';
    captured: string | null;
    at: Date;
    usage?: { billable_metric_id: string; dimension: string | null } | undefined;
  },
): Promise<HoldRow> {
  const { rows } = await sql<HoldRow>`
    update wallet_holds h set status = ${values.status}, captured = ${values.captured}, settled_at = ${values.at},
      billable_metric_id = ${values.usage?.billable_metric_id ?? null}, dimension = ${values.usage?.dimension ?? null}
    where h.tenant_id = ${TENANT} and h.id = ${id}::uuid
    returning ${holdColumns}`.execute(db);
  return rows[0]!;
}

/**
 * Writes grants' remaining and reserved credits (and expired_at) and appends ledger entries, in one
 * statement: the end of every change to a wallet, under its lock.
 */
export async function saveChanges(
  db: Db,
  grants: ReadonlyArray<{ id: string; remaining: string; reserved: string; expired_at: Date | null }>,
  entries: ReadonlyArray<Omit<LedgerRow, 'id' | 'created_at'>>,
  /** The entries' time: the wallet's (a test clock's, or now). */
  at: Date,
): Promise<void> {
  if (grants.length === 0 && entries.length === 0) return;
  const col = <K extends keyof (typeof entries)[number]>(k: K) => entries.map((e) => e[k]);
  await sql`
    with changed as (
      update wallet_grants g set remaining = c.remaining, reserved = c.reserved,
        expired_at = coalesce(g.expired_at, c.expired_at)
      from unnest(${grants.map((c) => c.id)}::uuid[], ${grants.map((c) => c.remaining)}::numeric[],
                  ${grants.map((c) => c.reserved)}::numeric[], ${grants.map((c) => c.expired_at)}::timestamptz[])
        as c (id, remaining, reserved, expired_at)
      where g.tenant_id = ${TENANT} and g.id = c.id)
    insert into wallet_ledger (wallet_id, type, credits, available_after, held_after, grant_id, hold_id, invoice_id,
      api_key_id, created_at)
    select w, t, c, a, h, g, ho, i, k, ${at}::timestamptz from unnest(${col('wallet_id')}::uuid[], ${col('type')}::text[],
      ${col('credits')}::numeric[], ${col('available_after')}::numeric[], ${col('held_after')}::numeric[],
      ${col('grant_id')}::uuid[], ${col('hold_id')}::uuid[], ${col('invoice_id')}::uuid[], ${col('api_key_id')}::uuid[])
      with ordinality as u (w, t, c, a, h, g, ho, i, k, n)
    order by n`.execute(db);
}

/** Newest first (in the order written); limit + 1 rows; `after`: the id of the last entry seen. */
export async function listLedger(
  db: Db,
  walletId: string,
  filter: { limit: number; after?: string | undefined },
): Promise<LedgerRow[]> {
  const { rows } = await sql<LedgerRow>`select ${ledgerColumns} from wallet_ledger l
    where l.tenant_id = ${TENANT} and l.wallet_id = ${walletId}::uuid
      ${
        filter.after
          ? sql`and l.seq < (select a.seq from wallet_ledger a where a.tenant_id = ${TENANT} and a.id = ${filter.after}::uuid)`
          : sql``
      }
    order by l.seq desc limit ${filter.limit + 1}`.execute(db);
  return rows;
}

/**
 * Wallets in real time with an expiry due at `at`, across tenants (the worker, as the owner). A
 * wallet on a test clock expires in the clock's time: its advance sweeps it (queries/due-work.ts).
 */
export async function walletsWithExpiryDue(
  db: Db,
  at: Date,
  limit: number,
): Promise<Array<{ tenant_id: string; wallet_id: string }>> {
  const { rows } = await sql<{ tenant_id: string; wallet_id: string }>`
    select distinct tenant_id, wallet_id from (
      (select g.tenant_id, g.wallet_id from wallet_grants g
       join wallets w on w.tenant_id = g.tenant_id and w.id = g.wallet_id
       where g.remaining > g.reserved and g.expires_at is not null and g.expires_at <= ${at}
         and w.test_clock_id is null limit ${limit})
      union all
      (select h.tenant_id, h.wallet_id from wallet_holds h
       join wallets w on w.tenant_id = h.tenant_id and w.id = h.wallet_id
       where h.status = 'pending' and h.expires_at <= ${at} and w.test_clock_id is null limit ${limit})
    ) due
    limit ${limit}`.execute(db);
  return rows;
}

/** Holds by id (the caller holds their wallets' locks). */
export async function findHolds(db: Db, ids: readonly string[]): Promise<Map<string, HoldRow>> {
  if (ids.length === 0) return new Map();
  const { rows } = await sql<HoldRow>`select ${holdColumns} from wallet_holds h
    where h.tenant_id = ${TENANT} and h.id = any(${ids}::uuid[])`.execute(db);
  return new Map(rows.map((h) => [h.id, h]));
}

/** The parts of several holds, by hold id (see holdParts). */
export async function partsOfHolds(
  db: Db,
  holdIds: readonly string[],
): Promise<Map<string, Array<{ grant_id: string; credits: string }>>> {
  const parts = new Map<string, Array<{ grant_id: string; credits: string }>>();
  if (holdIds.length === 0) return parts;
  const { rows } = await sql<{ hold_id: string; grant_id: string; credits: string }>`
    select hold_id, grant_id, trim_scale(credits)::text as credits from wallet_hold_parts
    where tenant_id = ${TENANT} and hold_id = any(${holdIds}::uuid[])`.execute(db);
  for (const { hold_id, ...part } of rows) {
    const list = parts.get(hold_id);
    if (list) list.push(part);
    else parts.set(hold_id, [part]);
  }
  return parts;
}
