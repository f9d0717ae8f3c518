import { type CompiledQuery, sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { EventRow } from '../database/schema.js';

export interface EventInput {
  type: string;
  resource_type: string;
  resource_id: string;
  actor: string;
  request_id: string | null;
  data: unknown;
  previous?: unknown;
  /** When it happened, if not now: a test clock's time for its subscriptions' events. */
  occurred_at?: Date | undefined;
}

/** A finished request's reply, to keep for retries with its idempotency key. */
export interface KeyRecord {
  apiKeyId: string;
  key: string;
  fingerprint: string;
  reply: { status: number; headers: Record<string, string>; body: string };
}

/**
 * The closing statement of a write: its events and, with an idempotency key, the key's record,
 * in one statement (a data-modifying CTE), compiled for withTenant to send with COMMIT.
 */
export function insertEvents(db: Db, events: readonly EventInput[], record?: KeyRecord): CompiledQuery[] {
  const written =
    events.length === 0
      ? undefined
      : db.insertInto('events').values(
          events.map((e) => ({
            type: e.type,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            actor: e.actor,
            request_id: e.request_id,
            data: JSON.stringify(e.data),
            previous: e.previous === undefined ? null : JSON.stringify(e.previous),
            // The time of the write, sent with COMMIT, not the transaction's start (now()): a
            // transaction that began first but waited for a row lock applies its change after the
            // one holding it, and its event must not read as earlier.
            occurred_at: e.occurred_at ?? sql<Date>`clock_timestamp()`,
          })),
        );
  if (!record) return written ? [written.compile()] : [];
  const values = {
    api_key_id: record.apiKeyId,
    key: record.key,
    fingerprint: record.fingerprint,
    status: record.reply.status,
    headers: JSON.stringify(record.reply.headers),
    body: record.reply.body,
  };
  // With events, the key's record is written by the same statement, behind a CTE that inserts
  // them (typed as plain Db: the CTE adds a name the insert does not use).
  const creator: Db = written ? (db.with('written_events', () => written) as unknown as Db) : db;
  const kept = creator
    .insertInto('idempotency_keys')
    .values(values)
    // Over an expired record of the same key (a live one is locked by the claim).
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'api_key_id', 'key']).doUpdateSet((eb) => ({
        fingerprint: eb.ref('excluded.fingerprint'),
        status: eb.ref('excluded.status'),
        headers: eb.ref('excluded.headers'),
        body: eb.ref('excluded.body'),
        created_at: sql`now()`,
      })),
    );
  return [kept.compile()];
}

const columns = [
  'seq',
  'id',
  sql<string>`xid::text`.as('xid'),
  'type',
  'resource_type',
  'resource_id',
  'actor',
  'request_id',
  'occurred_at',
  'data',
  'previous',
] as const;

export interface EventFilter {
  limit: number;
  /** The feed position after which to start: (xid, seq) of the last event seen. */
  after?: { xid: string; seq: string } | undefined;
  types?: readonly string[] | undefined;
  /** With resourceId: the events of that resource as this type ('subscription'). */
  resourceType?: string | undefined;
  resourceId?: string | undefined;
  /** Occurred at or after this instant (the route turns `after` into it: see shownBounds). */
  occurredFrom?: string | undefined;
  /** Occurred before this instant. */
  occurredBefore?: string | undefined;
  /** Resource types whose events are left out (those the reader's key may not read). */
  hiddenResourceTypes?: readonly string[] | undefined;
}

/**
 * Oldest first, in (xid, seq) order, and only events of transactions older than every transaction
 * still running that may record events (feed_horizon: all but those exemptFromFeedHorizon
 * registered). A transaction that commits later can only add events with an xid at or above
 * that bound, so they come after every position already handed out: a reader paging with the
 * last (xid, seq) it saw never skips one. The price: while some transaction runs, the newest
 * events wait for it to end.
 */
export function listEvents(db: Db, filter: EventFilter): Promise<EventRow[]> {
  let query = db
    .selectFrom('events')
    .select(columns)
    .where(sql<boolean>`xid < (select feed_horizon())`)
    // Qualified: a bare "xid" would sort by the text column of the select list ('1000' < '999').
    .orderBy('events.xid')
    .orderBy('events.seq')
    .limit(filter.limit + 1);
  if (filter.after) {
    query = query.where(sql<boolean>`(xid, seq) > (${filter.after.xid}::xid8, ${filter.after.seq}::bigint)`);
  }
  if (filter.types?.length) query = query.where('type', 'in', filter.types);
  if (filter.resourceType) query = query.where('resource_type', '=', filter.resourceType);
  if (filter.resourceId) query = query.where('resource_id', '=', filter.resourceId);
  if (filter.occurredFrom) query = query.where('occurred_at', '>=', new Date(filter.occurredFrom));
  if (filter.occurredBefore) query = query.where('occurred_at', '<', new Date(filter.occurredBefore));
  if (filter.hiddenResourceTypes?.length)
    query = query.where('resource_type', 'not in', filter.hiddenResourceTypes);
  return query.execute();
}

