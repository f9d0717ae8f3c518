// make spec-diff: which contract changes break clients (src/cli/spec-diff/compare.ts), on crafted
// before/after documents, and the CLI's exit codes against a throwaway git repository.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { breakingChanges, compareSpecs, isMajorBump, parseVersion } from '../../src/cli/spec-diff/compare.js';

type Obj = Record<string, unknown>;

function spec(paths: Obj, components: Obj = {}, extra: Obj = {}): Obj {
  return { openapi: '3.1.0', info: { title: 'Things', version: '1.0.0' }, paths, components, ...extra };
}

/** GET /things answering 200 with this JSON body. */
function responding(schema: unknown, components: Obj = {}): Obj {
  return spec(
    {
      '/things': {
        get: {
          operationId: 'listThings',
          responses: { '200': { description: 'ok', content: { 'application/json': { schema } } } },
        },
      },
    },
    components,
  );
}

/** POST /things taking this JSON body. */
function accepting(schema: unknown, components: Obj = {}): Obj {
  return spec(
    {
      '/things': {
        post: {
          operationId: 'createThing',
          requestBody: { required: true, content: { 'application/json': { schema } } },
          responses: { '201': { description: 'created' } },
        },
      },
    },
    components,
  );
}

/** GET /things with these parameters. */
function withParameters(parameters: unknown[], components: Obj = {}): Obj {
  return spec(
    {
      '/things': {
        get: { operationId: 'listThings', parameters, responses: { '200': { description: 'ok' } } },
      },
    },
    components,
  );
}

const object = (properties: Obj, required: string[] = [], more: Obj = {}) => ({
  type: 'object',
  properties,
  required,
  ...more,
});

/** `location: message` of each breaking change. */
function breaking(before: Obj, after: Obj): string[] {
  return breakingChanges(before, after).map((c) => `${c.location}: ${c.message}`);
}

/** `location: message` of each non-breaking change. */
function nonBreaking(before: Obj, after: Obj): string[] {
  return compareSpecs(before, after)
    .filter((c) => c.severity === 'non-breaking')
    .map((c) => `${c.location}: ${c.message}`);
}

const BODY_OUT = 'GET /things response 200 application/json body';
const BODY_IN = 'POST /things request application/json body';

describe('paths, operations and operationIds', () => {
  const get = { operationId: 'listThings', responses: { '200': { description: 'ok' } } };
  const post = { operationId: 'createThing', responses: { '201': { description: 'created' } } };

  it('a removed path is breaking, a new one is not', () => {
    const before = spec({ '/things': { get }, '/others': { get: { ...get, operationId: 'listOthers' } } });
    const after = spec({ '/things': { get }, '/new': { get: { ...get, operationId: 'listNew' } } });
    expect(breaking(before, after)).toEqual(['/others: path removed']);
    expect(nonBreaking(before, after)).toEqual(['/new: path added']);
  });

  it('a removed operation is breaking, a new one is not', () => {
    expect(breaking(spec({ '/things': { get, post } }), spec({ '/things': { get } }))).toEqual([
      'POST /things: operation removed',
    ]);
    const added = spec({ '/things': { get, post } });
    expect(breaking(spec({ '/things': { get } }), added)).toEqual([]);
    expect(nonBreaking(spec({ '/things': { get } }), added)).toEqual(['POST /things: operation added']);
  });

  it('a renamed or removed operationId is breaking, a new one is not', () => {
    const before = spec({ '/things': { get } });
    expect(breaking(before, spec({ '/things': { get: { ...get, operationId: 'getThings' } } }))).toEqual([
      'GET /things: operationId renamed from listThings to getThings',
    ]);
    expect(breaking(before, spec({ '/things': { get: { ...get, operationId: undefined } } }))).toEqual([
      'GET /things: operationId listThings removed',
    ]);
    const without = spec({ '/things': { get: { ...get, operationId: undefined } } });
    expect(breaking(without, before)).toEqual([]);
    expect(nonBreaking(without, before)).toEqual(['GET /things: operationId listThings added']);
  });

  it('renaming a path parameter is no change', () => {
    const item = (name: string) => ({
      get: {
        ...get,
        parameters: [{ name, in: 'path', required: true, schema: { type: 'string' } }],
      },
    });
    expect(
      compareSpecs(spec({ '/things/{id}': item('id') }), spec({ '/things/{thingId}': item('thingId') })),
    ).toEqual([]);
  });

  it('descriptions, summaries and examples change nothing', () => {
    const before = responding({ type: 'string', description: 'old', examples: ['a'] });
    const after = responding({ type: 'string', description: 'new', examples: ['b'] });
    const paths = after.paths as { '/things': { get: Obj } };
    paths['/things'].get.summary = 'List the things';
    paths['/things'].get.description = 'All of them.';
    expect(compareSpecs(before, after)).toEqual([]);
  });
});

