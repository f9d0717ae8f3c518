// Ids arrive in any case (the contract's `format: uuid` takes both) but are one id: every
// `format: uuid` value of a request body is lowercased here, once, after the validator, so no
// service sees an upper-case id. PostgreSQL's uuid columns compare them either way, but an id kept
// as text (a price breakdown, a scheduled change, jsonb) was stored as sent, and a service
// comparing ids as strings saw a change where there was none. Path and query ids only reach
// uuid columns (PostgreSQL compares them whatever their case), so they are left as they are.
import type { RequestHandler } from 'express';
import { type Operation, operations } from '../operations.js';
import { spec } from '../spec.js';
import { isUuid } from './formats.js';

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

const schemas = (spec.components as { schemas: Record<string, Schema> }).schemas;
const REF = '#/components/schemas/';

function deref(schema: Schema): Schema {
  let seen = 0;
  while (schema.$ref?.startsWith(REF) && seen++ < 32) schema = schemas[schema.$ref.slice(REF.length)]!;
  return schema;
}

/** Whether a uuid can be anywhere under schema (memoized; a schema in progress counts as none). */
const holdsUuid = new Map<Schema, boolean>();
function mayHoldUuid(schema: Schema): boolean {
  schema = deref(schema);
  const known = holdsUuid.get(schema);
  if (known !== undefined) return known;
  holdsUuid.set(schema, false);
  const children = [
    ...Object.values(schema.properties ?? {}),
    ...(typeof schema.additionalProperties === 'object' ? [schema.additionalProperties] : []),
    ...(schema.items ? [schema.items] : []),
    ...(schema.allOf ?? []),
    ...(schema.oneOf ?? []),
    ...(schema.anyOf ?? []),
  ];
  const result = schema.format === 'uuid' || children.some(mayHoldUuid);
  holdsUuid.set(schema, result);
  return result;
}

/**
 * Lowercases the uuids of a value the validator accepted against schema, in place. In a oneOf or
 * anyOf only a string that is a uuid is touched, as the branch it sits in may not be the one that
 * matched.
 */
function lowercase(schema: Schema, value: unknown, strict = false): unknown {
  schema = deref(schema);
  if (!mayHoldUuid(schema)) return value;
  if (typeof value === 'string')
    return schema.format === 'uuid' && (!strict || isUuid(value)) ? value.toLowerCase() : value;
  if (value === null || typeof value !== 'object') return value;
  for (const part of schema.allOf ?? []) lowercase(part, value, strict);
  for (const part of [...(schema.oneOf ?? []), ...(schema.anyOf ?? [])]) lowercase(part, value, true);
  if (Array.isArray(value)) {
    if (schema.items)
      for (let i = 0; i < value.length; i++) value[i] = lowercase(schema.items, value[i], strict);
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
    const lowered = lowercase(child, object[key], strict);
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
    return schema && mayHoldUuid(schema) ? [[op, schema] as const] : [];
  }),
);

export const lowercaseUuids: RequestHandler = (req, _res, next) => {
  const schema = req.operation && bodySchemas.get(req.operation);
  if (schema && req.body !== undefined) req.body = lowercase(schema, req.body);
  next();
};
