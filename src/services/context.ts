// What every service function receives (the connections, and who is acting), and the one way a
// service writes: inTenant, a transaction in which the change, its events and its idempotency
// record commit together or not at all.
import type { CompiledQuery } from 'kysely';
import type { KeyCache } from '../auth/key-cache.js';
import {
  commitWithNextStatement,
  type Db,
  type TenantScope,
  withTenant,
  type WithTenantOptions,
} from '../database/connection.js';
import { isKeyRejected, isTransientConflict } from '../database/errors.js';
import type { ApiKeyRole, TestClockRow } from '../database/schema.js';
import * as events from '../queries/events.js';
import * as idempotencyKeys from '../queries/idempotency-keys.js';
import { shareLockTestClock } from '../queries/test-clocks.js';

/** A presented key found valid: who it acts as. */
export interface KeyHolder {
  keyId: string;
  tenantId: string;
  role: ApiKeyRole;
  apiKey: { prefix: string; hash: Buffer };
}

export interface ServiceContext {
  /** The app's pool: every transaction switches to the app role and one tenant (RLS). */
  readonly db: Db;
  /** Keys authenticated lately (see auth/key-cache.ts); absent where nothing authenticates keys. */
  readonly keyCache?: KeyCache<KeyHolder>;
  /** Tests only: runs after a service's work, before its events and records are written (a fault, a pause). */
  readonly faults?: { beforeCommit?: () => void | Promise<void> };
  /**
   * Waits for a turn of the server's writes (http/write-gate.ts) and returns its end, for work
   * that groups several requests into one transaction and so takes its turn itself, once per
   * transaction; absent (tests, the CLI), writes do not wait.
   */
  readonly writeTurn?: () => Promise<() => void>;
}

/** What a retry with the same idempotency key gets back, byte for byte. */
export interface StoredReply {
  status: number;
  headers: Record<string, string>;
  /** The body exactly as sent ('' for none). */
  body: string;
}

/** A request carrying an Idempotency-Key (see http/idempotency.ts). */
export interface IdempotentRequest {
  key: string;
  /** Of the method, the path and the canonical body: the same key with another request is refused. */
  fingerprint: string;
  /** The reply for the work's result, to store with it; undefined when the result is a refusal. */
  reply(result: unknown): StoredReply | undefined;
  /**
   * For stored replies that may not hold today what they held then (a secret since rotated): the
   * reply to replay, read in a transaction of its own; undefined withholds it (409).
   */
  replay?(tx: Tx, stored: StoredReply): Promise<StoredReply | undefined>;
}

/** Who acts, in which tenant: an API key over HTTP, or the system (CLI, seed, jobs). */
export interface Actor extends TenantScope {
  /** The API key's id, or 'system'. */
  readonly keyId: string;
  /** The API key's role; absent for the system, which may do anything. */
  readonly role?: ApiKeyRole;
  /** The HTTP request's id, recorded with its events. */
  readonly requestId?: string;
  readonly idempotency?: IdempotentRequest;
}

/** An idempotency key that cannot run now: the HTTP layer answers these (http/problems.ts). */
export class IdempotencyStop extends Error {
  constructor(
    readonly stop:
      | { kind: 'replay'; reply: StoredReply }
      | { kind: 'in-progress' }
      | { kind: 'key-reused' }
      | { kind: 'withheld' },
  ) {
    super(`idempotency: ${stop.kind}`);
  }
}

/** What a key's claim (idempotencyKeys.claim) says: undefined when the work may run. */
export function idempotencyStop(
  claimed: idempotencyKeys.Claim,
  request: IdempotentRequest,
): IdempotencyStop | undefined {
  if (!claimed.locked) return new IdempotencyStop({ kind: 'in-progress' });
  if (!claimed.stored) return undefined;
  if (claimed.stored.fingerprint !== request.fingerprint) return new IdempotencyStop({ kind: 'key-reused' });
  return new IdempotencyStop({ kind: 'replay', reply: claimed.stored });
}

export type NewEvent = Omit<events.EventInput, 'actor' | 'request_id'> & {
  /** 'system' for changes the system makes on its own (a scheduled cancellation). */
  actor?: 'system';
  /** The request the change is from, when not the transaction's actor's (a group of requests). */
  request_id?: string | null;
};