describe('responses', () => {
  const op = (responses: Obj) => spec({ '/things': { get: { operationId: 'listThings', responses } } });
  const ok = { description: 'ok' };

  it('a removed 2xx response is breaking; a removed error response or a new response is not', () => {
    expect(breaking(op({ '200': ok, '404': ok }), op({ '404': ok }))).toEqual([
      'GET /things response 200: success response removed',
    ]);
    expect(breaking(op({ '200': ok, '404': ok }), op({ '200': ok, '409': ok }))).toEqual([]);
    expect(nonBreaking(op({ '200': ok, '404': ok }), op({ '200': ok, '409': ok }))).toEqual([
      'GET /things response 404: removed',
      'GET /things response 409: added',
    ]);
  });

  it('a removed property is breaking, a new one is not', () => {
    const before = responding(object({ id: { type: 'string' }, name: { type: 'string' } }));
    expect(breaking(before, responding(object({ id: { type: 'string' } })))).toEqual([
      `${BODY_OUT}.name: property removed`,
    ]);
    const after = responding(
      object({ id: { type: 'string' }, name: { type: 'string' }, age: { type: 'integer' } }),
    );
    expect(breaking(before, after)).toEqual([]);
    expect(nonBreaking(before, after)).toEqual([`${BODY_OUT}.age: property added`]);
  });

  it('a property no longer required is breaking, a newly required one is not', () => {
    const props = { id: { type: 'string' }, name: { type: 'string' } };
    expect(breaking(responding(object(props, ['id', 'name'])), responding(object(props, ['id'])))).toEqual([
      `${BODY_OUT}.name: no longer required: it may be absent`,
    ]);
    expect(breaking(responding(object(props, ['id'])), responding(object(props, ['id', 'name'])))).toEqual(
      [],
    );
  });

  it("a property becoming nullable is breaking, with type: [string, 'null'] or oneOf with null", () => {
    const before = responding(object({ name: { type: 'string' } }, ['name']));
    expect(breaking(before, responding(object({ name: { type: ['string', 'null'] } }, ['name'])))).toEqual([
      `${BODY_OUT}.name: now nullable`,
    ]);
    const viaOneOf = responding(
      object({ name: { oneOf: [{ type: 'null' }, { type: 'string' }] } }, ['name']),
    );
    expect(breaking(before, viaOneOf)).toEqual([`${BODY_OUT}.name: now nullable`]);
    const via30 = responding(object({ name: { type: 'string', nullable: true } }, ['name']));
    expect(breaking(before, via30)).toEqual([`${BODY_OUT}.name: now nullable`]);
    // Null no longer sent: a narrower response.
    expect(breaking(viaOneOf, before)).toEqual([]);
    expect(nonBreaking(viaOneOf, before)).toEqual([`${BODY_OUT}.name: no longer nullable`]);
  });

  it('the two spellings of nullable are the same schema', () => {
    const components = { schemas: { Region: { type: 'string', pattern: '^[A-Z]{2}$' } } };
    const asType = responding({ type: ['string', 'null'], pattern: '^[A-Z]{2}$' });
    const asOneOf = responding(
      { oneOf: [{ type: 'null' }, { $ref: '#/components/schemas/Region' }] },
      components,
    );
    expect(compareSpecs(asType, asOneOf)).toEqual([]);
    expect(compareSpecs(asOneOf, asType)).toEqual([]);
  });

  it('a widened type is breaking, a narrowed one is not', () => {
    expect(breaking(responding({ type: 'string' }), responding({ type: ['string', 'integer'] }))).toEqual([
      `${BODY_OUT}: type widened: now also integer`,
    ]);
    expect(breaking(responding({ type: 'integer' }), responding({ type: 'number' }))).toEqual([
      `${BODY_OUT}: type widened: now also number`,
    ]);
    expect(breaking(responding({ type: 'number' }), responding({ type: 'integer' }))).toEqual([]);
    expect(breaking(responding({ type: ['string', 'integer'] }), responding({ type: 'string' }))).toEqual([]);
  });

  it('a new enum value is breaking (exhaustive switches), a removed one is not', () => {
    const before = responding(object({ status: { type: 'string', enum: ['active', 'canceled'] } }));
    const after = responding(object({ status: { type: 'string', enum: ['active', 'canceled', 'paused'] } }));
    expect(breaking(before, after)).toEqual([`${BODY_OUT}.status: enum value added: "paused"`]);
    expect(breaking(after, before)).toEqual([]);
    expect(nonBreaking(after, before)).toEqual([`${BODY_OUT}.status: enum value removed: "paused"`]);
  });

  it('arrays are compared item by item', () => {
    const before = responding(
      object({ data: { type: 'array', items: object({ id: { type: 'string' } }, ['id']) } }),
    );
    const after = responding(object({ data: { type: 'array', items: object({ id: { type: 'string' } }) } }));
    expect(breaking(before, after)).toEqual([`${BODY_OUT}.data[].id: no longer required: it may be absent`]);
  });

  it('looser response bounds are listed, not breaking; a changed format is breaking', () => {
    expect(
      breaking(responding({ type: 'string', maxLength: 10 }), responding({ type: 'string', maxLength: 20 })),
    ).toEqual([]);
    expect(
      breaking(
        responding({ type: 'string', format: 'date' }),
        responding({ type: 'string', format: 'date-time' }),
      ),
    ).toEqual([`${BODY_OUT}: format changed from "date" to "date-time"`]);
  });

  it('a removed response header is breaking, a new one is not', () => {
    const withHeaders = (headers: Obj) =>
      spec({
        '/things': {
          get: { operationId: 'listThings', responses: { '200': { description: 'ok', headers } } },
        },
      });
    const etag = { schema: { type: 'string' } };
    expect(breaking(withHeaders({ ETag: etag }), withHeaders({}))).toEqual([
      'GET /things response 200 header ETag: removed',
    ]);
    expect(breaking(withHeaders({}), withHeaders({ ETag: etag }))).toEqual([]);
    expect(nonBreaking(withHeaders({}), withHeaders({ etag }))).toEqual([
      'GET /things response 200 header etag: added',
    ]);
  });

  it('writeOnly properties are not part of a response', () => {
    const before = responding(
      object({ id: { type: 'string' }, password: { type: 'string', writeOnly: true } }),
    );
    expect(breaking(before, responding(object({ id: { type: 'string' } })))).toEqual([]);
  });
});

