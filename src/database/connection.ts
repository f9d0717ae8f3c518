// The pool, and the tenant transaction every request and job runs in.
import { type CompiledQuery, Kysely, PostgresDialect } from 'kysely';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { createLogger, type Logger } from '../logger.js';
import { isDatabaseUnavailable } from './errors.js';
import type { Database } from './schema.js';

let log: Logger | undefined;
/** The log of connections lost while idle: the process's JSON lines, at LOG_LEVEL. */
const connectionLog = (): Logger => (log ??= createLogger({ level: process.env.LOG_LEVEL ?? 'info' }));

// `date` columns stay 'YYYY-MM-DD' strings: pg would turn them into Dates at local midnight.
// numeric (money) and bigint (counts) already arrive as strings, which keeps them exact.
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => value);

export type Db = Kysely<Database>;

/** The role the API runs as (created by the tenancy migration): owns nothing, cannot bypass RLS. */
export const APP_ROLE = 'subscriptions_app';

export interface DbOptions {
  poolSize?: number;
  /** How long a query may wait for a connection (a free one, or a new one) before failing: 503. */
  connectTimeoutMs?: number;
  /**
   * Every connection of the pool logs in as the URL's user and becomes the app role at once (a
   * startup parameter, so a connection that cannot switch is never made): whatever runs on it,
   * scoped or not, runs under RLS. Off for the owner's pool (migrations, seed, tests' checks).
   */
  asAppRole?: boolean;
  /** Called with the SQL of every query Kysely runs (db/sql snapshots). */
  onQuery?: (sql: string) => void;
}

const pools = new WeakMap<Db, pg.Pool>();

export function createDb(
  connectionString: string,
  { poolSize = 10, connectTimeoutMs = 5000, asAppRole = false, onQuery }: DbOptions = {},
): Db {
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    connectionTimeoutMillis: connectTimeoutMs,
    // Queries are written to the socket without waiting for the previous answer: a tenant
    // transaction's BEGIN, scope and first query travel together (see withTenant).
    pipeline: true,
    ...(asAppRole ? { options: `-c role=${APP_ROLE}` } : {}),
  });
  // A connection can die (server restart, shutdown, network). pg emits 'error' on its client even
  // while a query is running, and an 'error' event without a listener crashes the process; the
  // running query fails with the same error, which answers 503, so these listeners only report.
  // A JSON line, as every log line is (ops6 #4: it was plain text on stderr).
  pool.on('error', (error) =>
    connectionLog().warn({ err: { message: error.message } }, 'idle database connection lost'),
  );
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    ...(onQuery ? { log: (event) => onQuery(event.query.sql) } : {}),
  });
  pools.set(db, pool);
  return db;
}

/** Whose rows a transaction sees: one tenant's, and, for a request, only while its key is valid. */
export interface TenantScope {
  readonly tenantId: string;
  /** The request's API key: checked again in the transaction, which then takes the key's tenant. */
  readonly apiKey?: { readonly prefix: string; readonly hash: Buffer };
  /**
   * One snapshot for every statement (repeatable read), for reads that combine several statements
   * which a concurrent commit must not fall between (the MRR sums and their correction).
   */
  readonly snapshot?: boolean;
}

// Both settings are local to the transaction (set_config(..., true)): a pooled connection never
// carries one request's tenant into the next. api_key_tenant() raises for a key that is no longer
// valid, aborting the transaction, so the statements already pipelined behind it fail as well.
const SCOPE_TO_KEY = {
  name: 'scope_to_api_key',
  text: `select set_config('role', '${APP_ROLE}', true), set_config('app.tenant_id', api_key_tenant($1, $2)::text, true)`,
};
const SCOPE_TO_TENANT = {
  name: 'scope_to_tenant',
  text: `select set_config('role', '${APP_ROLE}', true), set_config('app.tenant_id', $1, true)`,
};

/**
 * A name for each distinct SQL text, so that every connection prepares a statement once and then
 * only binds and executes it: PostgreSQL skips parsing and planning, and reuses the plan.
 * (Statements are built by code, not from input, so there are a few hundred at most.)
 *
 * None for a statement with an array parameter (`= any($1::uuid[])`): after five runs PostgreSQL
 * may switch to a generic plan, made without the array, which guesses it short; under row-level
 * security that plan read every row of the tenant through the tenant's index and compared each
 * with the array (the usage ingestion's check of 1,000 customers: 300 ms and more in a tenant of
 * 20,000). Unnamed, it is planned with its values each time: by the index, for each element.
 */
