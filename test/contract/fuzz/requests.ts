// The operations of openapi.yaml as request generators: every part valid, or one part broken.
import fc from 'fast-check';
import { spec } from '../../../src/spec.js';
import {
  deref,
  type IdHints,
  resolve,
  type Schema,
  someOf,
  typesOf,
  valid,
  type Violation,
  violations,
} from './schema.js';

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}

export interface OperationModel {
  method: string;
  template: string;
  operationId: string;
  /** The statuses its `responses` declare. */
  declared: Set<number>;
  /** Scopes from its `security`; [] for a public operation. */
  scopes: string[];
  params: Parameter[];
  body?: { schema: Schema; required: boolean };
}

/** One HTTP request, as data (fast-check prints it when a property fails). */
export interface FuzzRequest {
  method: string;
  path: string;
  query: Array<[string, string]>;
  headers: Record<string, string>;
  /** A JSON body (sent as application/json); undefined for none. */
  body?: unknown;
  /** A body that is not JSON, with its content type. */
  raw?: { type: string; text: string };
  /** For a broken request: what was broken. */
  why?: string;
}

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];
type Operation = {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
  security?: Array<Record<string, string[]>>;
};

export const models: OperationModel[] = Object.entries(spec.paths).flatMap(([template, rawItem]) => {
  const item = rawItem as Record<string, unknown> & { parameters?: Parameter[] };
  return METHODS.filter((m) => item[m]).map((method): OperationModel => {
    const op = item[method] as Operation;
    const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => deref(p));
    const requestBody = op.requestBody && deref(op.requestBody);
    const json = requestBody?.content['application/json'];
    if (requestBody && !json) throw new Error(`${op.operationId}: only JSON bodies are supported`);
    return {
      method: method.toUpperCase(),
      template,
      operationId: op.operationId,
      declared: new Set(Object.keys(op.responses).map(Number)),
      scopes: (op.security ?? []).flatMap((requirement) => Object.values(requirement).flat()),
      params,
      ...(json ? { body: { schema: json.schema, required: requestBody?.required ?? false } } : {}),
    };
  });
});

const printable = (min: number, max: number) =>
  fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: min,
    maxLength: max,
  });

/**
 * Header values: HTTP allows only visible ASCII here, and the API's documented rules (an
 * Idempotency-Key of 1 to 255 characters) are narrower than the schema's maxLength.
 */
function headerValue(p: Parameter): fc.Arbitrary<string> {
  const s = resolve(p.schema);
  const max = Math.min(s.maxLength ?? 100, 255);
  switch (p.name.toLowerCase()) {
    case 'idempotency-key':
      return fc.oneof(fc.uuid(), printable(1, max));
    case 'if-match':
    case 'if-none-match':
      // Versions of the seeded resources are small numbers: some of these match.
      return fc.oneof(
        fc.integer({ min: 1, max: 4 }).map((n) => `"${n}"`),
        fc.constantFrom('*', 'W/"1"', '"1", "2"', '"999999999"'),
        printable(s.minLength ?? 1, Math.min(max, 40)),
      );
    default:
      return printable(s.minLength ?? 1, max);
  }
}

/** A parameter value as it travels in a URL: repeated for an exploded array, else one string. */
function wire(value: unknown): string[] {
  return Array.isArray(value) ? value.map((v) => String(v)) : [String(value)];
}

/**
 * Percent-encodes all but RFC 3986's unreserved characters. encodeURIComponent leaves `!'()*` as
 * they are, and URLSearchParams writes a space as `+`: the validator refuses both in parameters
 * without `allowReserved` (see the report of this fuzzer).
 */
const encode = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function fill(template: string, values: Record<string, unknown>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => encode(String(values[name])));
}

/** The request's path and query string. */
export const urlOf = (r: FuzzRequest) =>
  r.query.length ? `${r.path}?${r.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')}` : r.path;

const byLocation = (op: OperationModel, location: Parameter['in']) =>
  op.params.filter((p) => p.in === location);

/** A record of the parameters of one location: required ones always, optional ones sometimes. */
function paramsRecord(
  params: Parameter[],
  arb: (p: Parameter) => fc.Arbitrary<unknown>,
  required = (p: Parameter) => p.in === 'path' || p.required === true,
): fc.Arbitrary<Record<string, unknown>> {
  const model = Object.fromEntries(params.map((p) => [p.name, arb(p)]));
  return someOf(
    model,
    params.filter(required).map((p) => p.name),
  );
}

interface Parts {
  path: Record<string, unknown>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: unknown;
}

