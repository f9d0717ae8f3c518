// Query values as people type them: `curl '...?after=2026-12-01T00:00:00Z'` sends the colons as
// they are (RFC 3986 allows `:`, `/` and `@` in a query), and so does a browser's address bar.
// Filters whose values hold such characters (instants, event_ids, names) accept them unencoded;
// the validator refuses a parameter's reserved characters unless the contract says allowReserved.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';

const ctx = useTestApp();

describe('filters sent unencoded', () => {
  it('takes instants with their colons: the event feed and a subscription’s events', async () => {
    const t = await ctx.newTenant();
    const before = new Date(Date.now() - 60_000).toISOString();
    const subscription = await createSubscription(t, { plan_cost: '10.00' });
    const after = new Date(Date.now() + 60_000).toISOString();
    expect(before).toMatch(/:/);

    const feed = await t.api.get(`/api/v1/events?after=${before}&before=${after}&limit=100`);
    expect(feed.status, feed.text).toBe(200);
    const ids = (feed.body as Schemas['EventList']).data.map((e) => e.resource_id);
    expect(ids).toContain(subscription.id);
    // The filter applies: nothing occurred after `after`.
    const none = await t.api.get(`/api/v1/events?after=${after}`);
    expect(none.status, none.text).toBe(200);
    expect((none.body as Schemas['EventList']).data).toEqual([]);

    const own = await t.api.get(
      `/api/v1/subscriptions/${subscription.id}/events?after=${before}&before=${after}`,
    );
    expect(own.status, own.text).toBe(200);
    expect((own.body as Schemas['EventList']).data.length).toBeGreaterThan(0);
  });

  it('takes usage event filters: a time range and an event_id with `:`, `/` and `@`', async () => {
    const t = await ctx.newTenant();
    const user = await createUser(t);
    const metric = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code: 'calls', name: 'Calls', aggregation: 'count' });
    expect(metric.status, metric.text).toBe(201);
    const eventId = 'req:42/eu@edge';
    const timestamp = new Date(Date.now() - 30_000).toISOString();
    const sent = await t.api
      .post('/api/v1/usage-events')
      .send({ event_id: eventId, user_id: user.id, metric: 'calls', timestamp });
    expect(sent.status, sent.text).toBe(201);
    const from = new Date(Date.now() - 60_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();

    const found = await t.api.get(`/api/v1/usage-events?event_id=${eventId}&from=${from}&to=${to}`);
    expect(found.status, found.text).toBe(200);
    expect((found.body as Schemas['UsageEventList']).data.map((e) => e.event_id)).toEqual([eventId]);
    // The range applies: the event is before `from` here.
    const later = await t.api.get(`/api/v1/usage-events?from=${to}`);
    expect(later.status, later.text).toBe(200);
    expect((later.body as Schemas['UsageEventList']).data).toEqual([]);
  });

  it('refuses an email whose `+` was sent as is (a space), and finds it sent as %2B', async () => {
    const t = await ctx.newTenant();
    const user = await createUser(t, { email: 'ann+tag@example.com' });
    const raw = await t.api.get('/api/v1/users?email=ann+tag@example.com');
    expect(raw.status, raw.text).toBe(400);
    expect(raw.body).toMatchObject({ errors: [{ location: 'query', field: 'email' }] });
    const encoded = await t.api.get('/api/v1/users?email=ann%2Btag@example.com');
    expect(encoded.status, encoded.text).toBe(200);
    expect((encoded.body as Schemas['UserList']).data.map((u) => u.id)).toEqual([user.id]);
  });

  it('takes a feature name with `:` and `/`', async () => {
    const t = await ctx.newTenant();
    const feature = await createFeature(t, { name: 'API:v2/exports' });
    const res = await t.api.get('/api/v1/features?name=API:v2/exports');
    expect(res.status, res.text).toBe(200);
    expect((res.body as Schemas['FeatureList']).data.map((f) => f.id)).toEqual([feature.id]);
  });
});

describe('a reserved character a filter cannot take', () => {
  it('is refused with what to send instead: a list as one parameter per value', async () => {
    const t = await ctx.newTenant();
    await createSubscription(t, { plan_cost: '10.00' });
    const joined = await t.api.get('/api/v1/subscriptions?status=active,canceled');
    expect(joined.status, joined.text).toBe(400);
    expect(joined.body).toMatchObject({
      type: '/problems/validation-error',
      errors: [{ location: 'query', field: 'status' }],
    });
    expect((joined.body as { detail: string }).detail).toContain('status=a&status=b');
    const repeated = await t.api.get('/api/v1/subscriptions?status=active&status=canceled');
    expect(repeated.status, repeated.text).toBe(200);
    expect((repeated.body as Schemas['SubscriptionList']).data).toHaveLength(1);
  });

  it('says so when a parameter that takes one value is given twice', async () => {
    const t = await ctx.newTenant();
    const twice = await t.api.get('/api/v1/users?limit=1&limit=2');
    expect(twice.status, twice.text).toBe(400);
    expect(twice.body).toMatchObject({
      type: '/problems/validation-error',
      detail: 'request/query/limit is given 2 times; it takes one value',
      errors: [{ location: 'query', field: 'limit', message: 'is given 2 times; it takes one value' }],
    });
    // Given once with the wrong type, it is the type that is wrong.
    const once = await t.api.get('/api/v1/users?limit=many');
    expect(once.status, once.text).toBe(400);
    expect((once.body as { detail: string }).detail).toBe('request/query/limit must be integer');
  });
});

