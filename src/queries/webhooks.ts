// Webhook endpoints, their deliveries (made by a trigger on events: the outbox) and attempts.
// The claim reads across tenants and runs as the owner (ids only); everything else runs in the
// tenant's transaction, under RLS.
import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type {
  EventRow,
  WebhookAttemptRow,
  WebhookDeliveryRow,
  WebhookDeliveryStatus,
  WebhookEndpointRow,
  WebhookEndpointStatus,
} from '../database/schema.js';

/** What the API shows of an endpoint: never its secrets. */
const endpointColumns = [
  'id',
  'url',
  'description',
  'enabled_events',
  'status',
  'disabled_reason',
  'previous_secret_expires_at',
  'version',
  'created_at',
  'updated_at',
] as const;
export type WebhookEndpoint = Pick<WebhookEndpointRow, (typeof endpointColumns)[number]>;

const deliveryColumns = [
  'id',
  'endpoint_id',
  'event_id',
  'event_type',
  'status',
  'attempts',
  'first_attempted_at',
  'next_attempt_at',
  'last_attempted_at',
  'last_status_code',
  'last_error',
  'created_at',
] as const;
export type WebhookDelivery = Pick<WebhookDeliveryRow, (typeof deliveryColumns)[number]>;

const attemptColumns = [
  'delivery_id',
  'number',
  'attempted_at',
  'status_code',
  'error',
  'duration_ms',
] as const;
export type WebhookAttempt = Pick<WebhookAttemptRow, (typeof attemptColumns)[number]>;

export interface EndpointFilter {
  limit: number;
  after?: string | undefined;
  status?: WebhookEndpointStatus | undefined;
}

export function listWebhookEndpoints(db: Db, filter: EndpointFilter): Promise<WebhookEndpoint[]> {
  let query = db
    .selectFrom('webhook_endpoints')
    .select(endpointColumns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.status) query = query.where('status', '=', filter.status);
  return query.execute();
}

export function findWebhookEndpoint(db: Db, id: string): Promise<WebhookEndpoint | undefined> {
  return db.selectFrom('webhook_endpoints').select(endpointColumns).where('id', '=', id).executeTakeFirst();
}

/** The endpoint, locked until the transaction ends: what a change starts from. */
export function lockWebhookEndpoint(db: Db, id: string): Promise<WebhookEndpoint | undefined> {
  return db
    .selectFrom('webhook_endpoints')
    .select(endpointColumns)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

export interface NewWebhookEndpoint {
  url: string;
  description: string | null;
  enabled_events: string[];
  secret: string;
}

export function insertWebhookEndpoint(db: Db, values: NewWebhookEndpoint): Promise<WebhookEndpoint> {
  return db
    .insertInto('webhook_endpoints')
    .values(values)
    .returning(endpointColumns)
    .executeTakeFirstOrThrow();
}

export interface WebhookEndpointPatch {
  url?: string;
  description?: string | null;
  enabled_events?: string[];
  status?: WebhookEndpointStatus;
  disabled_reason?: string | null;
  secret?: string;
  previous_secret?: string | null;
  previous_secret_expires_at?: Date | null;
  failing_since?: Date | null;
  consecutive_failures?: number;
  retry_at?: Date | null;
}

/** Run on a locked endpoint (lockWebhookEndpoint); the version trigger bumps `version`. */
export function updateWebhookEndpoint(
  db: Db,
  id: string,
  patch: WebhookEndpointPatch,
): Promise<WebhookEndpoint> {
  return db
    .updateTable('webhook_endpoints')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(endpointColumns)
    .executeTakeFirstOrThrow();
}

/** The endpoint's signing secret (read to rotate it, and to check a replay); undefined when gone. */
export async function currentSecret(db: Db, id: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('webhook_endpoints')
    .select('secret')
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.secret;
}

/** The deleted endpoint; its deliveries and attempts go with it. */
export function deleteWebhookEndpoint(db: Db, id: string): Promise<WebhookEndpoint | undefined> {
  return db
    .deleteFrom('webhook_endpoints')
    .where('id', '=', id)
    .returning(endpointColumns)
    .executeTakeFirst();
}

export interface DeliveryFilter {
  limit: number;
  after?: string | undefined;
  status?: WebhookDeliveryStatus | undefined;
  eventId?: string | undefined;
}

/** An endpoint's deliveries, newest first. */
export function listWebhookDeliveries(
  db: Db,
  endpointId: string,
  filter: DeliveryFilter,
): Promise<WebhookDelivery[]> {
  let query = db
    .selectFrom('webhook_deliveries')
    .select(deliveryColumns)
    .where('endpoint_id', '=', endpointId)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.eventId) query = query.where('event_id', '=', filter.eventId);
  return query.execute();
}