describe('request parameters', () => {
  const query = (name: string, more: Obj = {}) => ({
    name,
    in: 'query',
    schema: { type: 'string' },
    ...more,
  });

  it('a new required parameter is breaking, a new optional one is not', () => {
    expect(breaking(withParameters([]), withParameters([query('q', { required: true })]))).toEqual([
      'GET /things parameter query q: new required parameter',
    ]);
    expect(breaking(withParameters([]), withParameters([query('q')]))).toEqual([]);
    expect(nonBreaking(withParameters([]), withParameters([query('q')]))).toEqual([
      'GET /things parameter query q: new optional parameter',
    ]);
  });

  it('an optional parameter becoming required is breaking, the reverse is not', () => {
    const optional = withParameters([query('q')]);
    const required = withParameters([query('q', { required: true })]);
    expect(breaking(optional, required)).toEqual(['GET /things parameter query q: now required']);
    expect(breaking(required, optional)).toEqual([]);
  });

  it('a parameter moving to another location is breaking', () => {
    const header = { name: 'q', in: 'header', schema: { type: 'string' } };
    expect(breaking(withParameters([query('q')]), withParameters([header]))).toEqual([
      'GET /things parameter query q: moved from query to header',
    ]);
  });

  it('a new required header is breaking, a new optional one is not; header names ignore case', () => {
    const header = (required: boolean) => ({
      name: 'X-Tenant',
      in: 'header',
      required,
      schema: { type: 'string' },
    });
    expect(breaking(withParameters([]), withParameters([header(true)]))).toEqual([
      'GET /things parameter header X-Tenant: new required header',
    ]);
    expect(breaking(withParameters([]), withParameters([header(false)]))).toEqual([]);
    const lower = { name: 'x-tenant', in: 'header', required: false, schema: { type: 'string' } };
    expect(compareSpecs(withParameters([header(false)]), withParameters([lower]))).toEqual([]);
  });

  it('a removed query parameter is breaking (unknown ones are refused), a removed header is not', () => {
    expect(breaking(withParameters([query('q')]), withParameters([]))).toEqual([
      'GET /things parameter query q: removed: requests that send it are refused (unknown query parameter)',
    ]);
    const header = { name: 'X-Trace', in: 'header', schema: { type: 'string' } };
    expect(breaking(withParameters([header]), withParameters([]))).toEqual([]);
  });

  it("a parameter's schema is compared as a request: tighter is breaking, looser is not", () => {
    const limit = (schema: Obj) => withParameters([{ name: 'limit', in: 'query', schema }]);
    expect(
      breaking(limit({ type: 'integer', maximum: 100 }), limit({ type: 'integer', maximum: 50 })),
    ).toEqual(['GET /things parameter query limit: maximum changed from 100 to 50']);
    expect(
      breaking(limit({ type: 'integer', maximum: 100 }), limit({ type: 'integer', maximum: 500 })),
    ).toEqual([]);
  });

  it('path-level parameters count for every operation', () => {
    const p = { name: 'q', in: 'query', required: true, schema: { type: 'string' } };
    const get = { operationId: 'listThings', responses: { '200': { description: 'ok' } } };
    expect(breaking(spec({ '/things': { get } }), spec({ '/things': { parameters: [p], get } }))).toEqual([
      'GET /things parameter query q: new required parameter',
    ]);
  });
});

