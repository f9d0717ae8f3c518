// Which changes between two versions of an OpenAPI 3.1 document break existing clients. Pure: it
// takes two parsed documents and returns a list of changes (src/cli/spec-diff.ts reads them from git).
//
// Each document's local $refs (#/components/schemas, parameters, requestBodies, responses, headers,
// any JSON pointer into the same document) are resolved; keywords beside a $ref override the target's.
// Schemas are compared in the direction the data travels: what a client sends (parameters, request
// bodies) may only get more permissive, what it receives (response bodies and headers) only more
// precise. Nullability is a type: `type: [string, 'null']`, `oneOf: [{ type: 'null' }, X]` (or anyOf)
// and 3.0's `nullable: true` all mean "X or null", so switching between them changes nothing.
//
// Breaking:
// - a removed path (templates match by shape: renaming {id} to {userId} is no change) or operation;
//   a removed or renamed operationId
// - a removed 2xx response; a removed media type (request or response); a removed response header
// - security: a credential that was enough before no longer is (a new scope, a new scheme, or
//   authentication on a public operation)
// - requests: a new required parameter (header included), request body or body property; an
//   optional one becoming required; a parameter moving to another location (query to header, say);
//   a removed query parameter (this server refuses unknown query parameters: express-openapi-validator's
//   default); a removed body property where additionalProperties is false; additionalProperties
//   becoming false; a narrowed type (a type or null removed); a removed enum value, or a new enum;
//   a tightened bound (smaller maxLength, maxItems, maxProperties, maximum, exclusiveMaximum; bigger
//   minLength, minItems, minProperties, minimum, exclusiveMinimum); a new or changed pattern or format
// - responses: a removed property; a property no longer required (it may be absent); a widened type
//   (null or another type added, integer to number); a new enum value (exhaustive switches break) or
//   a removed enum; a changed or removed format (what clients parse the value as)
// - oneOf/anyOf alternatives, matched by position: one more in a response, one fewer in a request
// Non-breaking (listed): additions (paths, operations, responses, media types, optional inputs,
// response properties), inputs that become optional, loosened request bounds, tightened response
// types, enums and bounds, a removed optional request body or header parameter, deprecations.
// Ignored: descriptions, summaries, examples, tags, titles, defaults; readOnly properties in requests
// and writeOnly ones in responses.
// Not checked: external $refs (an error), allOf beyond a shallow merge of its members, oneOf/anyOf
// added to or removed from a schema, discriminators, not, if/then/else, prefixItems, patternProperties,
// dependent*, uniqueItems, multipleOf, parameter style/explode, content of parameters, links,
// callbacks, webhooks, servers and the security schemes themselves.

export type Severity = 'breaking' | 'non-breaking';

export interface Change {
  severity: Severity;
  /** Where: `POST /api/v1/users request application/json body.email`. */
  location: string;
  /** What: `new required property`. */
  message: string;
}

