// JSON Schema (OpenAPI 3.1) → fast-check: `valid` generates values a schema accepts, `violations`
// lists one arbitrary per constraint that can be broken, each producing values that break it and
// nothing else. Only the keywords openapi.yaml uses are supported; an unknown one fails loudly.
import fc from 'fast-check';
import { spec } from '../../../src/spec.js';

export interface Schema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: { minLength?: number; maxLength?: number };
  minProperties?: number;
  maxProperties?: number;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  default?: unknown;
  examples?: unknown[];
  example?: unknown;
  readOnly?: boolean;
}

/** Ids of existing resources for a parameter or property name (userId, user_id, …); may be empty. */
export type IdHints = (name: string) => readonly string[];

/** One way to break a schema: `why` names the constraint, `value` breaks only it. */
export interface Violation {
  why: string;
  value: fc.Arbitrary<unknown>;
}

/** Follows a local `$ref` ('#/components/…') to what it points at. */
export function deref<T>(node: T | { $ref: string }): T {
  let current: unknown = node;
  for (let hops = 0; isRef(current); hops++) {
    if (hops > 20) throw new Error(`$ref loop at ${current.$ref}`);
    const target = current.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], spec);
    if (target === undefined) throw new Error(`unresolved $ref ${current.$ref}`);
    // 3.1 allows siblings next to $ref (a description, examples): they refine the target.
    const { $ref: _ref, ...siblings } = current;
    current = { ...(target as object), ...siblings };
  }
  return current as T;
}

const isRef = (node: unknown): node is { $ref: string } =>
  typeof node === 'object' && node !== null && typeof (node as { $ref?: unknown }).$ref === 'string';

/** The schema with $refs followed and `allOf` merged into one. */
export function resolve(schema: Schema): Schema {
  const s = deref(schema);
  if (!s.allOf) return s;
  const { allOf, ...rest } = s;
  return allOf.map(resolve).reduce<Schema>(
    (merged, part) => ({
      ...merged,
      ...part,
      properties: { ...merged.properties, ...part.properties },
      required: [...(merged.required ?? []), ...(part.required ?? [])],
    }),
    rest,
  );
}

const SUPPORTED = new Set([
  ...['$ref', 'type', 'enum', 'const', 'format', 'pattern', 'minLength', 'maxLength', 'minimum'],
  ...['maximum', 'items', 'minItems', 'maxItems', 'uniqueItems', 'properties', 'required'],
  ...[
    'additionalProperties',
    'minProperties',
    'maxProperties',
    'propertyNames',
    'oneOf',
    'anyOf',
    'allOf',
    'default',
    'examples',
  ],
  ...['example', 'readOnly', 'description', 'title'],
]);
const FORMATS = new Set(['uuid', 'date', 'date-time', 'email', 'uri', 'int64', 'int32']);

/** Fails on a keyword or format this generator does not understand, instead of ignoring it. */
function checkSupported(s: Schema): void {
  const unknown = Object.keys(s).filter((key) => !SUPPORTED.has(key));
  if (unknown.length > 0) throw new Error(`fuzz: unsupported schema keywords ${unknown.join(', ')}`);
  if (s.format && !FORMATS.has(s.format)) throw new Error(`fuzz: unsupported format ${s.format}`);
}

/** The JSON types a schema allows, union branches included; [] when untyped. */
export function typesOf(raw: Schema): string[] {
  const s = resolve(raw);
  const branches = s.oneOf ?? s.anyOf;
  if (branches) return [...new Set(branches.flatMap(typesOf))];
  if (Array.isArray(s.type)) return s.type;
  if (s.type) return [s.type];
  if (s.enum) return [...new Set(s.enum.map((v) => (v === null ? 'null' : typeof v)))];
  if (s.properties) return ['object'];
  return [];
}

/** Length as JSON Schema counts it: code points, not UTF-16 units. */
const length = (text: string) => [...text].length;