describe('request bodies', () => {
  it('a new required property is breaking, a new optional one is not', () => {
    const before = accepting(object({ name: { type: 'string' } }, ['name']));
    expect(
      breaking(
        before,
        accepting(object({ name: { type: 'string' }, email: { type: 'string' } }, ['name', 'email'])),
      ),
    ).toEqual([`${BODY_IN}.email: new required property`]);
    const after = accepting(object({ name: { type: 'string' }, email: { type: 'string' } }, ['name']));
    expect(breaking(before, after)).toEqual([]);
    expect(nonBreaking(before, after)).toEqual([`${BODY_IN}.email: new optional property`]);
  });

  it('an optional property becoming required is breaking, the reverse is not', () => {
    const props = { name: { type: 'string' }, email: { type: 'string' } };
    expect(breaking(accepting(object(props, ['name'])), accepting(object(props, ['name', 'email'])))).toEqual(
      [`${BODY_IN}.email: now required`],
    );
    expect(breaking(accepting(object(props, ['name', 'email'])), accepting(object(props, ['name'])))).toEqual(
      [],
    );
  });

  it('a removed property is breaking when additionalProperties is false, else not', () => {
    const props = { name: { type: 'string' }, nickname: { type: 'string' } };
    const closed = { additionalProperties: false };
    expect(
      breaking(
        accepting(object(props, [], closed)),
        accepting(object({ name: { type: 'string' } }, [], closed)),
      ),
    ).toEqual([`${BODY_IN}.nickname: property removed; sending it is refused (additionalProperties: false)`]);
    expect(breaking(accepting(object(props)), accepting(object({ name: { type: 'string' } })))).toEqual([]);
    expect(nonBreaking(accepting(object(props)), accepting(object({ name: { type: 'string' } })))).toEqual([
      `${BODY_IN}.nickname: property removed`,
    ]);
  });

  it('additionalProperties becoming false is breaking', () => {
    const props = { name: { type: 'string' } };
    expect(
      breaking(accepting(object(props)), accepting(object(props, [], { additionalProperties: false }))),
    ).toEqual([`${BODY_IN}: additional properties now refused (additionalProperties: false)`]);
  });

  it('a narrowed type is breaking (a type or null removed), a widened one is not', () => {
    const field = (type: unknown) => accepting(object({ name: { type } }));
    expect(breaking(field(['string', 'null']), field('string'))).toEqual([
      `${BODY_IN}.name: no longer accepts null`,
    ]);
    expect(breaking(field(['string', 'integer']), field('string'))).toEqual([
      `${BODY_IN}.name: type narrowed: no longer integer`,
    ]);
    expect(breaking(field('string'), field(['string', 'null']))).toEqual([]);
    expect(nonBreaking(field('string'), field(['string', 'null']))).toEqual([
      `${BODY_IN}.name: now nullable`,
    ]);
  });

  it('a removed enum value is breaking, a new one is not', () => {
    const status = (values: string[]) => accepting(object({ status: { type: 'string', enum: values } }));
    expect(breaking(status(['a', 'b']), status(['a']))).toEqual([
      `${BODY_IN}.status: enum value removed: "b"`,
    ]);
    expect(breaking(status(['a']), status(['a', 'b']))).toEqual([]);
    expect(breaking(accepting(object({ status: { type: 'string' } })), status(['a']))).toEqual([
      `${BODY_IN}.status: now restricted to "a"`,
    ]);
  });

  describe('constraints: tighter is breaking, looser is not', () => {
    const cases: [string, Obj, Obj, string][] = [
      [
        'maxLength',
        { type: 'string', maxLength: 10 },
        { type: 'string', maxLength: 5 },
        'maxLength changed from 10 to 5',
      ],
      [
        'maxItems',
        { type: 'array', maxItems: 10 },
        { type: 'array', maxItems: 5 },
        'maxItems changed from 10 to 5',
      ],
      [
        'maximum',
        { type: 'integer', maximum: 10 },
        { type: 'integer', maximum: 5 },
        'maximum changed from 10 to 5',
      ],
      [
        'minLength',
        { type: 'string', minLength: 1 },
        { type: 'string', minLength: 2 },
        'minLength changed from 1 to 2',
      ],
      [
        'minItems',
        { type: 'array', minItems: 0 },
        { type: 'array', minItems: 1 },
        'minItems changed from 0 to 1',
      ],
      [
        'minimum',
        { type: 'integer', minimum: 0 },
        { type: 'integer', minimum: 1 },
        'minimum changed from 0 to 1',
      ],
      ['a new maxLength', { type: 'string' }, { type: 'string', maxLength: 5 }, 'maxLength 5 added'],
      ['a new pattern', { type: 'string' }, { type: 'string', pattern: '^a' }, 'pattern "^a" added'],
      ['a new format', { type: 'string' }, { type: 'string', format: 'email' }, 'format "email" added'],
    ];
    for (const [name, looser, tighter, message] of cases) {
      it(name, () => {
        const field = (schema: Obj) => accepting(object({ field: schema }));
        expect(breaking(field(looser), field(tighter))).toEqual([`${BODY_IN}.field: ${message}`]);
        expect(breaking(field(tighter), field(looser))).toEqual([]);
        expect(nonBreaking(field(tighter), field(looser))).toHaveLength(1);
      });
    }
  });

  it('a changed pattern is breaking either way', () => {
    const field = (pattern: string) => accepting(object({ field: { type: 'string', pattern } }));
    expect(breaking(field('^a'), field('^b'))).toEqual([
      `${BODY_IN}.field: pattern changed from "^a" to "^b"`,
    ]);
  });

  it('a body becoming required is breaking; readOnly properties are not part of a request', () => {
    const body = (required: boolean) =>
      spec({
        '/things': {
          post: {
            operationId: 'createThing',
            requestBody: { required, content: { 'application/json': { schema: { type: 'object' } } } },
            responses: { '201': { description: 'created' } },
          },
        },
      });
    expect(breaking(body(false), body(true))).toEqual(['POST /things request: request body now required']);
    const before = accepting(object({ name: { type: 'string' } }));
    const after = accepting(
      object({ name: { type: 'string' }, id: { type: 'string', readOnly: true } }, ['id']),
    );
    expect(compareSpecs(before, after)).toEqual([]);
  });
});