type Obj = Record<string, unknown>;
type Direction = 'request' | 'response';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const UPPER_BOUNDS = ['maxLength', 'maxItems', 'maxProperties', 'maximum', 'exclusiveMaximum'] as const;
const LOWER_BOUNDS = ['minLength', 'minItems', 'minProperties', 'minimum', 'exclusiveMinimum'] as const;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function joinPath(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

/** One document, to resolve its $refs. */
class Doc {
  constructor(readonly root: unknown) {}

  /** The object a node stands for, following $ref chains (each one is pushed on refs). */
  resolve(node: unknown, refs: string[] = []): Obj | undefined {
    let current = node;
    let siblings: Obj = {};
    for (let hops = 0; isObj(current) && typeof current.$ref === 'string'; hops++) {
      if (hops > 64) throw new Error(`$ref loop at ${current.$ref}`);
      const { $ref, ...rest } = current as Obj & { $ref: string };
      refs.push($ref);
      siblings = { ...rest, ...siblings };
      current = this.pointer($ref);
    }
    return isObj(current) ? { ...current, ...siblings } : undefined;
  }

  private pointer(ref: string): unknown {
    if (!ref.startsWith('#')) throw new Error(`only local $refs are supported, not ${ref}`);
    let node = this.root;
    for (const raw of ref.slice(1).split('/').slice(1)) {
      const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      node = isObj(node) ? node[key] : Array.isArray(node) ? (node as unknown[])[Number(key)] : undefined;
      if (node === undefined) throw new Error(`$ref ${ref} points at nothing`);
    }
    return node;
  }

  /**
   * A schema as one object: resolved, allOf members merged in (shallowly), a oneOf/anyOf of null and
   * one other schema turned into that schema with 'null' among its types, `nullable: true` likewise.
   * The $refs followed are pushed on refs (they identify the schema, to stop at recursive ones).
   */
  schema(node: unknown, refs: string[] = []): Obj {
    if (node === false) return { not: {} };
    const resolved = this.resolve(node, refs);
    if (!resolved) return {};
    let schema: Obj = resolved;
    if (Array.isArray(schema.allOf)) {
      const merged: Obj = { ...schema };
      delete merged.allOf;
      for (const member of schema.allOf.map((m) => this.schema(m, refs))) {
        for (const [key, value] of Object.entries(member)) {
          if (key === 'properties' && isObj(value))
            merged.properties = { ...value, ...asObj(merged.properties) };
          else if (key === 'required' && Array.isArray(value))
            merged.required = [...new Set([...asStrings(merged.required), ...asStrings(value)])];
          else if (!(key in merged)) merged[key] = value;
        }
      }
      schema = merged;
    }
    let nullable = schema.nullable === true;
    for (const keyword of ['oneOf', 'anyOf'] as const) {
      const list = schema[keyword];
      if (!Array.isArray(list)) continue;
      const branchRefs: string[] = [];
      const branches = list.map((branch) => this.schema(branch, branchRefs));
      const others = branches.filter((branch) => !isNullOnly(branch));
      const only = others[0];
      if (others.length === branches.length || others.length !== 1 || !only) continue;
      refs.push(...branchRefs);
      const outer: Obj = { ...schema };
      delete outer[keyword];
      schema = { ...only, ...outer };
      nullable = true;
    }
    if (nullable) {
      const types = typesOf(schema);
      if (types && !types.has('null')) schema = { ...schema, type: [...types, 'null'] };
    }
    return schema;
  }
}

function asObj(value: unknown): Obj {
  return isObj(value) ? value : {};
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function isNullOnly(schema: Obj): boolean {
  const types = typesOf(schema);
  if (types) return types.size === 1 && types.has('null');
  return (
    (Array.isArray(schema.enum) && schema.enum.length === 1 && schema.enum[0] === null) ||
    schema.const === null
  );
}

/** The types a schema allows; undefined for any. */
function typesOf(schema: Obj): Set<string> | undefined {
  if (isObj(schema.not) && Object.keys(schema.not).length === 0) return new Set();
  if (typeof schema.type === 'string') return new Set([schema.type]);
  if (Array.isArray(schema.type)) return new Set(asStrings(schema.type));
  return undefined;
}

function allows(types: Set<string> | undefined, type: string): boolean {
  return !types || types.has(type) || (type === 'integer' && types.has('number'));
}

/** Enum values other than null (nullability is a type), as JSON; undefined for no enum. */
function enumOf(schema: Obj): string[] | undefined {
  const values = Array.isArray(schema.enum) ? schema.enum : 'const' in schema ? [schema.const] : undefined;
  return values?.filter((v) => v !== null).map(show);
}

interface Context {
  before: Doc;
  after: Doc;
  out: Change[];
}

interface SchemaContext extends Context {
  direction: Direction;
  location: string;
  /** The pairs of $refs being compared, to stop at recursive schemas. */
  visiting: Set<string>;
}

function add(ctx: Context, severity: Severity, location: string, message: string): void {
  ctx.out.push({ severity, location, message });
}

function compareSchema(ctx: SchemaContext, beforeNode: unknown, afterNode: unknown, path: string): void {
  const beforeRefs: string[] = [];
  const afterRefs: string[] = [];
  const before = ctx.before.schema(beforeNode, beforeRefs);
  const after = ctx.after.schema(afterNode, afterRefs);
  const key = `${beforeRefs.join(',')}|${afterRefs.join(',')}`;
  if (key !== '|' && ctx.visiting.has(key)) return;
  ctx.visiting.add(key);
  try {
    compareResolved(ctx, before, after, path);
  } finally {
    ctx.visiting.delete(key);
  }
}

function compareResolved(ctx: SchemaContext, before: Obj, after: Obj, path: string): void {
  const location = path ? `${ctx.location}${path.startsWith('[') ? '' : ' '}${path}` : ctx.location;
  const request = ctx.direction === 'request';
  const report = (breaking: boolean, message: string) =>
    add(ctx, breaking ? 'breaking' : 'non-breaking', location, message);

  // Types: a response may not start sending a type it did not, a request may not stop accepting one.
  const beforeTypes = typesOf(before);
  const afterTypes = typesOf(after);
  const gained = afterTypes
    ? [...afterTypes].filter((t) => !allows(beforeTypes, t))
    : beforeTypes
      ? ['any']
      : [];
  const lost = beforeTypes
    ? [...beforeTypes].filter((t) => !allows(afterTypes, t))
    : afterTypes
      ? ['any']
      : [];
  const describe = (types: string[]) => types.map((t) => (t === 'any' ? 'any type' : t)).join(', ');
  if (gained.length > 0)
    report(
      !request,
      gained.length === 1 && gained[0] === 'null'
        ? 'now nullable'
        : `type widened: now also ${describe(gained)}`,
    );
  if (lost.length > 0)
    report(
      request,
      lost.length === 1 && lost[0] === 'null'
        ? request
          ? 'no longer accepts null'
          : 'no longer nullable'
        : `type narrowed: no longer ${describe(lost)}`,
    );

  // Enums.
  const beforeEnum = enumOf(before);
  const afterEnum = enumOf(after);
  if (beforeEnum && !afterEnum)
    report(!request, `enum removed: any value now (was ${beforeEnum.join(', ')})`);
  if (!beforeEnum && afterEnum) report(request, `now restricted to ${afterEnum.join(', ')}`);
  if (beforeEnum && afterEnum) {
    const added = afterEnum.filter((v) => !beforeEnum.includes(v));
    const removed = beforeEnum.filter((v) => !afterEnum.includes(v));
    if (added.length > 0)
      report(!request, `enum value${added.length > 1 ? 's' : ''} added: ${added.join(', ')}`);
    if (removed.length > 0)
      report(request, `enum value${removed.length > 1 ? 's' : ''} removed: ${removed.join(', ')}`);
  }

  // format: restricts what a request may send, and tells a client how to parse what it receives.
  if (before.format !== after.format) {
    if (after.format === undefined) report(!request, `format ${show(before.format)} removed`);
    else if (before.format === undefined) report(request, `format ${show(after.format)} added`);
    else report(true, `format changed from ${show(before.format)} to ${show(after.format)}`);
  }
  if (before.pattern !== after.pattern) {
    if (after.pattern === undefined) report(false, `pattern ${show(before.pattern)} removed`);
    else if (before.pattern === undefined) report(request, `pattern ${show(after.pattern)} added`);
    else report(request, `pattern changed from ${show(before.pattern)} to ${show(after.pattern)}`);
  }

  // Bounds: only a request can be refused for them.
  for (const [bounds, tighter] of [
    [UPPER_BOUNDS, (b: number, a: number) => a < b],
    [LOWER_BOUNDS, (b: number, a: number) => a > b],
  ] as const) {
    for (const bound of bounds) {
      const b = typeof before[bound] === 'number' ? before[bound] : undefined;
      const a = typeof after[bound] === 'number' ? after[bound] : undefined;
      if (a === b) continue;
      if (a === undefined) report(false, `${bound} ${b} removed`);
      else if (b === undefined) report(request, `${bound} ${a} added`);
      else report(request && tighter(b, a), `${bound} changed from ${b} to ${a}`);
    }
  }

  compareProperties(ctx, before, after, path, report);

  if (isObj(before.items) || isObj(after.items)) compareSchema(ctx, before.items, after.items, `${path}[]`);

  // Alternatives that survived nullable unwrapping, matched by position.
  const beforeBranches = before.oneOf ?? before.anyOf;
  const afterBranches = after.oneOf ?? after.anyOf;
  if (Array.isArray(beforeBranches) && Array.isArray(afterBranches)) {
    const shared = Math.min(beforeBranches.length, afterBranches.length);
    for (let i = 0; i < shared; i++)
      compareSchema(ctx, beforeBranches[i], afterBranches[i], `${path}(alternative ${i + 1})`);
    if (afterBranches.length > shared)
      report(!request, `${afterBranches.length - shared} alternative(s) added`);
    if (beforeBranches.length > shared)
      report(request, `${beforeBranches.length - shared} alternative(s) removed`);
  }
}

function compareProperties(
  ctx: SchemaContext,
  before: Obj,
  after: Obj,
  path: string,
  report: (breaking: boolean, message: string) => void,
): void {
  const request = ctx.direction === 'request';
  const beforeProps = asObj(before.properties);
  const afterProps = asObj(after.properties);
  const beforeRequired = new Set(asStrings(before.required));
  const afterRequired = new Set(asStrings(after.required));
  // readOnly properties are never sent, writeOnly ones never received.
  const skip = (doc: Doc, node: unknown) => doc.schema(node)[request ? 'readOnly' : 'writeOnly'] === true;
  const closed = after.additionalProperties === false;

  for (const name of new Set([...Object.keys(beforeProps), ...Object.keys(afterProps)])) {
    const inBefore = name in beforeProps && !skip(ctx.before, beforeProps[name]);
    const inAfter = name in afterProps && !skip(ctx.after, afterProps[name]);
    const child = joinPath(path, name);
    const at = (breaking: boolean, message: string) =>
      add(ctx, breaking ? 'breaking' : 'non-breaking', `${ctx.location} ${child}`, message);
    if (inBefore && !inAfter) {
      if (!request) at(true, 'property removed');
      else
        at(
          closed,
          closed
            ? 'property removed; sending it is refused (additionalProperties: false)'
            : 'property removed',
        );
    } else if (!inBefore && inAfter) {
      if (request && afterRequired.has(name)) at(true, 'new required property');
      else at(false, request ? 'new optional property' : 'property added');
    } else if (inBefore && inAfter) {
      const was = beforeRequired.has(name);
      const is = afterRequired.has(name);
      if (was && !is) at(!request, request ? 'now optional' : 'no longer required: it may be absent');
      if (!was && is) at(request, request ? 'now required' : 'now always present');
      compareSchema(ctx, beforeProps[name], afterProps[name], child);
    }
  }

  if (request && before.additionalProperties !== false && closed && typesOf(after)?.has('object') !== false)
    report(true, 'additional properties now refused (additionalProperties: false)');
  if (!request && before.additionalProperties === false && after.additionalProperties !== false)
    report(false, 'may now carry additional properties');
  if (isObj(before.additionalProperties) && isObj(after.additionalProperties))
    compareSchema(ctx, before.additionalProperties, after.additionalProperties, `${path}.*`);
}

/** Paths by shape: `/users/{userId}` and `/users/{id}` are one path. */
function pathsByShape(doc: Doc): Map<string, { template: string; item: Obj }> {
  const paths = new Map<string, { template: string; item: Obj }>();
  for (const [template, item] of Object.entries(asObj(asObj(doc.root).paths))) {
    const resolved = doc.resolve(item);
    if (resolved) paths.set(template.replace(/\{[^}]*\}/g, '{}'), { template, item: resolved });
  }
  return paths;
}

interface Param {
  name: string;
  in: string;
  required: boolean;
  schema: unknown;
}

/** An operation's parameters (the path item's, overridden by its own), keyed by location and name. */
function parametersOf(doc: Doc, template: string, item: Obj, op: Obj): Map<string, Param> {
  const pathNames = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
  const params = new Map<string, Param>();
  for (const list of [item.parameters, op.parameters]) {
    for (const node of Array.isArray(list) ? list : []) {
      const p = doc.resolve(node);
      if (!p || typeof p.name !== 'string' || typeof p.in !== 'string') continue;
      const name = p.in === 'header' ? p.name.toLowerCase() : p.name;
      // Path parameters are keyed by position, so renaming one changes nothing.
      const position = pathNames.indexOf(p.name);
      const key = p.in === 'path' && position >= 0 ? `path:#${position}` : `${p.in}:${name}`;
      const content = asObj(p.content);
      const firstMedia = Object.values(content)[0];
      params.set(key, {
        name: p.name,
        in: p.in,
        required: p.required === true,
        schema: p.schema ?? asObj(doc.resolve(firstMedia)).schema,
      });
    }
  }
  return params;
}

function compareParameters(
  ctx: Context,
  where: string,
  before: Map<string, Param>,
  after: Map<string, Param>,
) {
  const matched = new Set<string>();
  for (const [key, b] of before) {
    const location = `${where} parameter ${b.in} ${b.name}`;
    const a = after.get(key);
    if (a) {
      matched.add(key);
      if (!b.required && a.required) add(ctx, 'breaking', location, 'now required');
      if (b.required && !a.required) add(ctx, 'non-breaking', location, 'now optional');
      compareSchema({ ...ctx, direction: 'request', location, visiting: new Set() }, b.schema, a.schema, '');
      continue;
    }
    const same = (p: Param) => p.name.toLowerCase() === b.name.toLowerCase();
    const moved = [...after].find(([k, p]) => !before.has(k) && !matched.has(k) && same(p));
    if (moved) {
      matched.add(moved[0]);
      add(ctx, 'breaking', location, `moved from ${b.in} to ${moved[1].in}`);
    } else if (b.in === 'query') {
      add(ctx, 'breaking', location, 'removed: requests that send it are refused (unknown query parameter)');
    } else {
      add(ctx, 'non-breaking', location, 'removed');
    }
  }
  for (const [key, a] of after) {
    if (matched.has(key) || before.has(key)) continue;
    const location = `${where} parameter ${a.in} ${a.name}`;
    if (a.required)
      add(ctx, 'breaking', location, `new required ${a.in === 'header' ? 'header' : 'parameter'}`);
    else add(ctx, 'non-breaking', location, 'new optional parameter');
  }
}

function compareContent(
  ctx: Context,
  direction: Direction,
  where: string,
  beforeContent: unknown,
  afterContent: unknown,
): void {
  const before = asObj(beforeContent);
  const after = asObj(afterContent);
  const afterTypes = new Map(Object.keys(after).map((t) => [t.toLowerCase(), t]));
  const beforeTypes = new Set(Object.keys(before).map((t) => t.toLowerCase()));
  for (const [type, media] of Object.entries(before)) {
    const match = afterTypes.get(type.toLowerCase());
    if (match === undefined) {
      add(ctx, 'breaking', `${where} ${type}`, 'media type removed');
      continue;
    }
    const location = `${where} ${match}`;
    const schemaCtx = { ...ctx, direction, location, visiting: new Set<string>() };
    compareSchema(
      schemaCtx,
      ctx.before.resolve(media)?.schema,
      ctx.after.resolve(after[match])?.schema,
      'body',
    );
  }
  for (const type of Object.keys(after))
    if (!beforeTypes.has(type.toLowerCase()))
      add(ctx, 'non-breaking', `${where} ${type}`, 'media type added');
}

function compareRequestBody(ctx: Context, where: string, beforeOp: Obj, afterOp: Obj): void {
  const before = ctx.before.resolve(beforeOp.requestBody);
  const after = ctx.after.resolve(afterOp.requestBody);
  const location = `${where} request`;
  if (!before && !after) return;
  if (!before && after) {
    if (after.required === true) add(ctx, 'breaking', location, 'request body now required');
    else add(ctx, 'non-breaking', location, 'optional request body added');
    return;
  }
  if (before && !after) {
    add(ctx, 'non-breaking', location, 'request body removed');
    return;
  }
  if (before && after) {
    if (before.required !== true && after.required === true)
      add(ctx, 'breaking', location, 'request body now required');
    if (before.required === true && after.required !== true)
      add(ctx, 'non-breaking', location, 'request body now optional');
    compareContent(ctx, 'request', location, before.content, after.content);
  }
}

function compareResponses(ctx: Context, where: string, beforeOp: Obj, afterOp: Obj): void {
  const before = asObj(beforeOp.responses);
  const after = asObj(afterOp.responses);
  for (const [status, node] of Object.entries(before)) {
    const location = `${where} response ${status}`;
    if (!(status in after)) {
      const success = status.startsWith('2');
      add(
        ctx,
        success ? 'breaking' : 'non-breaking',
        location,
        success ? 'success response removed' : 'removed',
      );
      continue;
    }
    const b = asObj(ctx.before.resolve(node));
    const a = asObj(ctx.after.resolve(after[status]));
    compareContent(ctx, 'response', location, b.content, a.content);

    const beforeHeaders = asObj(b.headers);
    const afterHeaders = new Map(Object.entries(asObj(a.headers)).map(([n, h]) => [n.toLowerCase(), h]));
    for (const [name, header] of Object.entries(beforeHeaders)) {
      const headerLocation = `${location} header ${name}`;
      if (!afterHeaders.has(name.toLowerCase())) {
        add(ctx, 'breaking', headerLocation, 'removed');
        continue;
      }
      compareSchema(
        { ...ctx, direction: 'response', location: headerLocation, visiting: new Set() },
        ctx.before.resolve(header)?.schema,
        ctx.after.resolve(afterHeaders.get(name.toLowerCase()))?.schema,
        '',
      );
    }
    const known = new Set(Object.keys(beforeHeaders).map((n) => n.toLowerCase()));
    for (const name of Object.keys(asObj(a.headers)))
      if (!known.has(name.toLowerCase())) add(ctx, 'non-breaking', `${location} header ${name}`, 'added');
  }
  for (const status of Object.keys(after))
    if (!(status in before)) add(ctx, 'non-breaking', `${where} response ${status}`, 'added');
}

type Requirement = Record<string, string[]>;

function securityOf(doc: Doc, op: Obj): Requirement[] {
  const list = op.security ?? asObj(doc.root).security;
  if (!Array.isArray(list)) return [];
  return list
    .filter(isObj)
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, asStrings(v)])));
}

