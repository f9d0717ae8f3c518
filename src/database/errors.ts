// What a database error means, without any HTTP: services turn these into outcomes, the HTTP
// layer turns what is left into problems.
import pg from 'pg';

/** The SQLSTATE of a PostgreSQL error, undefined for anything else. */
export const sqlState = (error: unknown): string | undefined =>
  error instanceof pg.DatabaseError ? error.code : undefined;

/** A unique constraint (or unique index) was violated; by this one, when named. */
export const isUniqueViolation = (error: unknown, constraint?: string): boolean =>
  sqlState(error) === '23505' &&
  (constraint === undefined || (error as pg.DatabaseError).constraint === constraint);

/** A foreign key was violated (a missing referenced row, or a row still referenced). */
export const isForeignKeyViolation = (error: unknown, constraint?: string): boolean =>
  sqlState(error) === '23503' &&
  (constraint === undefined || (error as pg.DatabaseError).constraint === constraint);

/** A check constraint was violated; by this one, when named. */
export const isCheckViolation = (error: unknown, constraint?: string): boolean =>
  sqlState(error) === '23514' &&
  (constraint === undefined || (error as pg.DatabaseError).constraint === constraint);

// Socket-level failures of the database connection; they carry no SQLSTATE.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
// What pg and pg-pool say when a connection dies, cannot be made in time, or the pool is closed.
const UNAVAILABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|connection timeout|not queryable|cannot use a pool after calling end/i;

/**
 * True when the error means the database cannot be reached: a socket failure, a dropped or timed
 * out connection, a closed pool, or PostgreSQL refusing work for the moment (class 08 connection
 * exceptions, 57P01-57P03 shutdown and startup, 53300 too many connections).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) {
    const code = error.code ?? '';
    return code.startsWith('08') || /^57P0[123]$/.test(code) || code === '53300';
  }
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable);
  return UNAVAILABLE_MESSAGES.test(error.message);
}

/**
 * PostgreSQL refusing a new connection for good (3D000: the database was dropped or renamed;
 * class 28: the role or its password changed). At startup that is a configuration error, which
 * fails at once (database/open.ts); once serving, the server could connect before, so a request
 * meets the database away: 503, as isDatabaseUnavailable's errors (ops6 #2: these answered 500).
 */
export const isConnectionRefused = (error: unknown): boolean => {
  const state = sqlState(error);
  return state === '3D000' || (state?.startsWith('28') ?? false);
};

/** A deadlock or a serialization failure: the transaction was rolled back and may simply run again. */
export const isTransientConflict = (error: unknown): boolean => {
  const state = sqlState(error);
  return state === '40P01' || state === '40001';
};

/** api_key_tenant() refused the request's key: revoked or expired since it was authenticated. */
export const isKeyRejected = (error: unknown): boolean => sqlState(error) === 'KEY01';