/** Text PostgreSQL stores as sent (the API refuses U+0000; fast-check's strings are well-formed). */
function text(minLength: number, maxLength: number): fc.Arbitrary<string> {
  const short = Math.min(maxLength, minLength + 24);
  const sized = (min: number, max: number) =>
    fc.oneof(
      fc.string({ unit: 'grapheme-ascii', minLength: min, maxLength: max }),
      fc.string({ unit: 'binary', minLength: min, maxLength: max }),
    );
  const arb =
    maxLength > short
      ? fc.oneof({ weight: 5, arbitrary: sized(minLength, short) }, sized(maxLength, maxLength))
      : sized(minLength, maxLength);
  return arb.filter((t) => !t.includes('\u0000'));
}

const DAY = 86_400_000;
const instant = (from: string, to: string) =>
  fc.date({ min: new Date(from), max: new Date(to), noInvalidDate: true });
/** Mostly this century (where billing rules accept dates), sometimes anywhere in 0001–9999. */
const anyInstant = fc.oneof(
  { weight: 4, arbitrary: instant('2000-01-01T00:00:00Z', '2100-12-31T23:59:59Z') },
  instant('0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z'),
);
const pad = (n: number) => String(Math.abs(n)).padStart(2, '0');

const dateTime = fc.oneof(
  anyInstant.map((d) => d.toISOString()),
  anyInstant.map((d) => d.toISOString().replace(/\.\d{3}Z$/, '+00:00')),
  // Another offset: the same instant written in local time, e.g. 2026-11-01T10:30:00+05:30.
  fc
    .tuple(
      instant('2000-01-01T00:00:00Z', '2100-12-31T23:59:59Z'),
      fc.integer({ min: -12 * 60, max: 14 * 60 }),
    )
    .map(([d, offset]) => {
      const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 19);
      const sign = offset < 0 ? '-' : '+';
      return `${local}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
    }),
);

/** https URLs on names or IPv4 literals: mostly public, so SSRF checks pass; private ones get 422. */
const webhookUrl = fc.oneof(
  fc.webUrl({ validSchemes: ['https'], withQueryParameters: true, withFragments: true }),
  fc.tuple(fc.ipV4(), fc.webPath()).map(([ip, path]) => `https://${ip}${path}`),
  fc.stringMatching(/^[a-z0-9]{1,12}$/).map((label) => `https://hooks-${label}.example.com/subscriptions`),
);

function formatted(s: Schema): fc.Arbitrary<string> | undefined {
  switch (s.format) {
    case 'uuid':
      return fc.uuid();
    case 'date':
      return anyInstant.map((d) => new Date(Math.floor(d.getTime() / DAY) * DAY).toISOString().slice(0, 10));
    case 'date-time':
      return dateTime;
    case 'email':
      return fc.emailAddress().filter((e) => length(e) <= (s.maxLength ?? Infinity));
    case 'uri':
      return webhookUrl.filter((u) => length(u) <= (s.maxLength ?? Infinity));
    default:
      return undefined;
  }
}

function validString(s: Schema, name: string, ids: IdHints): fc.Arbitrary<string> {
  // Existing ids (and cursors the API returned) reach past 404 and invalid-cursor; random ones
  // check those answers.
  // The hints are read at each draw, so a cursor returned one request ago can be sent back now.
  return fc.tuple(fc.nat({ max: 3 }), fc.nat(), generatedString(s)).map(([odds, index, generated]) => {
    const known = ids(name);
    return odds > 0 && known.length > 0 ? known[index % known.length]! : generated;
  });
}

/**
 * One arbitrary per pattern: building fc.stringMatching prepares its quantified parts' strings
 * anew each time, and broken requests build their schemas' arbitraries again and again (most of
 * the fuzz file's time before this).
 */
const byPattern = new Map<string, fc.Arbitrary<string>>();
function matching(pattern: string): fc.Arbitrary<string> {
  let arbitrary = byPattern.get(pattern);
  if (!arbitrary) byPattern.set(pattern, (arbitrary = fc.stringMatching(new RegExp(pattern, 'u'))));
  return arbitrary;
}

function generatedString(s: Schema): fc.Arbitrary<string> {
  const min = s.minLength ?? 0;
  const max = s.maxLength ?? Math.max(min, 64);
  const fitting = (t: string) => length(t) >= min && length(t) <= max;
  const byFormat = formatted(s);
  if (byFormat) return byFormat;
  if (s.pattern) {
    const pattern = new RegExp(s.pattern, 'u');
    // An anchored pattern describes the whole string; an unanchored one only something in it.
    return s.pattern.startsWith('^') && s.pattern.endsWith('$')
      ? matching(s.pattern).filter(fitting)
      : text(min, max).filter((t) => pattern.test(t));
  }
  return text(min, max);
}

/** Integers from min to max, beyond fast-check's 32-bit fc.integer when the schema asks for it. */
function integer(min = -(2 ** 31), max = 2 ** 31 - 1): fc.Arbitrary<number> {
  if (min >= -(2 ** 31) && max <= 2 ** 31 - 1) return fc.integer({ min, max });
  const top = Math.min(max, Number.MAX_SAFE_INTEGER);
  return fc.oneof(
    fc.integer({ min, max: Math.min(top, 1000) }),
    fc.bigInt({ min: BigInt(min), max: BigInt(top) }).map(Number),
  );
}

function validArray(s: Schema, name: string, ids: IdHints): fc.Arbitrary<unknown[]> {
  const items = s.items ?? {};
  const distinct = resolve(items).enum?.length ?? Infinity;
  const min = s.minItems ?? 0;
  const max = Math.min(s.maxItems ?? min + 4, s.uniqueItems ? distinct : Infinity);
  const sized = (lo: number, hi: number) =>
    s.uniqueItems
      ? fc.uniqueArray(valid(items, name, ids), {
          minLength: lo,
          maxLength: hi,
          selector: (v) => JSON.stringify(v),
        })
      : fc.array(valid(items, name, ids), { minLength: lo, maxLength: hi });
  const short = Math.min(max, min + 4);
  return short < max
    ? fc.oneof({ weight: 4, arbitrary: sized(min, short) }, sized(max, max))
    : sized(min, max);
}

/** Properties a client sends: readOnly ones (ids, timestamps) are the server's. */
const writable = (s: Schema) => Object.entries(s.properties ?? {}).filter(([, p]) => !resolve(p).readOnly);

const ABSENT = Symbol('absent');

/**
 * Records with the required keys always and each optional one a third of the time: rules between
 * optional fields (send this or that, both or neither) then hold more often, and requests get past
 * 422 more often.
 */
export function someOf(
  model: Record<string, fc.Arbitrary<unknown>>,
  required: readonly string[],
): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(model).map(([key, arb]) => [
    key,
    required.includes(key) ? arb : fc.oneof({ weight: 2, arbitrary: fc.constant(ABSENT) }, arb),
  ]);
  return fc
    .record(Object.fromEntries(entries) as Record<string, fc.Arbitrary<unknown>>)
    .map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== ABSENT)));
}