describe('media types', () => {
  const body = (types: string[]) =>
    Object.fromEntries(types.map((t) => [t, { schema: { type: 'object' } }])) as Record<string, unknown>;
  const op = (request: string[], response: string[]) =>
    spec({
      '/things': {
        post: {
          operationId: 'createThing',
          requestBody: { content: body(request) },
          responses: { '201': { description: 'created', content: body(response) } },
        },
      },
    });

  it('a removed media type is breaking, in a request or a response; a new one is not', () => {
    const json = 'application/json';
    const form = 'application/x-www-form-urlencoded';
    expect(breaking(op([json, form], [json]), op([json], [json]))).toEqual([
      `POST /things request ${form}: media type removed`,
    ]);
    expect(breaking(op([json], [json, 'text/csv']), op([json], [json]))).toEqual([
      'POST /things response 201 text/csv: media type removed',
    ]);
    expect(breaking(op([json], [json]), op([json, form], [json, 'text/csv']))).toEqual([]);
    expect(nonBreaking(op([json], [json]), op([json, form], [json, 'text/csv']))).toEqual([
      `POST /things request ${form}: media type added`,
      'POST /things response 201 text/csv: media type added',
    ]);
  });
});

describe('security', () => {
  const secured = (security: unknown) =>
    spec({
      '/things': {
        get: { operationId: 'listThings', security, responses: { '200': { description: 'ok' } } },
      },
    });

  it('a new required scope is breaking, a scope less is not', () => {
    expect(
      breaking(secured([{ bearerAuth: ['read'] }]), secured([{ bearerAuth: ['read', 'write'] }])),
    ).toEqual(['GET /things security: bearerAuth [read] no longer suffices (now bearerAuth [read, write])']);
    expect(
      breaking(secured([{ bearerAuth: ['read', 'write'] }]), secured([{ bearerAuth: ['read'] }])),
    ).toEqual([]);
    expect(
      nonBreaking(secured([{ bearerAuth: ['read', 'write'] }]), secured([{ bearerAuth: ['read'] }])),
    ).toEqual(['GET /things security: relaxed (now bearerAuth [read])']);
  });

  it('authentication on a public operation is breaking; another accepted alternative is not', () => {
    expect(breaking(secured([]), secured([{ bearerAuth: ['read'] }]))).toEqual([
      'GET /things security: now requires bearerAuth [read]',
    ]);
    expect(
      breaking(secured([{ bearerAuth: ['read'] }]), secured([{ bearerAuth: ['read'] }, { apiKey: [] }])),
    ).toEqual([]);
  });

  it("an operation without security inherits the document's", () => {
    const doc = (security: unknown) => ({ ...secured(undefined), security });
    expect(breaking(doc([{ bearerAuth: [] }]), doc([{ bearerAuth: ['admin'] }]))).toEqual([
      'GET /things security: bearerAuth [] no longer suffices (now bearerAuth [admin])',
    ]);
  });
});

