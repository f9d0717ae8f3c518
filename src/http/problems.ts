// One place turns every failure into an RFC 9457 application/problem+json response.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { error as validatorErrors } from 'express-openapi-validator';
import pg from 'pg';
import type { Schemas } from '../contract.js';
import { isConnectionRefused, isDatabaseUnavailable, isKeyRejected } from '../database/errors.js';
import type { Logger } from '../logger.js';
import { MrrRangeError } from '../analytics/mrr-engine.js';
import { PeriodBeyondCalendarError } from '../billing/periods.js';
import { MAX_PERIOD_AMOUNT, PriceTooHighError } from '../billing/pricing.js';
import { ClockAdvancingError, IdempotencyStop } from '../services/context.js';
import { spec } from '../spec.js';
import { sendStored } from './replies.js';

type Problem = Schemas['Problem'];
export type FieldError = NonNullable<Problem['errors']>[number];

const TITLES = {
  'validation-error': 'Invalid request',
  'malformed-json': 'Malformed JSON',
  'invalid-cursor': 'Invalid cursor',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  'too-many-requests': 'Too many requests',
  'not-found': 'Not found',
  'method-not-allowed': 'Method not allowed',
  conflict: 'Conflict',
  'payload-too-large': 'Payload too large',
  'unsupported-media-type': 'Unsupported media type',
  unprocessable: 'Unprocessable content',
  'service-unavailable': 'Service unavailable',
  'request-aborted': 'Request aborted',
  'malformed-request': 'Malformed request',
  'request-header-fields-too-large': 'Request header fields too large',
  'request-timeout': 'Request timeout',
  'not-implemented': 'Not implemented',
  'expectation-failed': 'Expectation failed',
  'precondition-failed': 'Precondition failed',
  'idempotency-in-progress': 'Request in progress',
  'idempotency-key-reused': 'Idempotency key reused',
  'idempotency-replay-withheld': 'Replay withheld',
  'insufficient-credits': 'Insufficient credits',
} as const;
export type ProblemType = keyof typeof TITLES;

/** The Content-Encodings the body parser inflates (body-parser's), one at most. */
export const BODY_ENCODINGS: readonly string[] = ['identity', 'gzip', 'deflate', 'br'];

/** A body's Content-Encoding the parser cannot inflate: say which ones it takes. */
export function unsupportedEncoding(encoding: string | undefined): ProblemError {
  return new ProblemError(
    415,
    'unsupported-media-type',
    `The body's Content-Encoding${encoding ? ` ${encoding}` : ''} is not supported: send it as is (identity), or compressed with gzip, deflate or br, once.`,
  );
}

/** The body of a problem of this type, for the few places that answer outside Express. */
export function problemBody(status: number, type: ProblemType, detail: string): Problem {
  return { type: `/problems/${type}`, title: TITLES[type], status, detail };
}

export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly type: ProblemType,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const notFound = (detail: string) => new ProblemError(404, 'not-found', detail);
export const badRequest = (detail: string, errors?: FieldError[]) =>
  new ProblemError(400, 'validation-error', detail, errors);
export const conflict = (detail: string, errors?: FieldError[]) =>
  new ProblemError(409, 'conflict', detail, errors);
/** If-Match (or a body's `version`) named another version: the current one is in the ETag header. */
export const preconditionFailed = (resource: string, current: number, named = 'If-Match names') =>
  new ProblemError(
    412,
    'precondition-failed',
    `The ${resource} ${resource.endsWith('settings') ? 'are' : 'is'} at version ${current}, not the one ${named}: read it again and retry.`,
    undefined,
    { ETag: `"${current}"` },
  );
export const unprocessable = (detail: string, errors?: FieldError[]) =>
  new ProblemError(422, 'unprocessable', detail, errors);