function validObject(s: Schema, ids: IdHints, without?: string): fc.Arbitrary<Record<string, unknown>> {
  const model = Object.fromEntries(
    writable(s)
      .filter(([key]) => key !== without)
      .map(([key, p]) => [key, valid(p, key, ids)]),
  );
  return someOf(model, s.required ?? []).filter(
    (o) =>
      Object.keys(o).length >= (s.minProperties ?? 0) - (without ? 1 : 0) &&
      Object.keys(o).length <= (s.maxProperties ?? Infinity),
  );
}

/** Values the schema accepts. `name` is the property or parameter name, for id hints. */
export function valid(raw: Schema, name: string, ids: IdHints): fc.Arbitrary<unknown> {
  const s = resolve(raw);
  checkSupported(s);
  const branches = s.oneOf ?? s.anyOf;
  let arb: fc.Arbitrary<unknown>;
  if (branches) arb = fc.oneof(...branches.map((b) => valid(b, name, ids)));
  else if (s.const !== undefined) arb = fc.constant(s.const);
  else if (s.enum) arb = fc.constantFrom(...s.enum);
  else {
    const types = typesOf(s);
    const one = (type: string): fc.Arbitrary<unknown> => {
      switch (type) {
        case 'null':
          return fc.constant(null);
        case 'boolean':
          return fc.boolean();
        case 'integer':
          return integer(s.minimum, s.maximum);
        case 'number':
          return fc.double({ min: s.minimum ?? -1e9, max: s.maximum ?? 1e9, noNaN: true });
        case 'string':
          return validString(s, name, ids);
        case 'array':
          return validArray(s, name, ids);
        case 'object':
          return validObject(s, ids);
        default:
          throw new Error(`fuzz: unsupported type ${type}`);
      }
    };
    if (types.length === 0) arb = fc.jsonValue();
    else {
      // null is one value; give the other types most of the runs.
      arb = fc.oneof(...types.map((t) => ({ weight: t === 'null' ? 1 : 3, arbitrary: one(t) })));
    }
  }
  // The spec's own examples and defaults are valid by definition, and often meaningful (a code that
  // exists, an amount that matches): try them now and then.
  const samples = [...(s.examples ?? []), ...(s.example !== undefined ? [s.example] : [])];
  if (s.default !== undefined) samples.push(s.default);
  return samples.length > 0 ? fc.oneof({ weight: 4, arbitrary: arb }, fc.constantFrom(...samples)) : arb;
}