/**
 * The resources that live in a test clock's time (a subscription on it, and what bills it). The
 * others (a customer, a coupon, the catalog) live in real time even when a clock's step changes
 * them: stamped with the clock's time, their events would run backwards (a customer created today
 * credited "last January"), and a poller resuming `after` its last event would miss them.
 */
const ON_CLOCKS: ReadonlySet<string> = new Set([
  'subscription',
  'invoice',
  'invoice_item',
  'payment',
  'refund',
  'credit_note',
  'wallet',
  'wallet_grant',
  'test_clock',
]);

/** A service's transaction: its connection, and the events of its changes. */
export interface Tx {
  readonly db: Db;
  /** Records an event; written with the transaction's last statements, just before COMMIT. */
  emit(event: NewEvent): void;
  /**
   * The time the transaction's events occurred at, when not now: a test clock's (its
   * subscriptions live in the clock's time), for every event of the transaction. The first call
   * wins: a worker step sets its due time before the code it shares with requests sets the
   * clock's now.
   */
  occurAt(at: Date): void;
  /** The time set by occurAt, if any: a worker step's due time, or a test clock's now. */
  occurredAt(): Date | undefined;
  /**
   * What this transaction last showed of a resource (key: its type and id): the data of its last
   * event here, or what show() set first. An update's `previous` is computed against it, so it
   * names every field that moved since the resource's last event, whatever changed in between.
   */
  lastShown(key: string): unknown;
  show(key: string, data: unknown): void;
  /**
   * The next statement is the work's last: when nothing is left to write after it (no event
   * emitted, no reply to store), COMMIT goes with it and a read saves a round trip. Otherwise
   * nothing changes.
   */
  commitWithNext(): void;
  /** A statement written with the transaction's last ones, just before COMMIT (no round trip of its own). */
  atCommit(query: CompiledQuery): void;
}

/**
 * One transaction, scoped to the actor's tenant (`oneStatement`: a read of one statement, committed
 * in the same round trip, see withTenant). With an idempotency key, a retry of a finished
 * request gets its stored reply instead of a second run (and the work of the first is locked
 * against a concurrent second); the reply is stored in the same transaction as the work.
 */
export async function inTenant<T>(
  ctx: ServiceContext,
  actor: Actor,
  fn: (tx: Tx) => Promise<T>,
  options: WithTenantOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTenantOnce(ctx, actor, fn, options);
    } catch (error) {
      if (!isTransientConflict(error) || attempt >= CONFLICT_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, conflictBackoffMs(attempt)));
    }
  }
}

/**
 * A deadlock (40P01) or serialization failure (40001) rolled the whole transaction back, so it can
 * run again from the start; a client never sees one. Lock order keeps them rare (see
 * services/collection.ts): these retries are the safety net, bounded, with full jitter.
 */
const CONFLICT_ATTEMPTS = 5;
export const conflictBackoffMs = (attempt: number) => Math.random() * Math.min(200, 10 * 2 ** attempt);