/** Constraint errors no service turned into an outcome: still the client's, never a 500. */
function fromPgError(error: pg.DatabaseError): ProblemError | undefined {
  const code = error.code ?? '';
  if (code === '23505') return conflict('A resource with these unique values already exists.');
  if (code === '23503') return conflict('The resource is still referenced by another resource.');
  if (code.startsWith('23')) return unprocessable('The request breaks a rule of the data.');
  // Class 22 (data exception): a valid request whose value PostgreSQL cannot store. Every such
  // limit is stated in openapi.yaml or checked by a service, so this is a gap (logged as an
  // error by problemHandler); the client still gets what it is: a valid request breaking a rule.
  if (isDataException(error)) return unprocessable('A value is out of range for what this API can store.');
  return undefined;
}

const isDataException = (error: unknown): error is pg.DatabaseError =>
  error instanceof pg.DatabaseError && (error.code ?? '').startsWith('22');

/** Seconds a client should wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

export const databaseUnavailable = () =>
  new ProblemError(503, 'service-unavailable', 'The database is not reachable; retry later.', undefined, {
    'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS),
  });

// The validator names where an error is as the first segment of its path.
const LOCATIONS: Record<string, FieldError['location']> = {
  body: 'body',
  params: 'path',
  path: 'path',
  query: 'query',
  headers: 'headers',
};

/** '/body/email' → { location: 'body', field: '/email' }; '/query/limit' → field 'limit'. */
function toFieldError(item: { path: string; message: string }): FieldError {
  const [, head = '', ...rest] = item.path.split('/');
  const location = LOCATIONS[head] ?? 'body';
  const field = location === 'body' ? `/${rest.join('/')}`.replace(/\/$/, '') : rest.join('/');
  return { location, ...(field ? { field } : {}), message: item.message };
}

type ValidatorError = InstanceType<(typeof validatorErrors)[keyof typeof validatorErrors]>;
const VALIDATOR_ERRORS = Object.values(validatorErrors);
const isValidatorError = (error: unknown): error is ValidatorError =>
  VALIDATOR_ERRORS.some((type) => error instanceof type);

/**
 * The validator refuses a reserved character in a query value with "must be url encoded", which
 * says nothing of the usual cause: a list sent as `status=active,canceled`, where the contract
 * takes one parameter per value (explode). The problem names the characters and a list's form.
 */
const RESERVED_IN_QUERY = /^Parameter '([^']+)' must be url encoded/;

function reservedCharacterProblem(name: string): ProblemError {
  const message =
    'holds a character that must be percent-encoded (one of : / ? # [ ] @ $ & + , ; =, ' +
    `as %3A for :); if it is a list, send one parameter per value (${name}=a&${name}=b), not values joined by commas`;
  return new ProblemError(400, 'validation-error', `The query parameter '${name}' ${message}.`, [
    { location: 'query', field: name, message },
  ]);
}

/**
 * A parameter that takes one value, given several times (`?limit=10&limit=20`), reaches the
 * validator as a list, which it reports as the wrong type ("must be integer"): say what happened.
 */
const ONE_VALUE_EXPECTED = /^must be (integer|number|string|boolean)$/;

function repeatedParameter(
  item: { path: string; message: string },
  query: Record<string, unknown> | undefined,
): { path: string; message: string } {
  const name = /^\/query\/([^/]+)$/.exec(item.path)?.[1];
  const given = name === undefined ? undefined : query?.[name];
  if (!Array.isArray(given) || !ONE_VALUE_EXPECTED.test(item.message)) return item;
  return { path: item.path, message: `is given ${given.length} times; it takes one value` };
}

/**
 * A property the schema does not define is reported as "must NOT have additional properties", at
 * the property's path, and the detail (the validator's message) dropped its name: say which.
 */
const ADDITIONAL_PROPERTY = 'must NOT have additional properties';

function unknownProperty(item: { path: string; message: string }): { path: string; message: string } {
  if (item.message !== ADDITIONAL_PROPERTY) return item;
  return {
    path: item.path,
    message: 'is not a known property: unknown properties are refused',
  };
}