describe('$ref resolution', () => {
  it('follows $refs to components/schemas, and reports at each place that uses them', () => {
    const components = (status: string[]) => ({
      schemas: {
        Thing: object({ status: { $ref: '#/components/schemas/Status' } }, ['status']),
        Status: { type: 'string', enum: status },
        ThingList: object({ data: { type: 'array', items: { $ref: '#/components/schemas/Thing' } } }),
      },
    });
    const before = responding({ $ref: '#/components/schemas/ThingList' }, components(['a']));
    const after = responding({ $ref: '#/components/schemas/ThingList' }, components(['a', 'b']));
    expect(breaking(before, after)).toEqual([`${BODY_OUT}.data[].status: enum value added: "b"`]);
  });

  it('an inline schema and a $ref to the same schema are no change', () => {
    const thing = object({ id: { type: 'string' } }, ['id']);
    expect(
      compareSpecs(
        responding(thing),
        responding({ $ref: '#/components/schemas/Thing' }, { schemas: { Thing: thing } }),
      ),
    ).toEqual([]);
  });

  it('follows components/parameters, requestBodies, responses and headers', () => {
    const doc = (maxLength: number, required: boolean, status: string[], etag: Obj) =>
      spec(
        {
          '/things': {
            post: {
              operationId: 'createThing',
              parameters: [{ $ref: '#/components/parameters/Key' }],
              requestBody: { $ref: '#/components/requestBodies/ThingCreate' },
              responses: { '201': { $ref: '#/components/responses/Created' } },
            },
          },
        },
        {
          parameters: { Key: { name: 'Key', in: 'header', schema: { type: 'string', maxLength } } },
          requestBodies: {
            ThingCreate: {
              content: {
                'application/json': {
                  schema: object({ name: { type: 'string' } }, required ? ['name'] : []),
                },
              },
            },
          },
          responses: {
            Created: {
              description: 'created',
              headers: { ETag: { $ref: '#/components/headers/ETag' } },
              content: {
                'application/json': { schema: object({ status: { type: 'string', enum: status } }) },
              },
            },
          },
          headers: { ETag: etag },
        },
      );
    const before = doc(255, false, ['a'], { schema: { type: 'string' } });
    const after = doc(100, true, ['a', 'b'], { schema: { type: ['string', 'null'] } });
    expect(breaking(before, after)).toEqual([
      'POST /things parameter header Key: maxLength changed from 255 to 100',
      `${BODY_IN}.name: now required`,
      'POST /things response 201 application/json body.status: enum value added: "b"',
      'POST /things response 201 header ETag: now nullable',
    ]);
    expect(compareSpecs(before, before)).toEqual([]);
  });

  it('stops at recursive schemas', () => {
    const components = (extra: Obj) => ({
      schemas: {
        Node: object({
          name: { type: 'string' },
          parent: { oneOf: [{ type: 'null' }, { $ref: '#/components/schemas/Node' }] },
          children: { type: 'array', items: { $ref: '#/components/schemas/Node' } },
          ...extra,
        }),
      },
    });
    const before = responding(
      { $ref: '#/components/schemas/Node' },
      components({ size: { type: 'integer' } }),
    );
    const after = responding({ $ref: '#/components/schemas/Node' }, components({}));
    expect(breaking(before, after)).toEqual([`${BODY_OUT}.size: property removed`]);
  });

  it('refuses a $ref that points at nothing', () => {
    expect(() =>
      compareSpecs(responding({ type: 'string' }), responding({ $ref: '#/components/schemas/Nope' })),
    ).toThrow(/points at nothing/);
  });
});