describe("what encodeURIComponent leaves as it is: ! ' ( ) *", () => {
  it('is taken in any parameter, as the character it is (partner3 #2)', async () => {
    const t = await ctx.newTenant();
    const external_id = "cus_(1)!'*";
    const user = await t.api
      .post('/api/v1/users')
      .send({ name: 'Odd', email: 'odd@example.com', external_id });
    expect(user.status, user.text).toBe(201);
    for (const query of [
      `external_id=${encodeURIComponent(external_id)}`,
      new URLSearchParams({ external_id }).toString(),
    ]) {
      const res = await t.api.get(`/api/v1/users?${query}`);
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      expect((res.body as Schemas['UserList']).data.map((u) => u.external_id)).toEqual([external_id]);
    }
  });
});

describe('a parameter name with brackets', () => {
  it('is refused, never read as an object whose member is dropped', async () => {
    const t = await ctx.newTenant();
    await createUser(t);
    for (const query of [
      'email[toString]=nobody@example.com',
      'email[__proto__]=nobody@example.com',
      'external_id[valueOf]=nope',
      'limit[toString]=1',
      'foo[toString]=1',
      'email[a]=x',
      'status[]=canceled&status=active',
      'email%5BtoString%5D=nobody@example.com',
    ]) {
      const res = await t.api.get(`/api/v1/users?${query}`);
      expect(res.status, `${query}: ${res.text}`).toBe(400);
      expect(res.body, query).toMatchObject({
        type: '/problems/validation-error',
        errors: [{ location: 'query', field: expect.stringMatching(/\[/) }],
      });
    }
  });
});

describe('a raw `=` or `?` in a value', () => {
  it('is refused where the parameter takes no reserved character, taken where it does', async () => {
    const t = await ctx.newTenant();
    for (const value of ['a=b', 'a?b']) {
      const res = await t.api.get(`/api/v1/users?external_id=${value}`);
      expect(res.status, `${value}: ${res.text}`).toBe(400);
      expect(res.body).toMatchObject({ errors: [{ location: 'query', field: 'external_id' }] });
    }
    expect((await t.api.get('/api/v1/users?external_id=a%3Db')).status).toBe(200);
    // A feature's name takes them (allowReserved).
    await createFeature(t, { name: 'x=y?' });
    const named = await t.api.get('/api/v1/features?name=x=y?');
    expect(named.status, named.text).toBe(200);
    expect((named.body as Schemas['FeatureList']).data.map((f) => f.name)).toEqual(['x=y?']);
  });
});

describe('a malformed percent escape', () => {
  it('is refused naming the parameter, never matched as U+FFFD or as its text', async () => {
    const t = await ctx.newTenant();
    await createFeature(t, { name: '%zz' });
    await createFeature(t, { name: '\uFFFD' });
    // `%zz` is no escape, `%E0%A4%A` an incomplete UTF-8 sequence, `%FF` no UTF-8 at all.
    for (const raw of ['%zz', '%E0%A4%A', '%FF', '50%']) {
      const res = await t.api.get(`/api/v1/features?name=${raw}`);
      expect(res.status, `${raw}: ${res.text}`).toBe(400);
      expect(res.body).toMatchObject({
        type: '/problems/validation-error',
        errors: [{ location: 'query', field: 'name' }],
      });
    }
    // A malformed name of a parameter is named as sent.
    const key = await t.api.get('/api/v1/features?na%zzme=x');
    expect(key.status, key.text).toBe(400);
    expect(key.body).toMatchObject({ errors: [{ location: 'query', field: 'na%zzme' }] });
    // Well-formed escapes still decode: `%25zz` is the text `%zz`, `+` a space.
    const escaped = await t.api.get('/api/v1/features?name=%25zz');
    expect(escaped.status, escaped.text).toBe(200);
    expect((escaped.body as Schemas['FeatureList']).data.map((f) => f.name)).toEqual(['%zz']);
  });

  it('in the path is refused naming the path parameter', async () => {
    const t = await ctx.newTenant();
    for (const raw of ['%FF', '%E0%A4%A', '%zz']) {
      const res = await t.api.get(`/api/v1/wallets/${raw}`);
      expect(res.status, `${raw}: ${res.text}`).toBe(400);
      const body = res.body as Schemas['Problem'];
      expect(body).toMatchObject({
        type: '/problems/validation-error',
        errors: [
          {
            location: 'path',
            field: 'walletId',
            message: expect.stringContaining('malformed percent escape'),
          },
        ],
      });
      expect(body.detail).toBe(
        "The path parameter 'walletId' has a malformed percent escape (each % must start two hex digits of UTF-8).",
      );
    }
  });
});

describe('the contract', () => {
  it('lets every instant in a query be sent with its colons (allowReserved)', () => {
    type Parameter = { name: string; in: string; allowReserved?: boolean; schema?: { format?: string } };
    const spec = parse(readFileSync('generated/openapi.yaml', 'utf8')) as {
      paths: Record<string, Record<string, { parameters?: Array<Parameter | { $ref: string }> }>>;
      components: { parameters?: Record<string, Parameter> };
    };
    const resolve = (p: Parameter | { $ref: string }): Parameter =>
      '$ref' in p ? spec.components.parameters![p.$ref.split('/').at(-1)!]! : p;
    const instants = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.entries(operations).flatMap(([method, operation]) =>
        (operation.parameters ?? [])
          .map(resolve)
          .filter((p) => p.in === 'query' && p.schema?.format === 'date-time')
          .map((p) => ({
            at: `${method.toUpperCase()} ${path} ${p.name}`,
            allowReserved: p.allowReserved ?? false,
          })),
      ),
    );
    expect(instants.length).toBeGreaterThanOrEqual(6);
    expect(instants.filter((p) => !p.allowReserved)).toEqual([]);
  });
});