/** The Region schema's pattern: its 249 country codes, which no one reads in an error. */
const REGION_PATTERN = `must match pattern "${(spec.components as { schemas: Record<string, { pattern?: string }> }).schemas.Region!.pattern}"`;

/** A region the schema refuses: the rule in words, not the pattern (import1 #5). */
function regionRule(item: { path: string; message: string }): { path: string; message: string } {
  if (item.message !== REGION_PATTERN) return item;
  return {
    path: item.path,
    message:
      'must be an assigned ISO 3166-1 alpha-2 country code in capitals (GB, not UK), or an ISO 3166-2 subdivision of one (US-CA)',
  };
}

/**
 * An Idempotency-Key the schema's pattern refuses: its rule in words, not the pattern.
 */
function idempotencyKeyRule(item: { path: string; message: string }): { path: string; message: string } {
  if (item.path !== '/headers/idempotency-key' || !item.message.startsWith('must match pattern')) return item;
  return {
    path: item.path,
    message:
      'must be 1 to 255 printable ASCII characters without a comma (a header sent twice arrives as one line, its values joined by a comma)',
  };
}

/**
 * A nullable field is a oneOf of null and its type. A value that is not null fails the type's
 * rules, and the validator adds "must be null" and "must match exactly one schema in oneOf" at
 * the same path, which read as if null were wanted: keep what the type's rules said.
 */
const NULLABLE_NOISE = new Set(['must be null', 'must match exactly one schema in oneOf']);

function withoutNullableNoise<T extends { path: string; message: string }>(items: T[]): T[] {
  const nullable = new Set(items.filter((item) => item.message === 'must be null').map((item) => item.path));
  if (nullable.size === 0) return items;
  const kept = items.filter((item) => !(nullable.has(item.path) && NULLABLE_NOISE.has(item.message)));
  return kept.length > 0 ? kept : items;
}

function fromValidatorError(
  error: ValidatorError,
  query?: Record<string, unknown>,
): ProblemError | undefined {
  switch (error.status) {
    case 400: {
      const reserved = RESERVED_IN_QUERY.exec(error.message);
      if (reserved) return reservedCharacterProblem(reserved[1]!);
      const items = withoutNullableNoise(error.errors).map((item) =>
        regionRule(idempotencyKeyRule(unknownProperty(repeatedParameter(item, query)))),
      );
      const detail =
        items.length !== error.errors.length || items.some((item, i) => item !== error.errors[i])
          ? items.map((item) => `request${item.path} ${item.message}`).join(', ')
          : error.message;
      return new ProblemError(400, 'validation-error', detail, items.map(toFieldError));
    }
    case 404:
      return notFound(`No route ${error.path ?? ''}.`);
    case 405: {
      const methods = (error.headers?.Allow ?? '').toUpperCase().split(', ');
      // HEAD works wherever GET does (RFC 9110), though the spec lists only GET.
      if (methods.includes('GET')) methods.push('HEAD');
      const allow = methods.sort().join(', ');
      return new ProblemError(405, 'method-not-allowed', error.message, undefined, { Allow: allow });
    }
    case 413:
      return new ProblemError(413, 'payload-too-large', error.message);
    case 415:
      return new ProblemError(415, 'unsupported-media-type', 'Send the body as application/json.');
    default:
      return undefined;
  }
}

/**
 * Valid JSON that is not an object or array (`null`, `42`, `"text"`): body-parser's strict mode
 * refuses it as a parse failure, but it is a body of the wrong type, as an array is to the
 * validator (every request body of the contract is an object).
 */
function isJsonScalar(body: unknown): boolean {
  if (typeof body !== 'string') return false;
  try {
    const value: unknown = JSON.parse(body);
    return value === null || typeof value !== 'object';
  } catch {
    return false;
  }
}