function toRequest(op: OperationModel, parts: Parts, why?: string): FuzzRequest {
  return {
    method: op.method,
    path: fill(op.template, parts.path),
    query: Object.entries(parts.query).flatMap(([name, value]) =>
      wire(value).map((v): [string, string] => [name, v]),
    ),
    headers: Object.fromEntries(Object.entries(parts.headers).map(([k, v]) => [k, String(v)])),
    ...(parts.body !== undefined ? { body: parts.body } : {}),
    ...(why ? { why } : {}),
  };
}

function validParts(op: OperationModel, ids: IdHints) {
  const param = (p: Parameter) =>
    p.in === 'header'
      ? headerValue(p)
      : // OpenAPI's allowEmptyValue is false: `?email=` is refused even where the schema allows ''.
        valid(p.schema, p.name, ids).filter((v) => wire(v).every((text) => text !== ''));
  const body = op.body
    ? op.body.required
      ? valid(op.body.schema, '', ids)
      : fc.option(valid(op.body.schema, '', ids), { nil: undefined })
    : fc.constant(undefined);
  return {
    path: paramsRecord(byLocation(op, 'path'), param),
    query: paramsRecord(byLocation(op, 'query'), param),
    headers: paramsRecord(byLocation(op, 'header'), param),
    body,
  };
}

/** Requests whose every part matches the operation's schemas. */
export function validRequest(op: OperationModel, ids: IdHints): fc.Arbitrary<FuzzRequest> {
  return fc.record(validParts(op, ids)).map((parts) => toRequest(op, parts));
}

/**
 * Which violations of a parameter survive the trip through a URL or header, where every value is
 * text: a "wrong type" string is a valid string, null and {} cannot be sent, and HTTP trims an
 * empty header to nothing.
 */
function onTheWire(p: Parameter, found: Violation[]): Violation[] {
  const s = resolve(p.schema);
  const textual = (schema: Schema) => typesOf(schema).includes('string');
  return found.filter(({ why }) => {
    if (p.in === 'header') return why.startsWith('longer than');
    const itemLevel = why.startsWith('/0');
    const target = itemLevel ? (s.items ?? {}) : s;
    const inner = itemLevel ? why.replace(/^\/0: /, '') : why;
    if (inner.startsWith('wrong type')) {
      if (typesOf(s).includes('array') && !itemLevel) return false;
      return !textual(target) && /: (string|boolean) instead/.test(inner);
    }
    return true;
  });
}

/** One request per way to break it, each valid but for that one thing. */
export function brokenRequests(
  op: OperationModel,
  ids: IdHints,
): Array<{ why: string; request: fc.Arbitrary<FuzzRequest> }> {
  const parts = validParts(op, ids);
  const found: Array<{ why: string; request: fc.Arbitrary<FuzzRequest> }> = [];
  const build = (why: string, change: fc.Arbitrary<(parts: Parts) => Parts>) =>
    found.push({
      why,
      request: fc.tuple(fc.record(parts), change).map(([valid, apply]) => toRequest(op, apply(valid), why)),
    });

  for (const p of op.params) {
    const where = p.in === 'header' ? 'headers' : p.in;
    for (const v of onTheWire(p, violations(p.schema, p.name, ids))) {
      build(
        `${p.in} ${p.name}: ${v.why}`,
        v.value.map((bad) => (valid: Parts) => ({ ...valid, [where]: { ...valid[where], [p.name]: bad } })),
      );
    }
    if (p.in === 'query' && p.required) {
      build(
        `query ${p.name}: missing`,
        fc.constant((valid: Parts) => {
          const { [p.name]: _gone, ...rest } = valid.query;
          return { ...valid, query: rest };
        }),
      );
    }
  }
  build(
    'query: an unknown parameter',
    fc.constant((valid: Parts) => ({ ...valid, query: { ...valid.query, unknown_parameter: '1' } })),
  );
  if (op.body) {
    for (const v of violations(op.body.schema, '', ids)) {
      build(
        `body${v.why.startsWith('/') ? '' : ': '}${v.why}`,
        v.value.map((bad) => (valid: Parts) => ({ ...valid, body: bad })),
      );
    }
    // An empty body that claims to be JSON, and a body in another media type.
    const withRaw = (why: string, raw: FuzzRequest['raw']) =>
      found.push({
        why,
        request: fc
          .record(parts)
          .map((valid) => ({ ...toRequest(op, { ...valid, body: undefined }, why), raw })),
      });
    if (op.body.required) withRaw('body: missing', { type: 'application/json', text: '' });
    withRaw('body: not JSON (text/plain)', { type: 'text/plain', text: 'name=x' });
  }
  return found;
}