async function inTenantOnce<T>(
  ctx: ServiceContext,
  actor: Actor,
  fn: (tx: Tx) => Promise<T>,
  options: WithTenantOptions,
): Promise<T> {
  // A one-statement read commits right behind its statement: it has no events and no key to store.
  if (options.oneStatement && actor.idempotency) {
    throw new Error('a one-statement read takes no idempotency key');
  }
  const pending: events.EventInput[] = [];
  const closing: CompiledQuery[] = [];
  let reply: StoredReply | undefined;
  let occurredAt: Date | undefined;
  const shown = new Map<string, unknown>();
  // The key's claim goes out right behind the scope, ahead of the work's first statement and in
  // the same round trip (withTenant's `lead`). The work runs optimistically: when the claim says
  // the key cannot run, whatever the work did is rolled back with the transaction, and its errors
  // are not the answer.
  const keyClaim =
    actor.idempotency && idempotencyKeys.claimStatement(ctx.db, actor.keyId, actor.idempotency.key);
  try {
    return await withTenant(
      ctx.db,
      actor,
      async (db, lead) => {
        const claim = keyClaim && lead?.then(keyClaim.answer);
        const stopped = async () => {
          const answer = await claim;
          return answer && actor.idempotency && idempotencyStop(answer, actor.idempotency);
        };
        let result: T;
        try {
          result = await fn({
            db,
            emit: (event) => {
              if (options.oneStatement) throw new Error('a one-statement read records no event');
              pending.push({
                ...event,
                actor: event.actor ?? actor.keyId,
                request_id:
                  event.actor === 'system'
                    ? null
                    : event.request_id !== undefined
                      ? event.request_id
                      : (actor.requestId ?? null),
              });
            },
            occurAt: (at) => (occurredAt ??= at),
            occurredAt: () => occurredAt,
            lastShown: (key) => shown.get(key),
            show: (key, data) => shown.set(key, data),
            commitWithNext: () => {
              if (pending.length === 0 && closing.length === 0 && !actor.idempotency)
                commitWithNextStatement(db);
            },
            atCommit: (query) => {
              if (options.oneStatement) throw new Error('a one-statement read writes nothing at commit');
              closing.push(query);
            },
          });
        } catch (error) {
          throw (await stopped()) ?? error;
        }
        const stop = await stopped();
        if (stop) throw stop;
        // Refusals (a 4xx outcome) wrote nothing and store nothing: a corrected retry can run.
        reply = actor.idempotency?.reply(result);
        if (reply && reply.status >= 400) reply = undefined;
        await ctx.faults?.beforeCommit?.();
        return result;
      },
      // Sent together with COMMIT, in one round trip.
      (db) => [
        ...closing,
        ...events.insertEvents(
          db,
          occurredAt
            ? pending.map((event) =>
                ON_CLOCKS.has(event.resource_type) ? { ...event, occurred_at: occurredAt } : event,
              )
            : pending,
          reply && actor.idempotency
            ? {
                apiKeyId: actor.keyId,
                key: actor.idempotency.key,
                fingerprint: actor.idempotency.fingerprint,
                reply,
              }
            : undefined,
        ),
      ],
      { ...options, lead: keyClaim?.query },
    );
  } catch (error) {
    // Revoked or expired since it was cached: the next request checks the database first.
    if (isKeyRejected(error)) ctx.keyCache?.forgetKey(actor.keyId);
    if (error instanceof IdempotencyStop && error.stop.kind === 'replay' && actor.idempotency?.replay) {
      throw await checkedReplay(ctx, actor, error.stop.reply);
    }
    throw error;
  }
}

/** A stored reply that needs checking before a replay, checked after the work rolled back. */
async function checkedReplay(
  ctx: ServiceContext,
  actor: Actor,
  stored: StoredReply,
): Promise<IdempotencyStop> {
  const { idempotency, ...reader } = actor;
  const reply = await inTenant(ctx, reader, (tx) => idempotency!.replay!(tx, stored));
  return new IdempotencyStop(reply ? { kind: 'replay', reply } : { kind: 'withheld' });
}

/** A page of rows: the query fetched limit + 1, so `more` says whether another page follows. */
export interface Page<Row> {
  rows: Row[];
  more: boolean;
}

export function toPage<Row>(rows: Row[], limit: number): Page<Row> {
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}

/** If-Match: '*' (any version) or the versions the client has seen; absent, no condition. */
export type VersionCondition = '*' | readonly number[] | undefined;

export const satisfies = (condition: VersionCondition, version: number): boolean =>
  condition === undefined || condition === '*' || condition.includes(version);

/** The fields whose values differ, with their values before: an update event's `previous`. */
export function previousValues(before: object, after: object): Record<string, unknown> {
  const previous: Record<string, unknown> = {};
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (key === 'updated_at' || key === 'version') continue;
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) previous[key] = a[key] ?? null;
  }
  return previous;
}

/** The fields a PATCH sets (undefined means "not sent"). */
export function defined<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A change to a wallet or subscription on a test clock that is advancing: 409, retried once the clock is ready. */
export class ClockAdvancingError extends Error {
  constructor(
    readonly clockId: string,
    readonly to: Date,
  ) {
    super(`test clock ${clockId} is advancing to ${to.toISOString()}`);
  }
}

/**
 * The test clock, locked in share mode (an advance, which marks it advancing, waits for this
 * transaction, or this one sees it advancing); refused with ClockAdvancingError while it advances.
 * For what joins a clock (a subscription or wallet created on it) or changes on it: its time is
 * already the new one, which the worker's steps on the way have not reached, so the change would
 * meet months billed as if it had been there all along. Undefined when there is no such clock.
 */
export async function readyClock(tx: Tx, clockId: string): Promise<TestClockRow | undefined> {
  const clock = await shareLockTestClock(tx.db, clockId);
  if (clock?.status === 'advancing') throw new ClockAdvancingError(clock.id, clock.frozen_time);
  return clock;
}