/** body-parser's errors carry a `type` naming what went wrong (and the raw `body` of a parse failure). */
function fromBodyParserError(error: {
  type?: unknown;
  limit?: unknown;
  body?: unknown;
  encoding?: unknown;
}): ProblemError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      if (isJsonScalar(error.body))
        return new ProblemError(400, 'validation-error', 'request/body must be object', [
          { location: 'body', message: 'must be object' },
        ]);
      return new ProblemError(400, 'malformed-json', 'The request body is not valid JSON.');
    case 'entity.too.large':
      return new ProblemError(
        413,
        'payload-too-large',
        `The request body is over the limit of ${String(error.limit)} bytes.`,
      );
    case 'encoding.unsupported':
      return unsupportedEncoding(typeof error.encoding === 'string' ? error.encoding : undefined);
    case 'charset.unsupported':
      return new ProblemError(415, 'unsupported-media-type', 'Send the body as UTF-8 application/json.');
    case 'request.aborted':
      // The client went away mid-body: its doing, not ours; nobody is left to read the answer.
      return new ProblemError(
        400,
        'request-aborted',
        'The client closed the connection before the body ended.',
      );
    default:
      return undefined;
  }
}

/**
 * The body's dates (top-level fields holding a date or a timestamp) on or after `day`: those that
 * put a billing period past the calendar, which begins on or before them.
 */
function datesFrom(body: unknown, day: string): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [];
  return Object.entries(body as Record<string, unknown>).flatMap(([field, value]) =>
    typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value) && value.slice(0, 10) >= day ? [field] : [],
  );
}

/** The fields that set a billing schedule's length: what put a period past the calendar when no date did. */
const SCHEDULE_FIELDS = ['plan_id', 'billing_interval', 'interval_count'];

/** The body's fields to blame for a period past the calendar: its late dates, else its schedule's. */
function fieldsPastCalendar(body: unknown, day: string): string[] {
  const dates = datesFrom(body, day);
  if (dates.length > 0 || body === null || typeof body !== 'object' || Array.isArray(body)) return dates;
  return SCHEDULE_FIELDS.filter((field) => (body as Record<string, unknown>)[field] !== undefined);
}

/**
 * The problem an error is, if it is one a client caused (`query` and `body`: the request's, to
 * explain it).
 */