function showRequirement(requirement: Requirement): string {
  const parts = Object.entries(requirement).map(([scheme, scopes]) => `${scheme} [${scopes.join(', ')}]`);
  return parts.length ? parts.join(' and ') : 'no authentication';
}

/** A credential that satisfied a requirement of before must satisfy one of after. */
function compareSecurity(ctx: Context, where: string, beforeOp: Obj, afterOp: Obj): void {
  const before = securityOf(ctx.before, beforeOp);
  const after = securityOf(ctx.after, afterOp);
  if (show(before) === show(after)) return;
  const location = `${where} security`;
  // An empty list, or an empty requirement in it, lets anyone in.
  const open = (list: Requirement[]) => list.length === 0 || list.some((r) => Object.keys(r).length === 0);
  const satisfies = (had: Requirement, needed: Requirement) =>
    Object.entries(needed).every(([scheme, scopes]) => {
      const granted = had[scheme];
      return granted !== undefined && scopes.every((s) => granted.includes(s));
    });
  const now = open(after) ? 'no authentication' : after.map(showRequirement).join(' or ');
  let broken = false;
  if (open(before) && !open(after)) {
    add(ctx, 'breaking', location, `now requires ${now}`);
    broken = true;
  } else if (!open(after)) {
    for (const had of before) {
      if (after.some((needed) => satisfies(had, needed))) continue;
      add(ctx, 'breaking', location, `${showRequirement(had)} no longer suffices (now ${now})`);
      broken = true;
    }
  }
  if (!broken) add(ctx, 'non-breaking', location, `relaxed (now ${now})`);
}