// ---------------------------------------------------------------------------------------------
// Violations

/** One value of each JSON type, for "wrong type". */
const TYPE_SAMPLES: Array<[type: string, value: unknown]> = [
  ['string', 'text'],
  ['integer', 7],
  ['number', 1.5],
  ['boolean', true],
  ['null', null],
  ['array', []],
  ['object', {}],
];

/** Strings each format must refuse: malformed, and well-formed but out of the API's range. */
const BAD_FORMATS: Record<string, string[]> = {
  uuid: [
    'not-a-uuid',
    'urn:uuid:0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f70',
    '0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f7g',
  ],
  date: ['2026-02-30', '0000-01-01', '2026-1-1', '10000-01-01', 'tomorrow'],
  'date-time': [
    '2030-06-30T23:59:60Z',
    '2030-01-01T00:00:00',
    '0000-06-01T00:00:00Z',
    '2026-13-01T00:00:00Z',
  ],
  email: ['not-an-email', 'ada@', '@example.com', 'ada lovelace@example.com'],
  uri: ['not a url', 'https://exa mple.com/', '//hooks.example.com/no-scheme'],
};

const constant = (why: string, value: unknown): Violation => ({ why, value: fc.constant(value) });

function wrongTypes(types: string[]): Violation[] {
  return TYPE_SAMPLES.filter(
    ([type]) =>
      !types.includes(type) &&
      !(type === 'integer' && types.includes('number')) &&
      // 1.5 is the "not an integer" sample below when the schema is an integer.
      !(type === 'number' && types.includes('integer')),
  ).map(([type, value]) => constant(`wrong type: ${type} instead of ${types.join(' or ')}`, value));
}

function stringViolations(s: Schema): Violation[] {
  const found: Violation[] = [];
  if (s.enum) found.push(constant('not one of the enum', 'not-a-listed-value'));
  if (s.maxLength !== undefined) {
    const tooLong =
      s.format === 'email'
        ? `${'a'.repeat(s.maxLength)}@example.com`
        : s.format === 'uri'
          ? `https://hooks.example.com/${'a'.repeat(s.maxLength)}`
          : '9'.repeat(s.maxLength + 1);
    found.push(constant(`longer than maxLength ${s.maxLength}`, tooLong));
  }
  if (s.minLength) found.push(constant(`shorter than minLength ${s.minLength}`, 'x'.repeat(s.minLength - 1)));
  if (s.pattern) {
    const pattern = new RegExp(s.pattern, 'u');
    const bad = ['', ' ', '!', '-1', '1.23456789', 'a b'].filter((t) => !pattern.test(t));
    found.push(...bad.slice(0, 2).map((t) => constant(`does not match ${s.pattern}`, t)));
  }
  if (s.format && BAD_FORMATS[s.format]) {
    found.push({ why: `not a ${s.format}`, value: fc.constantFrom(...BAD_FORMATS[s.format]!) });
  }
  return found;
}

function numberViolations(s: Schema, integerOnly: boolean): Violation[] {
  const found: Violation[] = [];
  if (s.minimum !== undefined) found.push(constant(`below minimum ${s.minimum}`, s.minimum - 1));
  if (s.maximum !== undefined) found.push(constant(`above maximum ${s.maximum}`, s.maximum + 1));
  if (integerOnly) found.push(constant('not an integer', (s.minimum ?? 0) + 1.5));
  return found;
}