export function toProblem(
  error: unknown,
  query?: Record<string, unknown>,
  body?: unknown,
): ProblemError | undefined {
  if (error instanceof ProblemError) return error;
  if (isValidatorError(error)) return fromValidatorError(error, query);
  // body-parser's errors name their kind in `type`; its socket errors must not pass for the database's.
  if (error !== null && typeof error === 'object' && 'type' in error) {
    const problem = fromBodyParserError(error);
    if (problem) return problem;
  }
  if (error instanceof IdempotencyStop) {
    if (error.stop.kind === 'in-progress') {
      return new ProblemError(
        409,
        'idempotency-in-progress',
        'A request with this Idempotency-Key is still running; retry in a moment to get its answer.',
        undefined,
        { 'Retry-After': '1' },
      );
    }
    if (error.stop.kind === 'withheld') {
      return new ProblemError(
        409,
        'idempotency-replay-withheld',
        'The request with this Idempotency-Key succeeded, but the secret its answer carried has been ' +
          'rotated since (or the resource deleted), and a secret is never handed out again. Read the ' +
          'resource with GET; rotate its secret for a new one.',
      );
    }
    if (error.stop.kind === 'key-reused') {
      return new ProblemError(
        422,
        'idempotency-key-reused',
        'This Idempotency-Key was used for a different request (method, path or body); use a new key for a new request.',
        [{ location: 'headers', field: 'idempotency-key', message: 'used for a different request' }],
      );
    }
  }
  if (error instanceof PriceTooHighError) {
    return unprocessable(`${error.message}: choose a smaller quantity or another plan.`, [
      {
        location: 'body',
        field: '/quantity',
        message: `prices the subscription at ${error.amount} a period; at most ${MAX_PERIOD_AMOUNT} is allowed`,
      },
    ]);
  }
  if (error instanceof ClockAdvancingError) {
    return conflict(
      `The test clock is advancing to ${error.to.toISOString()}: make the change once the clock is ready (GET /api/v1/test-clocks/${error.clockId}), so that it is dated after the billing on the way.`,
    );
  }
  if (error instanceof PeriodBeyondCalendarError) {
    const fields = fieldsPastCalendar(body, error.period.start);
    return unprocessable(
      `${fields.length > 0 ? `${fields.join(', ')}: ` : ''}${error.message}: dates in this API have four-digit years. Choose an earlier date or a shorter interval.`,
      fields.length > 0
        ? fields.map((field) => ({
            location: 'body' as const,
            field: `/${field}`,
            message: `${error.message} (dates have four-digit years)`,
          }))
        : undefined,
    );
  }
  if (error instanceof MrrRangeError) {
    // The tenant's data, not a fault of ours: the metrics count cents exactly in doubles.
    return conflict(
      "The tenant's MRR passes what the metrics count exactly: a sum under 2^53 cents " +
        "(90,071,992,547,409.91 at most), on some day, past or to come (the tenant's, a filter's or one customer's). " +
        'No figure is rounded, so none is given. The figures come back once no day passes it: ending or ' +
        'lowering subscriptions today leaves the past days as they were, while the dates that put them ' +
        'there (start and end dates) or deleting subscriptions made by mistake change them.',
    );
  }
  if (isDatabaseUnavailable(error) || isConnectionRefused(error)) return databaseUnavailable();
  if (isKeyRejected(error)) {
    return new ProblemError(
      401,
      'unauthorized',
      'The API key is not valid: unknown, expired or revoked.',
      undefined,
      {
        'WWW-Authenticate': 'Bearer',
      },
    );
  }
  if (error instanceof pg.DatabaseError) return fromPgError(error);
  return undefined;
}

export function sendProblem(
  res: Parameters<RequestHandler>[1],
  problem: Problem,
  headers: Record<string, string> = {},
) {
  res.status(problem.status).set(headers).type('application/problem+json').send(JSON.stringify(problem));
}

export const notFoundHandler: RequestHandler = (req) => {
  throw notFound(`No route ${req.method} ${req.path}.`);
};

export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    const instance = req.originalUrl.split('?')[0];
    if (res.headersSent) {
      logger.error({ request_id: req.id, err: error }, 'error after the response started');
      return next(error);
    }
    if (error instanceof IdempotencyStop && error.stop.kind === 'replay')
      return sendStored(res, error.stop.reply);
    const problem = toProblem(error, req.query, req.body);
    if (!problem) {
      // Unknown: log everything, tell the client nothing it could use against us.
      logger.error(
        { request_id: req.id, method: req.method, path: instance, err: error },
        'unexpected error',
      );
      sendProblem(res, {
        type: 'about:blank',
        title: 'Internal Server Error',
        status: 500,
        instance,
        request_id: req.id,
      });
      return;
    }
    if (isDataException(error)) {
      logger.error(
        { request_id: req.id, method: req.method, path: instance, err: error },
        'a valid request overflowed the database: state the limit in openapi.yaml or check it in a service',
      );
    }
    if (problem.status === 503) {
      const reason = error instanceof Error ? error.message : String(error);
      logger.warn({ request_id: req.id, reason }, 'database unavailable');
    }
    const body: Problem = {
      type: `/problems/${problem.type}`,
      title: TITLES[problem.type],
      status: problem.status,
      detail: problem.detail,
      instance,
      request_id: req.id,
      ...(problem.errors?.length ? { errors: problem.errors } : {}),
    };
    sendProblem(res, body, problem.headers);
  };
}