const statementNames = new Map<string, string | undefined>();
function statementName(text: string): string | undefined {
  if (statementNames.has(text)) return statementNames.get(text);
  const name = /=\s*any\s*\(/i.test(text)
    ? undefined
    : `q${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
  statementNames.set(text, name);
  return name;
}

/** Closing statements with at most this many parameters are prepared (a few events' worth). */
const PREPARED_CLOSING_PARAMETERS = 64;

/** A one-statement transaction's COMMIT, sent right behind its statement (see withTenant). */
interface OneStatement {
  committed?: Promise<pg.QueryResult>;
}

/** One Kysely per pooled connection, so queries of a transaction run on that connection. */
interface Bound {
  client: pg.PoolClient;
  db: Db;
  /** Set while a one-statement transaction runs on the connection. */
  oneStatement?: OneStatement | undefined;
  /** Set while the socket's writes are held until this turn of the event loop ends. */
  holding?: boolean;
}
const bound = new WeakMap<pg.PoolClient, Bound>();
const boundByDb = new WeakMap<Db, Bound>();
function kyselyOn(client: pg.PoolClient): Bound {
  let on = bound.get(client);
  if (!on) {
    const holder = { client } as Bound;
    const connection = {
      query: (text: string, values: unknown[]) => {
        const one = holder.oneStatement;
        if (one?.committed) {
          // Its transaction is over: a second statement would run outside the tenant's scope.
          return Promise.reject(new Error('a one-statement transaction ran a second statement'));
        }
        if (!one) {
          holdUntilTurnEnds(holder);
          return client.query({ name: statementName(text), text, values });
        }
        // The statement and COMMIT in one write (each query is a write of its own otherwise).
        const socket = socketOf(client);
        socket.cork();
        try {
          const result = client.query({ name: statementName(text), text, values });
          one.committed = client.query('commit');
          one.committed.catch(() => {}); // awaited (and its failure reported) by withTenant
          return result;
        } finally {
          socket.uncork();
        }
      },
      release: () => {},
    };
    const pool = { connect: () => Promise.resolve(connection), end: () => Promise.resolve() };
    holder.db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pool as never }) });
    bound.set(client, holder);
    boundByDb.set(holder.db, holder);
    on = holder;
  }
  return on;
}

/** The connection's socket: pg writes each query to it with a write of its own. */
const socketOf = (client: pg.PoolClient) =>
  (client as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;

/**
 * Holds the socket's writes until this turn of the event loop ends: the statements a transaction
 * sends in one turn (BEGIN and the scope with the first query; independent statements awaited
 * together with Promise.all) leave the process in one write. pg writes each query with a write of
 * its own, and on this machine a write to PostgreSQL's socket costs more CPU than most statements'
 * JavaScript (profiles: writev was 21% of the server's time under holds and captures, 28% of the
 * worker's under renewals).
 */
function holdUntilTurnEnds(on: Bound): void {
  if (on.holding) return;
  on.holding = true;
  const socket = socketOf(on.client);
  socket.cork();
  setImmediate(() => {
    on.holding = false;
    socket.uncork();
  });
}

/**
 * Inside withTenant: the transaction's next statement is its last, so COMMIT leaves right behind
 * it, in the same write (as with `oneStatement`), and the read saves a round trip. Only for work
 * with nothing left to write after that statement: closing statements are then refused.
 */
export function commitWithNextStatement(trx: Db): void {
  const on = boundByDb.get(trx);
  if (!on) throw new Error('commitWithNextStatement needs the Db of a withTenant transaction');
  on.oneStatement ??= {};
}

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

export interface WithTenantOptions {
  /**
   * fn runs exactly one statement (a read): COMMIT is sent right behind it, in the same write, so
   * the whole transaction (BEGIN, scope, statement, COMMIT) costs one round trip. A second
   * statement fails; closing statements are refused.
   */
  oneStatement?: boolean;
  /**
   * A statement sent right behind the scope, before any of fn's, whose rows fn receives: fn's
   * first statements go through Kysely's asynchronous steps, whose order against another query's
   * is not fixed (on a new connection a write overtook the idempotency key's claim, which then
   * failed behind the write's error).
   */
  lead?: CompiledQuery | undefined;
}

/**
 * Runs fn in one transaction whose rows are those of one tenant, and commits it. BEGIN and the
 * scoping statement are pipelined ahead of fn's first query, so a read costs two round trips (the
 * first query with them, then COMMIT; one with `oneStatement`, COMMIT travelling with them too). The
 * connection is already the app role, and the scope sets
 * it again: fn never runs with the login user's rights, and with no tenant set it sees no row.
 */
export async function withTenant<T>(
  db: Db,
  scope: TenantScope,
  fn: (trx: Db, lead?: Promise<unknown[]>) => Promise<T>,
  finish?: (trx: Db) => CompiledQuery[],
  { oneStatement = false, lead: leadQuery }: WithTenantOptions = {},
): Promise<T> {
  const pool = pools.get(db);
  if (!pool) throw new Error('withTenant needs a Db made by createDb');
  const client = await pool.connect();
  let broken: Error | undefined;
  // BEGIN, the scope and the first query (Kysely builds it within the same turn) leave in one
  // write instead of three.
  const on = kyselyOn(client);
  holdUntilTurnEnds(on);
  const begin = client.query(scope.snapshot ? 'begin isolation level repeatable read' : 'begin');
  const scoped = scope.apiKey
    ? client.query({ ...SCOPE_TO_KEY, values: [scope.apiKey.prefix, scope.apiKey.hash] })
    : client.query({ ...SCOPE_TO_TENANT, values: [scope.tenantId] });
  // Their failures are reported below, first one first; until then nobody awaits them.
  const setup = Promise.all([failure(begin), failure(scoped)]);
  const lead =
    leadQuery &&
    client
      .query({ name: statementName(leadQuery.sql), text: leadQuery.sql, values: [...leadQuery.parameters] })
      .then((result) => result.rows as unknown[]);
  lead?.catch(() => {}); // fn awaits it; a failure behind BEGIN or the scope is reported as theirs
  on.oneStatement = oneStatement ? {} : undefined;
  // Set now, or by fn (commitWithNextStatement): read again after fn.
  let one: OneStatement | undefined = on.oneStatement;
  try {
    const trx = on.db;
    const result = await fn(trx, lead);
    one = on.oneStatement;
    // The closing statements go out with COMMIT, in one write: queued here, in order.
    const closingQueries = finish?.(trx) ?? [];
    if (one?.committed && closingQueries.length > 0) {
      throw new Error('a one-statement transaction has no closing statements');
    }
    // A few events (the usual write) are prepared statements like fn's; a bulk write's one-off
    // statement is not, so that each connection does not keep a plan for every batch size.
    // They and COMMIT leave in one write (pg writes each query on its own otherwise).
    const socket = socketOf(client);
    socket.cork();
    let closing: Array<Promise<unknown>>;
    let committed: Promise<pg.QueryResult>;
    try {
      closing = closingQueries.map((query) =>
        failure(
          client.query({
            ...(query.parameters.length <= PREPARED_CLOSING_PARAMETERS
              ? { name: statementName(query.sql) }
              : {}),
            text: query.sql,
            values: [...query.parameters],
          }),
        ),
      );
      committed = one?.committed ?? client.query('commit');
    } finally {
      socket.uncork();
    }
    const [beginFailed, scopeFailed] = await setup;
    const closingFailed = (await Promise.all(closing)).find((error) => error !== undefined);
    if (beginFailed ?? scopeFailed ?? closingFailed) {
      await committed.catch(() => {}); // COMMIT of an aborted transaction rolls it back
      throw (beginFailed ?? scopeFailed ?? closingFailed) as Error;
    }
    if ((await committed).command !== 'COMMIT') throw new Error('the transaction was rolled back at COMMIT');
    return result;
  } catch (error) {
    one = on.oneStatement;
    // A statement behind a failed BEGIN or scope fails only because of it: report the cause.
    const [beginFailed, scopeFailed] = await setup;
    const cause = beginFailed ?? scopeFailed ?? error;
    if (isDatabaseUnavailable(cause)) broken = cause as Error;
    else await client.query('rollback').catch((rollbackError: Error) => (broken = rollbackError));
    throw cause;
  } finally {
    on.oneStatement = undefined;
    if (one?.committed) await one.committed.catch(() => {}); // settled before the connection is reused
    // A connection that failed is destroyed, not returned to the pool.
    client.release(broken);
  }
}

/** How many connections the pool may open (undefined: not a pool made by createDb). */
export function poolMax(db: Db): number | undefined {
  return pools.get(db)?.options.max;
}

/** The pool's connections: open, idle, and callers waiting for one (for metrics). */
export function poolStats(db: Db): { total: number; idle: number; waiting: number } | undefined {
  const pool = pools.get(db);
  return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
}