/**
 * The oldest transaction still running that may record events, as this statement sees it: every
 * event of an older one is committed (or never will be), so a feed read after this statement has
 * seen them all.
 */
export async function feedHorizon(db: Db): Promise<string> {
  const { rows } = await sql<{
    xmin: string;
  }>`select feed_horizon()::text as xmin`.execute(db);
  return rows[0]!.xmin;
}

/**
 * Lets every tenant's feed go on past `trx`, a long transaction that records no event (a rebuild
 * of MRR sums): its id is registered on `db` (another connection, committed at once) and the
 * horizon skips it; an event it tried to record would be refused (a trigger). Registrations of
 * transactions that ended are removed on the way. Returns the removal of this one.
 */
export async function exemptFromFeedHorizon(db: Db, trx: Db, reason: string): Promise<() => Promise<void>> {
  const { rows } = await sql<{ xid: string }>`select pg_current_xact_id()::text as xid`.execute(trx);
  const xid = rows[0]!.xid;
  await sql`with ended as (
      delete from feed_exempt_transactions where xid < pg_snapshot_xmin(pg_current_snapshot()))
    insert into feed_exempt_transactions (xid, reason) values (${xid}::xid8, ${reason})`.execute(db);
  return async () => {
    await sql`delete from feed_exempt_transactions where xid = ${xid}::xid8`.execute(db);
  };
}

/**
 * The times a subscription was paused, each until it resumed (null: paused still), from its
 * subscription.paused and subscription.resumed events, in the order they were recorded.
 */
export async function pausedSpans(
  db: Db,
  subscriptionId: string,
): Promise<Array<{ from: Date; to: Date | null }>> {
  const rows = await db
    .selectFrom('events')
    .select(['type', 'occurred_at'])
    .where('resource_id', '=', subscriptionId)
    .where('resource_type', '=', 'subscription')
    .where('type', 'in', ['subscription.paused', 'subscription.resumed'])
    .orderBy('events.xid')
    .orderBy('events.seq')
    .execute();
  const spans: Array<{ from: Date; to: Date | null }> = [];
  for (const row of rows) {
    if (row.type === 'subscription.paused') spans.push({ from: row.occurred_at, to: null });
    else if (spans.length > 0 && spans.at(-1)!.to === null) spans.at(-1)!.to = row.occurred_at;
  }
  return spans;
}

/** Whether the subscription was canceled while it trialed (its subscription.canceled event says). */
export async function canceledWhileTrialing(db: Db, subscriptionId: string): Promise<boolean> {
  const row = await db
    .selectFrom('events')
    .select('seq')
    .where('resource_id', '=', subscriptionId)
    .where('resource_type', '=', 'subscription')
    .where('type', '=', 'subscription.canceled')
    .where(sql<boolean>`previous ->> 'status' = 'trialing'`)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Whether any event names this resource, of this type (its history outlives the resource). */
export async function hasEvents(db: Db, resourceType: string, resourceId: string): Promise<boolean> {
  const row = await db
    .selectFrom('events')
    .select('seq')
    .where('resource_id', '=', resourceId)
    .where('resource_type', '=', resourceType)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The price the system an imported subscription came from billed its first period at, when that
 * period ends on `periodEnd`: its subscription.created event shows it created active, without a
 * trial, billed until after the day it was created (`billed_until`), at that `plan_cost`.
 */
export async function importedPeriodPrice(
  db: Db,
  subscriptionId: string,
  periodEnd: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('events')
    .select([
      sql<string | null>`data ->> 'billed_until'`.as('billed_until'),
      sql<string | null>`data ->> 'plan_cost'`.as('plan_cost'),
      sql<string | null>`data ->> 'status'`.as('status'),
      sql<string | null>`data ->> 'trial_end'`.as('trial_end'),
      'occurred_at',
    ])
    .where('resource_id', '=', subscriptionId)
    .where('resource_type', '=', 'subscription')
    .where('type', '=', 'subscription.created')
    .executeTakeFirst();
  if (!row?.billed_until || !row.plan_cost || row.status !== 'active' || row.trial_end !== null)
    return undefined;
  if (row.billed_until !== periodEnd || row.billed_until <= row.occurred_at.toISOString().slice(0, 10))
    return undefined;
  return row.plan_cost;
}