function arrayViolations(s: Schema, name: string, ids: IdHints): Violation[] {
  const items = s.items ?? {};
  const item = valid(items, name, ids);
  const found: Violation[] = [];
  if (s.maxItems !== undefined) {
    const n = s.maxItems + 1;
    found.push({
      why: `more than maxItems ${s.maxItems}`,
      value: fc.array(item, { minLength: n, maxLength: n }),
    });
  }
  if (s.minItems) found.push(constant(`fewer than minItems ${s.minItems}`, []));
  if (s.uniqueItems && (s.maxItems ?? 2) >= 2) {
    found.push({ why: 'duplicate items', value: item.map((x) => [x, x]) });
  }
  const filler = fc.array(item, {
    minLength: Math.max(0, (s.minItems ?? 0) - 1),
    maxLength: Math.max(0, (s.minItems ?? 0) - 1),
  });
  for (const v of violations(items, name, ids)) {
    found.push({
      why: `/0${v.why.startsWith('/') ? '' : ': '}${v.why}`,
      value: fc.tuple(v.value, filler).map(([bad, rest]) => [bad, ...rest]),
    });
  }
  return found;
}

function objectViolations(s: Schema, ids: IdHints): Violation[] {
  const found: Violation[] = [];
  for (const key of s.required ?? []) {
    found.push({ why: `missing required property ${key}`, value: validObject(s, ids, key) });
  }
  if (s.additionalProperties === false) {
    found.push({
      why: 'unknown property (additionalProperties: false)',
      value: validObject(s, ids).map((o) => ({ ...o, unexpected_property: 1 })),
    });
  }
  if (s.minProperties && !(s.required ?? []).length) {
    found.push(constant(`fewer than minProperties ${s.minProperties}`, {}));
  }
  const extra = s.additionalProperties;
  if (s.maxProperties !== undefined && typeof extra === 'object') {
    // One more property than allowed, each of them valid.
    const many = fc
      .array(valid(extra, 'extra', ids), { minLength: s.maxProperties + 1, maxLength: s.maxProperties + 1 })
      .map((values) => Object.fromEntries(values.map((v, i) => [`p${i}`, v])));
    found.push({ why: `more than maxProperties ${s.maxProperties}`, value: many });
  }
  if (s.propertyNames?.maxLength !== undefined && typeof extra === 'object') {
    const long = 'k'.repeat(s.propertyNames.maxLength + 1);
    found.push({
      why: `a property name longer than ${s.propertyNames.maxLength}`,
      value: valid(extra, 'extra', ids).map((v) => ({ [long]: v })),
    });
  }
  for (const [key, p] of writable(s)) {
    for (const v of violations(p, key, ids)) {
      found.push({
        why: `/${key}${v.why.startsWith('/') ? '' : ': '}${v.why}`,
        value: fc.tuple(validObject(s, ids, key), v.value).map(([o, bad]) => ({ ...o, [key]: bad })),
      });
    }
  }
  return found;
}

/**
 * Every way to break the schema, one constraint at a time. A union's branches are assumed to differ
 * in type (as everywhere in openapi.yaml: `null` or a value), so breaking one branch's constraint
 * keeps the value out of the others.
 */
export function violations(raw: Schema, name: string, ids: IdHints): Violation[] {
  const s = resolve(raw);
  checkSupported(s);
  const types = typesOf(s);
  if (types.length === 0) return [];
  const branches = (s.oneOf ?? s.anyOf ?? [s]).map(resolve);
  const found = wrongTypes(types);
  for (const b of branches) {
    if (b.enum && !b.type) {
      found.push(constant('not one of the enum', 'not-a-listed-value'));
      continue;
    }
    for (const type of typesOf(b)) {
      if (type === 'string') found.push(...stringViolations(b));
      if (type === 'integer' || type === 'number') found.push(...numberViolations(b, type === 'integer'));
      if (type === 'array') found.push(...arrayViolations(b, name, ids));
      if (type === 'object') found.push(...objectViolations(b, ids));
    }
  }
  return found;
}
