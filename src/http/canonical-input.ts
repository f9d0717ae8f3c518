// One spelling for values that have several (the contract takes them all), made once, before any
// service sees them:
// - ids: `format: uuid` takes both cases, but an id kept as text (a price breakdown, a scheduled
//   change, jsonb) was stored as sent, and a service comparing ids as strings saw a change where
//   there was none (or none where there was one: the last admin key, revoked by its id in upper
//   case). Path ids are lowercased before routing, body ids after the validator. Query ids only
//   reach uuid columns (PostgreSQL compares them whatever their case) and are left as they are.
// - instants: `date-time` takes any number of fractional digits; JavaScript's Date keeps three,
//   PostgreSQL six (rounding: 23:59:59.9999999 became the next day). Body values keep at most
//   three, truncated as Date does, so every path stores the same instant.
import type { RequestHandler } from 'express';
import { type Operation, operations } from '../operations.js';
import { spec } from '../spec.js';
import { isDateTime, isUuid } from './formats.js';

interface Schema {
  $ref?: string;
  format?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  allOf?: Schema[];
  oneOf?: Schema[];
  anyOf?: Schema[];
}

/** A date-time's fraction past its milliseconds (it has one fraction, after the seconds). */
const PAST_MS = /(\.\d{3})\d+/;

const schemas = (spec.components as { schemas: Record<string, Schema> }).schemas;
const REF = '#/components/schemas/';

function deref(schema: Schema): Schema {
  let seen = 0;
  while (schema.$ref?.startsWith(REF) && seen++ < 32) schema = schemas[schema.$ref.slice(REF.length)]!;
  return schema;
}

const CANONICAL_FORMATS = new Set(['uuid', 'date-time']);

/** Whether an id or an instant can be anywhere under schema (memoized; one in progress counts as none). */
const holdsOne = new Map<Schema, boolean>();
function mayHoldOne(schema: Schema): boolean {
  schema = deref(schema);
  const known = holdsOne.get(schema);
  if (known !== undefined) return known;
  holdsOne.set(schema, false);
  const children = [
    ...Object.values(schema.properties ?? {}),
    ...(typeof schema.additionalProperties === 'object' ? [schema.additionalProperties] : []),
    ...(schema.items ? [schema.items] : []),
    ...(schema.allOf ?? []),
    ...(schema.oneOf ?? []),
    ...(schema.anyOf ?? []),
  ];
  const result = CANONICAL_FORMATS.has(schema.format ?? '') || children.some(mayHoldOne);
  holdsOne.set(schema, result);
  return result;
}

/**
 * Lowercases the ids and truncates the instants of a value the validator accepted against schema,
 * in place. In a oneOf or
 * anyOf only a string that is a uuid is touched, as the branch it sits in may not be the one that
 * matched.
 */
function canonicalize(schema: Schema, value: unknown, strict = false): unknown {
  schema = deref(schema);
  if (!mayHoldOne(schema)) return value;
  if (typeof value === 'string') {
    if (schema.format === 'uuid') return !strict || isUuid(value) ? value.toLowerCase() : value;
    // Past milliseconds: the validator accepted it as a date-time (or, in a oneOf, it must be one).
    if (schema.format === 'date-time' && (!strict || isDateTime(value))) return value.replace(PAST_MS, '$1');
    return value;
  }
  if (value === null || typeof value !== 'object') return value;
  for (const part of schema.allOf ?? []) canonicalize(part, value, strict);
  for (const part of [...(schema.oneOf ?? []), ...(schema.anyOf ?? [])]) canonicalize(part, value, true);
  if (Array.isArray(value)) {
    if (schema.items)
      for (let i = 0; i < value.length; i++) value[i] = canonicalize(schema.items, value[i], strict);
    return value;
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    const child =
      schema.properties && Object.hasOwn(schema.properties, key)
        ? schema.properties[key]
        : typeof schema.additionalProperties === 'object'
          ? schema.additionalProperties
          : undefined;
    if (!child) continue;
    const lowered = canonicalize(child, object[key], strict);
    // Defined, not assigned: a "__proto__" key is data here (JSON.parse made it an own key).
    if (lowered !== object[key])
      Object.defineProperty(object, key, {
        value: lowered,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return value;
}

type RequestBody = { content?: Record<string, { schema?: Schema }> };

/** Each operation's request body schema, when a uuid may be in it. */
const bodySchemas = new Map<Operation, Schema>(
  operations.flatMap((op) => {
    const raw = spec.paths[op.template]?.[op.method.toLowerCase()] as { requestBody?: RequestBody };
    // Every media type of one operation carries the same schema (JSON, merge-patch JSON).
    const schema = Object.values(raw.requestBody?.content ?? {})[0]?.schema;
    return schema && mayHoldOne(schema) ? [[op, schema] as const] : [];
  }),
);

/** An id as a path segment, in any case. */
const PATH_ID = /\/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?=\/|$)/g;

/**
 * Ids in the path in lower case, before anything reads it: the router's parameters, the
 * validator, idempotency's fingerprint (which read originalUrl) and the log all see one id.
 */
export const lowercasePathIds: RequestHandler = (req, _res, next) => {
  const query = req.url.indexOf('?');
  const path = query === -1 ? req.url : req.url.slice(0, query);
  if (/[A-F]/.test(path)) {
    const lowered = path.replace(PATH_ID, (id) => id.toLowerCase());
    if (lowered !== path) {
      req.url = lowered + (query === -1 ? '' : req.url.slice(query));
      req.originalUrl = req.url;
    }
  }
  next();
};

/** The characters encodeURIComponent (and URLSearchParams, for `*`) leave as they are. */
const QUERY_LITERALS = /[!'()*]/g;

/**
 * The query's `! ' ( ) *` percent-encoded before anything reads it. They mean nothing to a query's
 * syntax, yet the validator refuses them unencoded in a parameter without allowReserved, and
 * encodeURIComponent (so openapi-fetch, the SDK, and most generated clients) sends them as they
 * are: `external_id=cus(1)` was 400 (partner3 #2). Encoded, each reads as the same character.
 */
export const encodeQueryLiterals: RequestHandler = (req, _res, next) => {
  const query = req.url.indexOf('?');
  if (query !== -1 && /[!'()*]/.test(req.url.slice(query))) {
    req.url =
      req.url.slice(0, query) +
      req.url.slice(query).replace(QUERY_LITERALS, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    req.originalUrl = req.url;
  }
  next();
};

/** A body's ids in lower case and its instants to the millisecond, once the validator took it. */
export const canonicalBody: RequestHandler = (req, _res, next) => {
  const schema = req.operation && bodySchemas.get(req.operation);
  if (schema && req.body !== undefined) req.body = canonicalize(schema, req.body);
  next();
};