function compareOperation(
  ctx: Context,
  where: string,
  b: { template: string; item: Obj; op: Obj },
  a: typeof b,
) {
  if (typeof b.op.operationId === 'string' && b.op.operationId !== a.op.operationId) {
    if (typeof a.op.operationId === 'string')
      add(ctx, 'breaking', where, `operationId renamed from ${b.op.operationId} to ${a.op.operationId}`);
    else add(ctx, 'breaking', where, `operationId ${b.op.operationId} removed`);
  } else if (b.op.operationId === undefined && typeof a.op.operationId === 'string') {
    add(ctx, 'non-breaking', where, `operationId ${a.op.operationId} added`);
  }
  if (b.op.deprecated !== true && a.op.deprecated === true) add(ctx, 'non-breaking', where, 'deprecated');
  compareSecurity(ctx, where, b.op, a.op);
  compareParameters(
    ctx,
    where,
    parametersOf(ctx.before, b.template, b.item, b.op),
    parametersOf(ctx.after, a.template, a.item, a.op),
  );
  compareRequestBody(ctx, where, b.op, a.op);
  compareResponses(ctx, where, b.op, a.op);
}

/** Every change found between two parsed OpenAPI documents, breaking ones and others. */
export function compareSpecs(before: unknown, after: unknown): Change[] {
  const ctx: Context = { before: new Doc(before), after: new Doc(after), out: [] };
  const beforePaths = pathsByShape(ctx.before);
  const afterPaths = pathsByShape(ctx.after);
  for (const [shape, b] of beforePaths) {
    const a = afterPaths.get(shape);
    if (!a) {
      add(ctx, 'breaking', b.template, 'path removed');
      continue;
    }
    for (const method of METHODS) {
      const where = `${method.toUpperCase()} ${a.template}`;
      const beforeOp = ctx.before.resolve(b.item[method]);
      const afterOp = ctx.after.resolve(a.item[method]);
      if (beforeOp && !afterOp) add(ctx, 'breaking', where, 'operation removed');
      else if (!beforeOp && afterOp) add(ctx, 'non-breaking', where, 'operation added');
      else if (beforeOp && afterOp)
        compareOperation(
          ctx,
          where,
          { ...b, op: beforeOp },
          { template: a.template, item: a.item, op: afterOp },
        );
    }
  }
  for (const [shape, a] of afterPaths)
    if (!beforePaths.has(shape)) add(ctx, 'non-breaking', a.template, 'path added');
  return ctx.out;
}

/** The changes that break existing clients. */
export function breakingChanges(before: unknown, after: unknown): Change[] {
  return compareSpecs(before, after).filter((c) => c.severity === 'breaking');
}

/** MAJOR.MINOR.PATCH of a semantic version (a pre-release or build suffix is allowed); else undefined. */
export function parseVersion(version: unknown): [number, number, number] | undefined {
  const match =
    typeof version === 'string' ? /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(version.trim()) : null;
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/**
 * Whether going from one info.version to another announces breaking changes: the major went up, or,
 * while the major is 0, the minor did (semver: anything may change in 0.x, and 0.x.y → 0.(x+1).0 is
 * how such a change is announced).
 */
export function isMajorBump(before: unknown, after: unknown): boolean {
  const b = parseVersion(before);
  const a = parseVersion(after);
  if (!b || !a) return false;
  if (a[0] !== b[0]) return a[0] > b[0];
  return a[0] === 0 && a[1] > b[1];
}
