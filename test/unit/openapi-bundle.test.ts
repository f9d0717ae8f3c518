// The contract is written split by tag under openapi/ and published as one bundle,
// generated/openapi.yaml (make gen; make check-gen fails when the committed bundle differs from a
// fresh one). Everything reads the bundle, so it must stand alone, and its component names (the
// SDK's type names) must be the ones the root declares, not names the bundler made up.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

type Doc = { paths: Record<string, unknown>; components: Record<string, Record<string, unknown>> };
const root = parse(readFileSync('openapi/openapi.yaml', 'utf8')) as Doc;
const bundle = parse(readFileSync('generated/openapi.yaml', 'utf8')) as Doc;

function refs(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => refs(item, found));
  else if (node !== null && typeof node === 'object')
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else refs(value, found);
    }
  return found;
}

describe('generated/openapi.yaml, the bundle of openapi/', () => {
  it('stands alone: every $ref points inside it, at something that exists', () => {
    const all = refs(bundle);
    expect(all.length).toBeGreaterThan(100);
    const dangling = all.filter((ref) => {
      const [, kind, name] = /^#\/components\/(\w+)\/([^/]+)$/.exec(ref) ?? [];
      return !kind || !name || bundle.components[kind]?.[name] === undefined;
    });
    expect(dangling).toEqual([]);
  });

  it("has the root's paths and components, by the root's names and in its order", () => {
    expect(Object.keys(bundle.paths)).toEqual(Object.keys(root.paths));
    const names = (doc: Doc) =>
      Object.entries(doc.components).flatMap(([kind, entries]) =>
        Object.keys(entries).map((name) => `${kind}/${name}`),
      );
    // A component only $ref'd from a file, not declared in the root, would show up here last.
    expect(names(bundle)).toEqual(names(root));
  });
});

describe('the answers every operation declares', () => {
  it('415 on each (a body where none is taken, or in another media type), 413 on each that reads one', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(bundle.paths as Record<string, Record<string, unknown>>)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'put', 'post', 'patch', 'delete'].includes(method)) continue;
        const responses = (op as { responses: Record<string, unknown> }).responses;
        if (!responses['415']) missing.push(`415 ${method} ${path}`);
        // A read's body is refused before it is read; a write's is parsed (a JSON {}), so may be too big.
        if (method !== 'get' && !responses['413']) missing.push(`413 ${method} ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('entity tags in the contract', () => {
  it('are declared by every success that answers a versioned resource', () => {
    type Node = Record<string, unknown> & { $ref?: string };
    const doc = bundle as unknown as Node;
    const deref = (node: Node | undefined): Node | undefined => {
      let at = node;
      while (at?.$ref)
        at = at.$ref
          .slice(2)
          .split('/')
          .reduce<Node | undefined>((x, k) => x?.[k] as Node | undefined, doc);
      return at;
    };
    const versioned = (node: Node | undefined): boolean => {
      const schema = deref(node);
      if (!schema) return false;
      if ((schema.properties as Node | undefined)?.version) return true;
      return ['allOf', 'oneOf', 'anyOf'].some((k) =>
        ((schema[k] as Node[] | undefined) ?? []).some(versioned),
      );
    };
    const missing: string[] = [];
    for (const [path, operations] of Object.entries(bundle.paths as Record<string, Record<string, Node>>))
      for (const [method, operation] of Object.entries(operations)) {
        // A link answers the linked feature, whose version is not the link's.
        if (operation.operationId === 'linkSubscriptionFeature') continue;
        for (const [status, response] of Object.entries(
          (operation.responses ?? {}) as Record<string, Node>,
        )) {
          const answer = deref(response);
          const content = answer?.content as Record<string, { schema?: Node }> | undefined;
          if (!status.startsWith('2') || !versioned(content?.['application/json']?.schema)) continue;
          if (!(answer?.headers as Node | undefined)?.ETag)
            missing.push(`${method.toUpperCase()} ${path} ${status}`);
        }
      }
    expect(missing).toEqual([]);
  });
});

/**
 * Every key of a schema object that is no JSON Schema keyword (nor an extension): a YAML slip such as
 * `{ description: On a clock, its time. }` (a comma in an unquoted flow value) makes one silently.
 */
const KEYWORDS = new Set(
  `$ref description type properties required items enum format minimum maximum exclusiveMinimum
  exclusiveMaximum minLength maxLength pattern oneOf anyOf allOf not additionalProperties example examples
  default readOnly writeOnly title const minItems maxItems uniqueItems discriminator deprecated
  minProperties maxProperties propertyNames patternProperties multipleOf`.split(/\s+/),
);
const NESTED = ['items', 'not', 'additionalProperties', 'propertyNames'];

function unknownKeywords(schema: unknown, path: string, found: string[] = []): string[] {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return found;
  for (const [key, value] of Object.entries(schema)) {
    if (!KEYWORDS.has(key) && !key.startsWith('x-')) found.push(`${path}: ${key}`);
    if (key === 'properties')
      for (const [name, property] of Object.entries(value as object))
        unknownKeywords(property, `${path}/properties/${name}`, found);
    if (NESTED.includes(key)) unknownKeywords(value, `${path}/${key}`, found);
    if (['oneOf', 'anyOf', 'allOf'].includes(key))
      (value as unknown[]).forEach((item, i) => unknownKeywords(item, `${path}/${key}/${i}`, found));
  }
  return found;
}

describe('the schemas of the bundle', () => {
  it('use JSON Schema keywords only', () => {
    const found = Object.entries(bundle.components.schemas ?? {}).flatMap(([name, schema]) =>
      unknownKeywords(schema, name),
    );
    expect(found).toEqual([]);
  });
});
