// Requests that never reach a handler still get RFC 9457 problems, and write nothing.
import http from 'node:http';
import zlib from 'node:zlib';
import type supertest from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { operations } from '../../src/operations.js';
import { PLATFORM_KEY, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createSubscription, createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

describe('bad requests before any handler', () => {
  it('answers malformed JSON with 400 malformed-json', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/users')
      .set('Content-Type', 'application/json')
      .send('{"name": "A",');
    expectProblem(res, 400, 'malformed-json');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers valid JSON that is not an object as the wrong type (validation-error), not as malformed', async () => {
    const before = await fingerprint(ctx.db);
    for (const body of ['null', '42', '"Ada"', 'true', ' false ', '[]']) {
      const res = await ctx.api.post('/api/v1/users').set('Content-Type', 'application/json').send(body);
      expectProblem(res, 400, 'validation-error');
      expect(res.body, body).toMatchObject({ errors: [{ location: 'body', message: 'must be object' }] });
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('refuses a body that names a member twice in one object (JSON would keep the last), writing nothing', async () => {
    const before = await fingerprint(ctx.db);
    const cases: Array<[string, string, string]> = [
      ['/api/v1/users', '{"name":"A","email":"dup1@example.com","name":"B"}', '/name'],
      ['/api/v1/users', '{"name":"A","email":"dup2@example.com","n\\u0061me":"B"}', '/name'],
      [
        '/api/v1/users',
        '{"name":"A","email":"dup3@example.com","metadata":{"k":"1","k":"2"}}',
        '/metadata/k',
      ],
      ['/api/v1/usage-events/batch', '{"events":[{"event_id":"e","event_id":"f"}]}', '/events/0/event_id'],
    ];
    for (const [path, body, field] of cases) {
      const res = await ctx.api.post(path).set('Content-Type', 'application/json').send(body);
      const problem = expectProblem(res, 400, 'validation-error');
      expect(problem.errors, body).toEqual([
        { location: 'body', field, message: expect.stringContaining('is named twice') as string },
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // A string value may hold what looks like a repeated name.
    const ok = await ctx.api
      .post('/api/v1/users')
      .set('Content-Type', 'application/json')
      .send('{"name":"\\"name\\": 1","email":"dup-ok@example.com"}');
    expect([ok.status, (ok.body as { name: string }).name], ok.text).toEqual([201, '"name": 1']);
  });

  it('refuses a body that is not valid UTF-8 with 400 malformed-json, instead of storing U+FFFD', async () => {
    const before = await fingerprint(ctx.db);
    const cases = {
      'invalid bytes': [0xff, 0xfe],
      'an encoded surrogate': [0xed, 0xa0, 0x80],
      'a truncated sequence': [0xe2, 0x82],
      'an overlong NUL': [0xc0, 0x80],
    };
    // Over a socket, byte for byte (supertest would send a Buffer as JSON).
    const post = async (path: string, ...parts: Array<string | number[]>) => {
      const body = Buffer.concat(parts.map((p) => Buffer.from(p as string)));
      const res = await raw('POST', path, ctx.tenant.key, body, 'application/json');
      return { ...res, body: JSON.parse(res.text) as Record<string, unknown> };
    };
    for (const [what, bytes] of Object.entries(cases)) {
      const res = await post('/api/v1/users', '{"name":"A', bytes, 'B","email":"utf8@example.com"}');
      expect([res.status, res.type, res.body.type], what).toEqual([
        400,
        'application/problem+json',
        '/problems/malformed-json',
      ]);
      // The usage batch, with its own parser and limit, too.
      const batch = await post('/api/v1/usage-events/batch', '{"events":[{"code":"', bytes, '"}]}');
      expect([batch.status, batch.body.type], `batch: ${what}`).toEqual([400, '/problems/malformed-json']);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // Well-formed UTF-8 beyond ASCII is taken as sent.
    const ok = await post('/api/v1/users', '{"name":"Zoë 😀 €","email":"utf8-ok@example.com"}');
    expect([ok.status, ok.body.name], ok.text).toEqual([201, 'Zoë 😀 €']);
  });

  it('answers JSON in a charset other than utf-8 with 415, whatever the charset', async () => {
    const sub = await createSubscription(ctx);
    const before = await fingerprint(ctx.db);
    const body = JSON.stringify({ name: 'C', email: 'charset@example.com' });
    // A second charset naming another is as ambiguous, whichever comes first (input9 #4).
    for (const charset of ['utf-16', 'UTF-16LE', 'iso-8859-1', 'utf8', 'us-ascii', 'utf-8; charset=latin1']) {
      const res = await ctx.api
        .post('/api/v1/users')
        .set('Content-Type', `application/json; charset=${charset}`)
        .send(body);
      expectProblem(res, 415, 'unsupported-media-type');
    }
    // A JSON {} sent to an operation without a body too.
    const empty = await ctx.api
      .delete(`/api/v1/subscriptions/${sub.id}`)
      .set('Content-Type', 'application/json; charset=utf-16')
      .send('{}');
    expectProblem(empty, 415, 'unsupported-media-type');
    expect(await fingerprint(ctx.db)).toEqual(before);
    for (const [i, charset] of [
      'utf-8',
      'UTF-8',
      '"utf-8"',
      'utf-8; charset=UTF-8',
      // Inside another parameter's quoted value, no charset (retest10 #5).
      'utf-8; foo="a;charset=latin1"',
      // A quoted pair is the character it escapes (retest11 #7).
      '"utf\\-8"',
    ].entries()) {
      const res = await ctx.api
        .post('/api/v1/users')
        .set('Content-Type', `application/json; charset=${charset}`)
        .send(JSON.stringify({ name: 'C', email: `charset-${i}@example.com` }));
      expect(res.status, `${charset}: ${res.text}`).toBe(201);
    }
  });

  it('takes a body compressed as its Content-Encoding says, and answers one that is not with 400', async () => {
    const before = await fingerprint(ctx.db);
    const body = JSON.stringify({ name: 'Zipped', email: 'zipped@example.com' });
    // Over a socket, byte for byte (supertest would send a Buffer as JSON).
    const send = async (path: string, encoding: string, bytes: Buffer) => {
      const res = await raw('POST', path, ctx.tenant.key, bytes, 'application/json', {
        'Content-Encoding': encoding,
      });
      return { ...res, body: JSON.parse(res.text) as Record<string, string> };
    };
    for (const encoding of ['gzip', 'deflate', 'br'])
      for (const path of ['/api/v1/users', '/api/v1/usage-events', '/api/v1/usage-events/batch']) {
        const res = await send(path, encoding, Buffer.from(body));
        expect([res.status, res.type, res.body.type], `${encoding} ${path}: ${res.text}`).toEqual([
          400,
          'application/problem+json',
          '/problems/malformed-json',
        ]);
        expect(res.body.detail).toMatch(new RegExp(`Content-Encoding ${encoding}`));
      }
    const truncated = await send('/api/v1/users', 'gzip', zlib.gzipSync(body).subarray(0, 15));
    expect([truncated.status, truncated.body.type]).toEqual([400, '/problems/malformed-json']);
    expect(await fingerprint(ctx.db)).toEqual(before);
    for (const [encoding, bytes] of [
      ['gzip', zlib.gzipSync(body)],
      ['br', zlib.brotliCompressSync(body.replace('zipped@', 'brotli@'))],
    ] as const) {
      const zipped = await send('/api/v1/users', encoding, bytes);
      expect([zipped.status, zipped.body.name], zipped.text).toEqual([201, 'Zipped']);
    }
    // An encoding the API cannot read: 415 naming it, not the body's type.
    const unknown = await send('/api/v1/users', 'compress', Buffer.from(body));
    expect([unknown.status, unknown.body.type]).toEqual([415, '/problems/unsupported-media-type']);
    expect(unknown.body.detail).toMatch(/Content-Encoding compress is not supported/);
  });

  it('answers a body that is not JSON with 415', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/users')
      .set('Content-Type', 'text/plain')
      .send('name=A&email=a@b.c');
    expectProblem(res, 415, 'unsupported-media-type');
    expect((res.body as { detail: string }).detail).toBe(
      'The body is text/plain: send it as application/json.',
    );
    const form = await ctx.api.post('/api/v1/features').type('form').send({ name: 'x' });
    expectProblem(form, 415, 'unsupported-media-type');
    // Parameters only: no media type to name (input5 #5).
    const none = await ctx.api.post('/api/v1/features').set('Content-Type', ';;;').send('{"name":"x"}');
    expect(expectProblem(none, 415, 'unsupported-media-type').detail).toBe(
      "The body's Content-Type names no media type: send it as application/json.",
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('explains a wrong value of a nullable field by its own rules, not with "must be null"', async () => {
    const subscription = await createSubscription(ctx);
    const res = await ctx.api
      .patch(`/api/v1/subscriptions/${subscription.id}`)
      .send({ payment_method: 'card 4242', payment_rail: 'card' });
    const problem = expectProblem(res, 400, 'validation-error');
    expect(problem.errors).toEqual([
      {
        location: 'body',
        field: '/payment_method',
        message: 'must match pattern "^pm_[A-Za-z0-9_]{1,100}$"',
      },
    ]);
    expect(problem.detail).toBe('request/body/payment_method must match pattern "^pm_[A-Za-z0-9_]{1,100}$"');
  });

  it('names each unknown property in the detail, nested ones by their path', async () => {
    const res = await ctx.api
      .post('/api/v1/users')
      .send({ name: 'Ann', email: 'ann@example.com', nickname: 'A', address: { city: 'Paris' } });
    const problem = expectProblem(res, 400, 'validation-error');
    const message = 'is not a known property: unknown properties are refused';
    expect(problem.errors).toEqual([
      { location: 'body', field: '/nickname', message },
      { location: 'body', field: '/address', message },
    ]);
    expect(problem.detail).toBe(`request/body/nickname ${message}, request/body/address ${message}`);
    const plan = await ctx.api.post('/api/v1/plans').send({
      code: 'p',
      name: 'P',
      interval: 'month',
      price: { model: 'flat', amount: '1.00', currency: 'EUR' },
    });
    expect(expectProblem(plan, 400, 'validation-error').detail).toContain(
      `request/body/price/currency ${message}`,
    );
  });

  it('answers a missing body with 400, with a content type or without (no content is no body)', async () => {
    const empty = await ctx.api.post('/api/v1/users').set('Content-Type', 'application/json');
    expectProblem(empty, 400, 'validation-error');
    const none = expectProblem(await ctx.api.post('/api/v1/users'), 400, 'validation-error');
    expect(none.detail).toBe('The request needs a body, as application/json.');
    expectProblem(await ctx.api.post('/api/v1/users').set('Content-Length', '0'), 400, 'validation-error');
  });

  it('answers an integer query parameter not in decimal digits with 400, before anything reads it', async () => {
    for (const [path, name] of [
      ['/api/v1/users?limit=', 'limit'],
      ['/api/v1/invoices?number=', 'number'],
      ['/api/v1/analytics?top=', 'top'],
    ]) {
      for (const value of [
        'Infinity',
        '-Infinity',
        '1e1000',
        '0x2',
        '0b10',
        '2e0',
        '2.0',
        '%2B2',
        '%202',
        '2%20',
        '',
      ]) {
        const res = await ctx.api.get(path + value);
        const problem = expectProblem(res, 400, 'validation-error');
        expect([path, value, problem.errors]).toEqual([
          path,
          value,
          [{ location: 'query', field: name, message: 'must be integer' }],
        ]);
      }
    }
    expect((await ctx.api.get('/api/v1/users?limit=00000000000000002')).status).toBe(200);
    const huge = expectProblem(
      await ctx.api.get('/api/v1/users?limit=99999999999999999999'),
      400,
      'validation-error',
    );
    expect(huge.detail).toBe('request/query/limit must be <= 100');
    expectProblem(await ctx.api.get('/api/v1/users?limit=-2'), 400, 'validation-error');
  });

  it('logged no unexpected error so far', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});

/** A request over a real socket with exactly these headers (a GET with a body too). */
async function raw(
  method: string,
  path: string,
  key: string,
  body?: string | Buffer,
  type?: string,
  extra: Record<string, string> = {},
) {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}`, ...extra };
  if (type !== undefined) headers['Content-Type'] = type;
  if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
  const url = new URL(path, await ctx.baseUrl());
  return new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () =>
        resolve({ status: res.statusCode!, type: String(res.headers['content-type']).split(';')[0]!, text }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a body in no media type the operation declares', () => {
  it('is refused with 415 where the body is optional, not ignored: rotate-secret keeps nothing of it', async () => {
    const endpoint = (
      await ctx.api
        .post('/api/v1/webhook-endpoints')
        .send({ url: 'https://hooks.example.com/media', enabled_events: ['user.created'] })
    ).body as Schemas['WebhookEndpointWithSecret'];
    const path = `/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`;
    const before = await fingerprint(ctx.db);
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded']) {
      const res = await raw('POST', path, ctx.tenant.key, '{"grace_period_seconds":0}', type);
      expect([type, res.status, res.type]).toEqual([type, 415, 'application/problem+json']);
      expect(JSON.parse(res.text)).toMatchObject({ type: '/problems/unsupported-media-type' });
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // The same body as JSON is read: no grace period.
    const json = await raw('POST', path, ctx.tenant.key, '{"grace_period_seconds":0}', 'application/json');
    expect(json.status, json.text).toBe(200);
    expect(JSON.parse(json.text)).toMatchObject({ previous_secret_expires_at: null });
  });

  it('is refused with 415 by POST /subscriptions/{id}/invoices instead of billing the current period', async () => {
    const subscription = await createSubscription(ctx, { start_date: '2026-01-01' });
    const path = `/api/v1/subscriptions/${subscription.id}/invoices`;
    const before = await fingerprint(ctx.db);
    const res = await raw('POST', path, ctx.tenant.key, '{"date":"2026-03-15"}');
    expect([res.status, res.type]).toEqual([415, 'application/problem+json']);
    expect(JSON.parse(res.text)).toMatchObject({ detail: expect.stringContaining('no Content-Type') });
    expect(await fingerprint(ctx.db)).toEqual(before);
    const json = await raw('POST', path, ctx.tenant.key, '{"date":"2026-03-15"}', 'application/json');
    expect(json.status, json.text).toBe(201);
    expect(JSON.parse(json.text)).toMatchObject({ period_start: '2026-03-01' });
  });

  it('is refused with 415 on every operation, before anything is written', async () => {
    const id = '0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f70';
    const before = await fingerprint(ctx.db);
    for (const op of operations) {
      const path = op.template.replace(/\{[^}]+\}/g, id);
      const key = op.scopes?.includes('platform') ? PLATFORM_KEY : ctx.tenant.key;
      for (const type of [undefined, 'text/plain']) {
        const res = await raw(op.method, path, key, '{"x":1}', type);
        expect([op.operationId, type, res.status, res.type]).toEqual([
          op.operationId,
          type,
          415,
          'application/problem+json',
        ]);
      }
      if (op.mediaTypes.length === 0) {
        // An operation without a body refuses JSON too: nothing of it would be read...
        const res = await raw(op.method, path, key, '{"x":1}', 'application/json');
        expect([op.operationId, res.status]).toEqual([op.operationId, 415]);
        // ...but `{}`, which many clients send with every POST and PUT, says nothing: it is
        // taken as no body (here 404: the id exists nowhere). Not by a read: a GET has no body.
        if (op.template.includes('{') && op.method !== 'GET') {
          const empty = await raw(op.method, path, key, ' {} ', 'application/json');
          expect([op.operationId, empty.status]).toEqual([op.operationId, 404]);
        }
      }
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('leaves an empty body alone where the body is optional: no Content-Length, or 0', async () => {
    const endpoint = (
      await ctx.api
        .post('/api/v1/webhook-endpoints')
        .send({ url: 'https://hooks.example.com/empty', enabled_events: ['user.created'] })
    ).body as Schemas['WebhookEndpointWithSecret'];
    const path = `/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`;
    for (const [body, type] of [
      [undefined, undefined],
      ['', undefined],
      ['', 'application/json'],
    ] as const) {
      const res = await raw('POST', path, ctx.tenant.key, body, type);
      expect([body, type, res.status]).toEqual([body, type, 200]);
      // The default grace period: a day.
      const expires = (JSON.parse(res.text) as Schemas['WebhookEndpoint']).previous_secret_expires_at;
      expect(Date.parse(expires!) - Date.now()).toBeGreaterThan(86_000_000);
    }
    const finalize = await raw('POST', `/api/v1/invoices/${endpoint.id}/finalize`, ctx.tenant.key, '');
    expect(finalize.status).toBe(404);
  });
});

describe('more bad requests', () => {
  it('answers a body over 100kb with 413', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/features')
      .send({ name: 'big', description: 'x'.repeat(150_000) });
    expectProblem(res, 413, 'payload-too-large');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers an unknown route with 404 not-found', async () => {
    expectProblem(await ctx.api.get('/api/v1/nowhere'), 404, 'not-found');
    expectProblem(await ctx.api.get('/nope'), 404, 'not-found');
  });

  it('answers a known route with the wrong method with 405 and Allow', async () => {
    const res = await ctx.api.put('/api/v1/users');
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.allow).toBe('GET, HEAD, POST');
  });

  it('answers an unknown route or method before reading the body (input5 #4)', async () => {
    const bad = (req: supertest.Test) => req.set('Content-Type', 'application/json').send('{bad');
    expectProblem(await bad(ctx.api.post('/api/v1/nope')), 404, 'not-found');
    expectProblem(await bad(ctx.anonymous.post('/api/v1/nope')), 404, 'not-found');
    expectProblem(await ctx.api.post('/api/v1/nope').send({ text: 'x'.repeat(300_000) }), 404, 'not-found');
    const wrong = await bad(ctx.api.delete('/api/v1/users'));
    expectProblem(wrong, 405, 'method-not-allowed');
    expect(wrong.headers.allow).toBe('GET, HEAD, POST');
    expect((await ctx.api.delete('/api/v1/users').set('Content-Type', 'text/plain').send('x')).status).toBe(
      405,
    );
  });

  it('answers a path with a trailing slash as a path the contract does not have (retest7 #4)', async () => {
    const user = await createUser(ctx, { name: 'Slash' });
    for (const path of ['/api/v1/users/', `/api/v1/users/${user.id}/`, '/api/v1/metrics/mrr/']) {
      expectProblem(await ctx.api.get(path), 404, 'not-found');
      // Before the key and the body, as any unknown route.
      expectProblem(await ctx.anonymous.get(path), 404, 'not-found');
    }
    const patch = await ctx.api
      .patch(`/api/v1/users/${user.id}/`)
      .set('Content-Type', 'application/json')
      .send('{bad');
    expectProblem(patch, 404, 'not-found');
    expect((await ctx.api.get(`/api/v1/users/${user.id}`)).status).toBe(200);
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
