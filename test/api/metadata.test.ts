// A tenant's own ids and metadata on users and subscriptions: kept and answered as given, merged
// by PATCH (null removes a key), external_id unique per tenant and searchable.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

beforeAll(async () => {
  t = await ctx.newTenant();
});

const tag = () => Math.random().toString(36).slice(2, 10);
const keys = (n: number, prefix = 'k') =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, 'v']));

describe('users', () => {
  it('keep an external_id, unique in the tenant, and find a user by it', async () => {
    const id = `cus_${tag()}`;
    const made = await createUser(t, { external_id: id, metadata: { crm: 'A-1', segment: 'smb' } });
    expect(made).toMatchObject({ external_id: id, metadata: { crm: 'A-1', segment: 'smb' } });
    const plain = await createUser(t);
    expect(plain).toMatchObject({ external_id: null, metadata: {} });
    expect(await createUser(t, { metadata: {} })).toMatchObject({ metadata: {} });

    const found = await t.api.get('/api/v1/users').query({ external_id: id });
    expect((found.body as Schemas['UserList']).data.map((u) => u.id)).toEqual([made.id]);
    const none = await t.api.get('/api/v1/users').query({ external_id: `${id}x` });
    expect((none.body as Schemas['UserList']).data).toEqual([]);

    const before = await fingerprint(ctx.db);
    const twice = await t.api
      .post('/api/v1/users')
      .send({ name: 'Dup', email: `${tag()}@example.com`, external_id: id });
    expectProblem(twice, 409, 'conflict');
    expect((twice.body as Schemas['Problem']).errors).toMatchObject([{ field: '/external_id' }]);
    const moved = await t.api.patch(`/api/v1/users/${plain.id}`).send({ external_id: id });
    expectProblem(moved, 409, 'conflict');
    expect(await fingerprint(ctx.db)).toEqual(before);

    // Another tenant's ids are its own.
    const other = await ctx.newTenant();
    const elsewhere = await createUser(other, { external_id: id });
    expect(elsewhere.external_id).toBe(id);
    const theirs = await other.api.get('/api/v1/users').query({ external_id: id });
    expect((theirs.body as Schemas['UserList']).data.map((u) => u.id)).toEqual([elsewhere.id]);

    // null removes it, and frees it.
    const cleared = await t.api.patch(`/api/v1/users/${made.id}`).send({ external_id: null });
    expect(cleared.body).toMatchObject({ external_id: null });
    expect((await t.api.patch(`/api/v1/users/${plain.id}`).send({ external_id: id })).status).toBe(200);
  });

  it('merge metadata on PATCH: keys given are set, null removes one, {} changes nothing', async () => {
    const user = await createUser(t, { metadata: { a: '1', b: '2' } });
    const merged = await t.api.patch(`/api/v1/users/${user.id}`).send({ metadata: { b: null, c: '3' } });
    expect(merged.status, merged.text).toBe(200);
    const after = merged.body as Schemas['User'];
    expect(after.metadata).toEqual({ a: '1', c: '3' });
    expect(after.version).toBe(user.version + 1);

    const same = await t.api.patch(`/api/v1/users/${user.id}`).send({ metadata: { a: '1', gone: null } });
    expect((same.body as Schemas['User']).version).toBe(after.version); // nothing changed, nothing written

    const events = await t.api.get('/api/v1/events').query({ resource_id: user.id });
    const updated = (events.body as Schemas['EventList']).data.filter((e) => e.type === 'user.updated');
    expect(updated.map((e) => e.previous)).toEqual([{ metadata: { a: '1', b: '2' } }]);

    const emptied = await t.api.patch(`/api/v1/users/${user.id}`).send({ metadata: { a: null, c: null } });
    expect(emptied.body).toMatchObject({ metadata: {} });
  });

  it('refuse metadata past its limits, writing nothing', async () => {
    const user = await createUser(t, { metadata: keys(50) });
    expect(Object.keys(user.metadata)).toHaveLength(50);
    const before = await fingerprint(ctx.db);
    const tooMany = await t.api.patch(`/api/v1/users/${user.id}`).send({ metadata: { extra: 'x' } });
    expectProblem(tooMany, 422, 'unprocessable');
    expect((tooMany.body as Schemas['Problem']).errors).toMatchObject([{ field: '/metadata' }]);
    for (const metadata of [
      keys(51),
      { ['k'.repeat(41)]: 'v' },
      { k: 'v'.repeat(501) },
      { k: 1 },
      { '': 'v' },
      [],
    ]) {
      const res = await t.api
        .post('/api/v1/users')
        .send({ name: 'M', email: `${tag()}@example.com`, metadata });
      expect([JSON.stringify(metadata).slice(0, 30), res.status]).toEqual([
        JSON.stringify(metadata).slice(0, 30),
        400,
      ]);
    }
    for (const external_id of ['', 'has space', 'x'.repeat(256), 'naïve']) {
      const res = await t.api
        .post('/api/v1/users')
        .send({ name: 'M', email: `${tag()}@example.com`, external_id });
      expect([external_id, res.status]).toEqual([external_id, 400]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    // Swapping keys within the limit is fine: removals count first.
    const swapped = await t.api
      .patch(`/api/v1/users/${user.id}`)
      .send({ metadata: { k0: null, extra: 'x' } });
    expect(swapped.status, swapped.text).toBe(200);
  });
});

describe('subscriptions', () => {
  it('keep metadata, merged by PATCH, also once canceled', async () => {
    const user = await createUser(t);
    const made = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '10.00',
      start_date: '2026-01-01',
      metadata: { order: 'SO-1' },
    });
    expect(made.status, made.text).toBe(201);
    const sub = made.body as Schemas['Subscription'];
    expect(sub.metadata).toEqual({ order: 'SO-1' });
    const patched = await t.api
      .patch(`/api/v1/subscriptions/${sub.id}`)
      .send({ metadata: { seats_source: 'sso' } });
    expect(patched.body).toMatchObject({
      metadata: { order: 'SO-1', seats_source: 'sso' },
      plan_cost: '10.00',
    });
    await t.api.post(`/api/v1/subscriptions/${sub.id}/cancel`).send({ at: 'now' }).expect(200);
    const later = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ metadata: { order: null } });
    expect(later.status, later.text).toBe(200);
    expect(later.body).toMatchObject({ status: 'canceled', metadata: { seats_source: 'sso' } });
    const listed = await t.api.get('/api/v1/subscriptions').query({ user_id: user.id });
    expect((listed.body as Schemas['SubscriptionList']).data[0]!.metadata).toEqual({ seats_source: 'sso' });
    const plain = await t.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', plan_cost: '1.00', start_date: '2026-01-01' });
    expect(plain.body).toMatchObject({ metadata: {} });
    const empty = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_cost: '1.00',
      start_date: '2026-01-01',
      metadata: {},
    });
    expect(empty.status, empty.text).toBe(201);
    const tooMany = await t.api.patch(`/api/v1/subscriptions/${sub.id}`).send({ metadata: keys(50, 'x') });
    expectProblem(tooMany, 422, 'unprocessable');
  });

  it('store a "__proto__" key on PATCH as on POST, for users and subscriptions', async () => {
    // Raw JSON: a "__proto__" key written in an object literal would set its prototype instead.
    const json = (method: 'post' | 'patch', path: string, body: string) =>
      t.api[method](path).set('Content-Type', 'application/json').send(body);
    const metadataOf = (text: string) => JSON.stringify((JSON.parse(text) as { metadata: unknown }).metadata);
    const user = await json('post', '/api/v1/users', `{"name":"P","email":"proto-${tag()}@example.com"}`);
    expect(user.status, user.text).toBe(201);
    const sub = await json(
      'post',
      '/api/v1/subscriptions',
      JSON.stringify({
        user_id: (user.body as Schemas['User']).id,
        status: 'active',
        plan_cost: '1.00',
      }).replace('}', ',"start_date":"2026-01-01","metadata":{"a":"1"}}'),
    );
    expect(sub.status, sub.text).toBe(201);
    for (const path of [
      `/api/v1/users/${(user.body as Schemas['User']).id}`,
      `/api/v1/subscriptions/${(sub.body as Schemas['Subscription']).id}`,
    ]) {
      const added = await json('patch', path, '{"metadata":{"__proto__":"x"}}');
      expect(added.status, added.text).toBe(200);
      const version = (added.body as { version: number }).version;
      expect(metadataOf(added.text), path).toContain('"__proto__":"x"');
      const read = await t.api.get(path);
      expect(metadataOf(read.text)).toContain('"__proto__":"x"');
      // Sent again: no change. Changed, then removed: a change each.
      const same = await json('patch', path, '{"metadata":{"__proto__":"x"}}');
      expect((same.body as { version: number }).version).toBe(version);
      const changed = await json('patch', path, '{"metadata":{"__proto__":"y"}}');
      expect(metadataOf(changed.text)).toContain('"__proto__":"y"');
      const removed = await json('patch', path, '{"metadata":{"__proto__":null}}');
      expect(metadataOf(removed.text)).not.toContain('__proto__');
      expect((removed.body as { version: number }).version).toBe(version + 2);
    }
  });

  it("take usage events by the customer's external_id", async () => {
    const code = `calls-${tag()}`;
    await t.api
      .post('/api/v1/billable-metrics')
      .send({ code, name: 'Calls', aggregation: 'count' })
      .expect(201);
    const plan = await t.api.post('/api/v1/plans').send({
      code: `metered-${tag()}`,
      name: 'Metered',
      interval: 'month',
      price: { model: 'flat', amount: '0.00' },
      usage_charges: [{ metric: code, model: 'per_unit', amount: '1.00' }],
    });
    expect(plan.status, plan.text).toBe(201);
    const external = `cus_${tag()}`;
    const user = await createUser(t, { external_id: external });
    const today = new Date().toISOString().slice(0, 10);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: (plan.body as Schemas['Plan']).id,
      start_date: today,
    });
    expect(sub.status, sub.text).toBe(201);
    const subscriptionId = (sub.body as Schemas['Subscription']).id;

    const one = await t.api
      .post('/api/v1/usage-events')
      .send({ event_id: `e1-${external}`, external_customer_id: external, metric: code });
    expect(one.status, one.text).toBe(201);
    expect(one.body).toMatchObject({ user_id: user.id, subscription_id: subscriptionId });
    // The same event again, by user_id this time: a duplicate.
    const again = await t.api
      .post('/api/v1/usage-events')
      .send({ event_id: `e1-${external}`, user_id: user.id, metric: code });
    expect(again.status, again.text).toBe(200);

    const before = await fingerprint(ctx.db);
    const batch = await t.api.post('/api/v1/usage-events/batch').send({
      events: [
        { event_id: `e2-${external}`, external_customer_id: external, metric: code },
        { event_id: `e3-${external}`, external_customer_id: `${external}-nobody`, metric: code },
        { event_id: `e4-${external}`, external_customer_id: external, user_id: user.id, metric: code },
        { event_id: `e5-${external}`, metric: code },
      ],
    });
    expectProblem(batch, 422, 'unprocessable');
    expect((batch.body as Schemas['Problem']).errors?.map((e) => e.field)).toEqual([
      '/events/1/external_customer_id',
      '/events/2/external_customer_id',
      '/events/3/user_id',
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
    const ok = await t.api.post('/api/v1/usage-events/batch').send({
      events: [
        { event_id: `e2-${external}`, external_customer_id: external, metric: code },
        { event_id: `e1-${external}`, external_customer_id: `${external}-nobody`, metric: code }, // recorded already
      ],
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ created: 1, duplicates: 1 });
    const usage = await t.api.get(`/api/v1/subscriptions/${subscriptionId}/usage`);
    expect((usage.body as Schemas['SubscriptionUsage']).charges[0]).toMatchObject({
      quantity: '2',
      amount: '2.00',
    });
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