describe('the version rule', () => {
  it('parses MAJOR.MINOR.PATCH', () => {
    expect(parseVersion('1.2.3')).toEqual([1, 2, 3]);
    expect(parseVersion('2.0.0-beta.1')).toEqual([2, 0, 0]);
    expect(parseVersion('1.2')).toBeUndefined();
    expect(parseVersion(undefined)).toBeUndefined();
  });

  it('a new major announces breaking changes; a minor or patch does not', () => {
    expect(isMajorBump('1.4.2', '2.0.0')).toBe(true);
    expect(isMajorBump('1.4.2', '1.5.0')).toBe(false);
    expect(isMajorBump('1.4.2', '1.4.3')).toBe(false);
    expect(isMajorBump('1.4.2', '1.4.2')).toBe(false);
    expect(isMajorBump('2.0.0', '1.0.0')).toBe(false);
  });

  it('with major 0, a new minor counts as major', () => {
    expect(isMajorBump('0.1.0', '0.2.0')).toBe(true);
    expect(isMajorBump('0.1.0', '0.1.1')).toBe(false);
    expect(isMajorBump('0.9.3', '1.0.0')).toBe(true);
    expect(isMajorBump('0.1.0', 'next')).toBe(false);
  });
});

it("this repository's contract compared with itself has no change", () => {
  const current = parse(readFileSync('generated/openapi.yaml', 'utf8')) as unknown;
  expect(compareSpecs(current, current)).toEqual([]);
});