export function findWebhookDelivery(db: Db, id: string): Promise<WebhookDelivery | undefined> {
  return db.selectFrom('webhook_deliveries').select(deliveryColumns).where('id', '=', id).executeTakeFirst();
}

/** The delivery, locked for this transaction: a retry asked for through the API starts from it. */
export function lockWebhookDelivery(
  db: Db,
  id: string,
): Promise<(WebhookDelivery & { leased_until: Date | null }) | undefined> {
  return db
    .selectFrom('webhook_deliveries')
    .select([...deliveryColumns, 'leased_until'])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * Due now (pending, next attempt now), claimed before any other and whatever its endpoint's
 * backoff (retry_requested), and the dispatcher woken when this commits.
 */
export async function deliverNow(db: Db, id: string): Promise<WebhookDelivery | undefined> {
  const delivery = await db
    .updateTable('webhook_deliveries')
    .set({
      // A delivered one stays succeeded: its event was delivered, whatever this attempt gets.
      status: sql<WebhookDeliveryStatus>`case when status = 'succeeded' then 'succeeded' else 'pending' end`,
      next_attempt_at: sql`now()`,
      retry_requested: true,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returning(deliveryColumns)
    .executeTakeFirst();
  await sql`select pg_notify('webhook_deliveries', '1')`.execute(db);
  return delivery;
}

/** The attempts of these deliveries, oldest first. */
export async function attemptsOf(db: Db, deliveryIds: readonly string[]): Promise<WebhookAttempt[]> {
  if (deliveryIds.length === 0) return [];
  return db
    .selectFrom('webhook_attempts')
    .select(attemptColumns)
    .where('delivery_id', 'in', deliveryIds)
    .orderBy('delivery_id')
    .orderBy('number')
    .execute();
}

export interface ClaimedDelivery {
  id: string;
  tenant_id: string;
  lease_token: string;
}

/**
 * Attempts in flight to one endpoint at most: 1 while it is failing (a probe), else this many.
 * Small, so that endpoints that do not answer (each attempt holding a slot until its timeout)
 * must be many to fill a worker's slots.
 */
export const CLAIM_PER_ENDPOINT = 5;

/**
 * Takes up to `limit` due deliveries of enabled endpoints, across tenants, for leaseMs. Fairly:
 * first the deliveries retried through the API (retry_requested), then, of each enabled endpoint
 * that is not backing off (retry_at passed or unset), its earliest due ones, up to perEndpoint in
 * flight to it (one, a probe, while the endpoint is failing), all of them by when they were due. So a dead
 * endpoint's backlog costs one attempt per backoff step and never fills a claim. Each endpoint is
 * one probe of an index by (endpoint, due time): cheap however many deliveries are pending.
 * SKIP LOCKED lets concurrent dispatchers take different ones, and the lease keeps a claimed
 * delivery from being claimed again until it runs out (a crashed dispatcher's then come back).
 */
export async function claimDueDeliveries(
  db: Db,
  limit: number,
  leaseMs: number,
  perEndpoint = CLAIM_PER_ENDPOINT,
): Promise<ClaimedDelivery[]> {
  // One claim at a time, across dispatchers: a claim counts the leases in flight to an endpoint,
  // which a concurrent claim's uncommitted ones are not, so two workers took 5 each (ops6 #3).
  // The lock is taken by a statement of its own, so that the claim's snapshot, taken after it,
  // sees the leases of the claim before.
  const claim = async (trx: Db) => {
    await sql`select pg_advisory_xact_lock(hashtext('subscriptions-api:webhook-claim'))`.execute(trx);
    return claimInTransaction(trx, limit, leaseMs, perEndpoint);
  };
  return db.isTransaction ? claim(db) : db.transaction().execute(claim);
}

async function claimInTransaction(
  db: Db,
  limit: number,
  leaseMs: number,
  perEndpoint: number,
): Promise<ClaimedDelivery[]> {
  const { rows } = await sql<ClaimedDelivery>`
    with candidates as (
      -- Retries on request: whatever the endpoint's backoff, but one per endpoint a claim and
      -- within its limit in flight, so that many at once do not flood one endpoint (or every slot).
      select r.tenant_id, r.id, r.endpoint_id, r.next_attempt_at, true as requested, r.budget from (
        select distinct on (x.tenant_id, x.endpoint_id) x.tenant_id, x.id, x.endpoint_id, x.next_attempt_at,
          x.budget from (
          select d.tenant_id, d.id, d.endpoint_id, d.next_attempt_at,
            case when w.consecutive_failures > 0 then 1 else ${perEndpoint}::int end - (
              select count(*) from webhook_deliveries l
              where l.tenant_id = d.tenant_id and l.endpoint_id = d.endpoint_id
                and l.leased_until is not null and l.leased_until > now()) as budget
          from webhook_deliveries d
          join webhook_endpoints w on w.tenant_id = d.tenant_id and w.id = d.endpoint_id
          where d.retry_requested and d.status in ('pending', 'succeeded') and d.next_attempt_at <= now()
            and (d.leased_until is null or d.leased_until <= now())
            and w.status = 'enabled'
          order by d.next_attempt_at
          limit ${limit}
          for update of d skip locked
        ) x
        where x.budget > 0
        order by x.tenant_id, x.endpoint_id, x.next_attempt_at
      ) r
      union all
      select d.tenant_id, d.id, w.id, d.next_attempt_at, false, b.budget from webhook_endpoints w
      -- Less what is in flight to it already (claims of this dispatcher or another).
      cross join lateral (
        select greatest(0, case when w.consecutive_failures > 0 then 1 else ${perEndpoint}::int end - (
          select count(*) from webhook_deliveries l
          where l.tenant_id = w.tenant_id and l.endpoint_id = w.id
            and l.leased_until is not null and l.leased_until > now())) as budget
      ) b
      cross join lateral (
        select d.tenant_id, d.id, d.next_attempt_at from webhook_deliveries d
        where d.tenant_id = w.tenant_id and d.endpoint_id = w.id
          and d.status = 'pending' and d.next_attempt_at <= now()
          and (d.leased_until is null or d.leased_until <= now())
        order by d.next_attempt_at
        limit b.budget
        for update of d skip locked
      ) d
      where w.status = 'enabled' and (w.retry_at is null or w.retry_at <= now())
    ),
    -- Each endpoint's candidates, the one requested first, within its budget: the two parts
    -- each keep to it, and together they took one more (a 6th attempt in flight, or a second
    -- alongside a failing endpoint's probe).
    ranked as (
      select c.*, row_number() over (
        partition by c.tenant_id, c.endpoint_id order by c.requested desc, c.next_attempt_at, c.id) as n
      from (
        select distinct on (tenant_id, id) * from candidates
        order by tenant_id, id, requested desc
      ) c
    ),
    due as (
      select tenant_id, id from ranked
      where n <= budget
      order by requested desc, next_attempt_at
      limit ${limit}
    )
    update webhook_deliveries d
    set lease_token = gen_random_uuid(), leased_until = now() + ${leaseMs} * interval '1 millisecond'
    -- By the whole key: the owner is not scoped to a tenant, and the primary key starts with it.
    from due where d.tenant_id = due.tenant_id and d.id = due.id
      -- Checked again on the row as it is now: a concurrent claim took it first.
      and (d.status = 'pending' or (d.retry_requested and d.status = 'succeeded'))
      and (d.leased_until is null or d.leased_until <= now())
    returning d.id, d.tenant_id, d.lease_token`.execute(db);
  return rows;
}

/** Deliveries still to make, in every tenant (the owner's connection): the metrics' gauge. */
export async function countPendingDeliveries(db: Db): Promise<number> {
  const { rows } = await sql<{ count: string }>`
    select count(*) as count from webhook_deliveries where status = 'pending'`.execute(db);
  return Number(rows[0]!.count);
}

/**
 * When claimDueDeliveries could next take a delivery (across tenants), for the dispatcher's next
 * wake-up: each enabled endpoint's earliest unclaimed delivery, but not before the endpoint's
 * retry_at; a claim's lease end; a delivery retried through the API. Those of disabled endpoints,
 * and of endpoints backing off, wait for no time: counted, they woke the dispatcher at once,
 * again and again, for deliveries it would not take.
 */
export async function nextDueAt(db: Db): Promise<Date | undefined> {
  const { rows } = await sql<{ at: Date | null }>`
    select min(at) as at from (
      select greatest(w.retry_at, d.next_attempt_at) as at from webhook_endpoints w
      cross join lateral (
        select d.next_attempt_at from webhook_deliveries d
        where d.tenant_id = w.tenant_id and d.endpoint_id = w.id
          and d.status = 'pending' and d.leased_until is null
        order by d.next_attempt_at
        limit 1
      ) d
      where w.status = 'enabled'
      union all
      select greatest(d.next_attempt_at, d.leased_until, case when not d.retry_requested then w.retry_at end)
      from webhook_deliveries d
      join webhook_endpoints w on w.tenant_id = d.tenant_id and w.id = d.endpoint_id
      where d.leased_until is not null and w.status = 'enabled'
        and (d.status = 'pending' or (d.retry_requested and d.status = 'succeeded'))
      union all
      select d.next_attempt_at from webhook_deliveries d
      join webhook_endpoints w on w.tenant_id = d.tenant_id and w.id = d.endpoint_id
      where d.retry_requested and d.status in ('pending', 'succeeded') and d.leased_until is null
        and w.status = 'enabled'
    ) due`.execute(db);
  return rows[0]?.at ?? undefined;
}

/** What one attempt needs: the delivery (still leased with this token), its endpoint and event. */
export interface DeliveryToSend {
  delivery: WebhookDelivery;
  url: string;
  /** The secrets that sign now, newest first. */
  secrets: string[];
  event: EventRow;
}

export async function findDeliveryToSend(
  db: Db,
  id: string,
  leaseToken: string,
): Promise<DeliveryToSend | undefined> {
  const row = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_endpoints as w', (join) =>
      join.onRef('w.tenant_id', '=', 'd.tenant_id').onRef('w.id', '=', 'd.endpoint_id'),
    )
    .innerJoin('events as e', (join) =>
      join
        .onRef('e.tenant_id', '=', 'd.tenant_id')
        .onRef('e.xid', '=', 'd.event_xid')
        .onRef('e.seq', '=', 'd.event_seq'),
    )
    .select([
      ...deliveryColumns.map((c) => `d.${c}` as const),
      'w.url',
      'w.secret',
      sql<string | null>`case when w.previous_secret_expires_at > now() then w.previous_secret end`.as(
        'previous_secret',
      ),
      sql<EventRow>`json_build_object('seq', e.seq::text, 'id', e.id, 'xid', e.xid::text, 'type', e.type,
        'resource_type', e.resource_type, 'resource_id', e.resource_id, 'actor', e.actor,
        'request_id', e.request_id, 'occurred_at', e.occurred_at, 'data', e.data, 'previous', e.previous)`.as(
        'event',
      ),
    ])
    .where('d.id', '=', id)
    .where('d.lease_token', '=', leaseToken)
    .where((eb) =>
      eb.or([
        eb('d.status', '=', 'pending'),
        eb.and([eb('d.retry_requested', '=', true), eb('d.status', '=', 'succeeded')]),
      ]),
    )
    .executeTakeFirst();
  if (!row) return undefined;
  const { url, secret, previous_secret, event, ...delivery } = row;
  return {
    delivery,
    url,
    secrets: previous_secret ? [secret, previous_secret] : [secret],
    event: { ...event, occurred_at: new Date(event.occurred_at) },
  };
}

export interface AttemptOutcome {
  status: WebhookDeliveryStatus;
  next_attempt_at: Date | null;
  attempted_at: Date;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

/**
 * The attempt's outcome, on the delivery and in its attempts; undefined when the lease was lost
 * (it ran out and another dispatcher claimed the delivery: that one records its own attempt).
 */
export async function recordAttempt(
  db: Db,
  id: string,
  leaseToken: string,
  outcome: AttemptOutcome,
): Promise<WebhookDelivery | undefined> {
  // A delivery that succeeded before (sent again through the API) stays succeeded whatever this
  // attempt got: its event was delivered, and a failed re-send is recorded, not retried.
  const delivered = sql<boolean>`(${outcome.status} <> 'succeeded' and exists (
    select 1 from webhook_attempts a
    where a.delivery_id = webhook_deliveries.id and a.status_code between 200 and 299))`;
  const delivery = await db
    .updateTable('webhook_deliveries')
    .set({
      status: sql<WebhookDeliveryStatus>`case when ${delivered} then 'succeeded' else ${outcome.status} end`,
      next_attempt_at: sql<Date | null>`case when ${delivered} then null else ${outcome.next_attempt_at}::timestamptz end`,
      attempts: sql`attempts + 1`,
      first_attempted_at: sql`coalesce(first_attempted_at, ${outcome.attempted_at})`,
      last_attempted_at: outcome.attempted_at,
      last_status_code: outcome.status_code,
      last_error: outcome.error,
      lease_token: null,
      leased_until: null,
      retry_requested: false,
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .where('lease_token', '=', leaseToken)
    .returning(deliveryColumns)
    .executeTakeFirst();
  if (!delivery) return undefined;
  await db
    .insertInto('webhook_attempts')
    .values({
      delivery_id: id,
      number: delivery.attempts,
      attempted_at: outcome.attempted_at,
      status_code: outcome.status_code,
      error: outcome.error,
      duration_ms: outcome.duration_ms,
    })
    .execute();
  return delivery;
}

/** A success ends the endpoint's failing streak and its backoff (a write only when there was one). */
export async function endpointSucceeded(db: Db, endpointId: string): Promise<void> {
  await sql`
    update webhook_endpoints set failing_since = null, consecutive_failures = 0, retry_at = null
    where id = ${endpointId}
      and (failing_since is not null or consecutive_failures > 0 or retry_at is not null)`.execute(db);
}

/** An endpoint's delivery health: since when it fails, its failures in a row, when to try it again. */
export interface EndpointHealth {
  failing_since: Date | null;
  consecutive_failures: number;
  retry_at: Date | null;
}

/**
 * The endpoint with its health, locked until the transaction ends: a failed attempt's record. (FOR
 * NO KEY UPDATE, as an update takes: writes recording events for it key-share lock it, and go on.)
 */
export async function lockEndpointHealth(
  db: Db,
  endpointId: string,
): Promise<(WebhookEndpoint & EndpointHealth) | undefined> {
  const { rows } = await sql<WebhookEndpoint & EndpointHealth>`
    select ${sql.join(endpointColumns.map((c) => sql.ref(c)))}, failing_since, consecutive_failures, retry_at
    from webhook_endpoints where id = ${endpointId} for no key update`.execute(db);
  return rows[0];
}

export async function setEndpointHealth(db: Db, endpointId: string, health: EndpointHealth): Promise<void> {
  await sql`
    update webhook_endpoints
    set failing_since = ${health.failing_since}, consecutive_failures = ${health.consecutive_failures},
      retry_at = ${health.retry_at}
    where id = ${endpointId}`.execute(db);
}