describe('the CLI against a throwaway git repository', () => {
  const cli = path.resolve('src/cli/spec-diff.ts');
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  let repo: string;

  // Commits are made and the CLI run without the caller's git settings (hooks, signing, GIT_DIR).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_')));
  Object.assign(env, {
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
  });

  function run(
    file: string,
    args: string[],
    cwd: string,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(file, args, { cwd, env, encoding: 'utf8' }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function git(...args: string[]): Promise<void> {
    const result = await run('git', ['-c', 'init.defaultBranch=main', ...args], repo);
    if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  }

  /** The CLI, run from a subdirectory: it finds openapi/openapi.yaml at the repository's root. */
  const specDiff = (...args: string[]) =>
    run(process.execPath, ['--import', tsx, cli, ...args], path.join(repo, 'sub'));

  const baseSpec = spec(
    {
      '/things': {
        get: {
          operationId: 'listThings',
          responses: {
            '200': {
              description: 'ok',
              content: { 'application/json': { schema: object({ id: { type: 'string' } }, ['id']) } },
            },
          },
        },
      },
    },
    {},
  );
  const writeSpec = (doc: Obj, version = '1.0.0') =>
    writeFileSync(
      path.join(repo, 'openapi/openapi.yaml'),
      stringify({ ...doc, info: { title: 'Things', version } }),
    );

  beforeAll(async () => {
    repo = mkdtempSync(path.join(os.tmpdir(), 'spec-diff-'));
    mkdirSync(path.join(repo, 'sub'));
    mkdirSync(path.join(repo, 'openapi'));
    await git('init', '-q');
    writeFileSync(path.join(repo, 'sub/README'), 'readme\n');
    await git('add', '.');
    await git('commit', '-q', '-m', 'no spec yet');
  });
  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it('exits 0 when there is nothing to compare against', async () => {
    // HEAD has no parent and there is no tag.
    const first = await specDiff();
    expect(first.stderr).toMatch(/cannot be read/); // no openapi.yaml in the working tree: an error
    expect(first.code).toBe(2);
    writeSpec(baseSpec);
    const noParent = await specDiff();
    expect(noParent.stdout).toMatch(/no release tag.*HEAD has no parent/);
    expect(noParent.code).toBe(0);
    // HEAD~1 has no openapi.yaml.
    await git('add', '.');
    await git('commit', '-q', '-m', 'the spec');
    const noSpec = await specDiff();
    expect(noSpec.stdout).toMatch(/HEAD~1 has no openapi\/openapi.yaml/);
    expect(noSpec.code).toBe(0);
  });

  it('against the newest release tag: 0 for additions, 1 for a breaking change, 0 with a new major', async () => {
    await git('tag', 'v1.0.0');
    const added = structuredClone(baseSpec) as { paths: Record<string, Obj> };
    added.paths['/others'] = {
      get: { operationId: 'listOthers', responses: { '200': { description: 'ok' } } },
    };
    writeSpec(added);
    const additive = await specDiff();
    expect(additive.stdout).toContain('against v1.0.0');
    expect(additive.stdout).toContain('non-breaking: /others: path added');
    expect(additive.code).toBe(0);

    writeSpec(spec({}));
    const removal = await specDiff();
    expect(removal.stdout).toContain('breaking: /things: path removed');
    expect(removal.stderr).toContain('1 breaking change(s)');
    expect(removal.code).toBe(1);

    writeSpec(spec({}), '2.0.0');
    const major = await specDiff();
    expect(major.stdout).toContain('breaking: /things: path removed');
    expect(major.code).toBe(0);
  });

  it('takes a base revision, and exits 2 on a usage error', async () => {
    writeSpec(baseSpec);
    expect((await specDiff('HEAD')).code).toBe(0);
    const unknown = await specDiff('no-such-ref');
    expect(unknown.stderr).toMatch(/not a revision/);
    expect(unknown.code).toBe(2);
    expect((await specDiff('--frobnicate')).code).toBe(2);
    expect((await specDiff('a', 'b')).code).toBe(2);
  });

  it("split by tag: bundles the working tree, and reads a base's committed bundle", async () => {
    // The same contract as HEAD's one file (v1.0.0 tags it), split: the root $refs a path file.
    const write = (file: string, doc: unknown) => {
      mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
      writeFileSync(path.join(repo, file), stringify(doc));
    };
    const { paths, ...rest } = baseSpec as { paths: Record<string, Obj> };
    const split = { ...rest, info: { title: 'Things', version: '1.0.0' } };
    write('openapi/openapi.yaml', { ...split, paths: { '/things': { $ref: 'paths/things.yaml#/things' } } });
    write('openapi/paths/things.yaml', { things: paths['/things'] });
    const unchanged = await specDiff('v1.0.0');
    expect(unchanged.stdout).toContain('against v1.0.0:openapi/openapi.yaml'); // before the split
    expect(unchanged.stdout).toContain('0 breaking, 0 non-breaking change(s)');
    expect(unchanged.code).toBe(0);

    // Since the split, a revision's contract is its generated/openapi.yaml (its root alone is a part).
    write('generated/openapi.yaml', { ...split, paths });
    await git('add', '.');
    await git('commit', '-q', '-m', 'split the spec');
    const removed = structuredClone(paths['/things']) as Obj;
    delete removed.get;
    write('openapi/paths/things.yaml', { things: removed });
    const breaking = await specDiff('HEAD');
    expect(breaking.stdout).toContain('against HEAD:generated/openapi.yaml');
    expect(breaking.stdout).toContain('breaking: GET /things: operation removed');
    expect(breaking.code).toBe(1);

    write('openapi/openapi.yaml', { ...split, paths: { '/things': { $ref: 'paths/nothing.yaml#/things' } } });
    const unresolved = await specDiff('HEAD');
    expect(unresolved.stderr).toMatch(/cannot be bundled[^]*paths\/nothing\.yaml/);
    expect(unresolved.code).toBe(2);
  });
});
