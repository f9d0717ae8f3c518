import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { PLATFORM_KEY, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { holdLocks, pause, waitForLockWaiters } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

async function keyWithRole(
  role: Schemas['ApiKeyRole'],
  expires_at?: string,
): Promise<Schemas['ApiKeyWithSecret']> {
  const res = await ctx.api.post('/api/v1/api-keys').send({ name: `${role} key`, role, expires_at });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Schemas['ApiKeyWithSecret'];
}

describe('Authorization: Bearer', () => {
  it('answers 401 with WWW-Authenticate for a missing, malformed or unknown key, writing nothing', async () => {
    const before = await fingerprint(ctx.db);
    for (const header of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer sk_00000000_nope']) {
      const req = ctx.anonymous.post('/api/v1/users');
      if (header) void req.set('Authorization', header);
      const res = await req.send({ name: 'X', email: 'x@example.com' });
      expectProblem(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
    const forged = ctx.tenant.key.slice(0, -4) + 'AAAA';
    expectProblem(await ctx.withKey(forged).get('/api/v1/users'), 401, 'unauthorized');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('checks the key before the body: no key and a bad body is still 401', async () => {
    expectProblem(await ctx.anonymous.post('/api/v1/users').send({ nonsense: true }), 401, 'unauthorized');
  });

  it('never reads the body of a caller without a valid key and scope: 401 or 403, not 400, 413 or 415', async () => {
    const malformed = (api: typeof ctx.anonymous) =>
      api.post('/api/v1/users').set('Content-Type', 'application/json').send('{"name": ');
    const huge = (api: typeof ctx.anonymous) =>
      api.post('/api/v1/features').send({ name: 'x', description: 'x'.repeat(150_000) });
    const text = (api: typeof ctx.anonymous) =>
      api.post('/api/v1/users').set('Content-Type', 'text/plain').send('hello');
    const nobody = ctx.anonymous;
    const unknown = ctx.withKey('sk_00000000_' + 'A'.repeat(43));
    const viewer = ctx.withKey((await keyWithRole('viewer')).key);
    for (const send of [malformed, huge, text]) {
      expectProblem(await send(nobody), 401, 'unauthorized');
      expectProblem(await send(unknown), 401, 'unauthorized');
      expectProblem(await send(viewer), 403, 'forbidden');
    }
    // The other order: with a valid key and scope, the body's faults are reported.
    expectProblem(await malformed(ctx.api), 400, 'malformed-json');
    expectProblem(await huge(ctx.api), 413, 'payload-too-large');
    expectProblem(await text(ctx.api), 415, 'unsupported-media-type');
  });

  it('accepts one or more spaces between Bearer and the key (RFC 9110), in any case', async () => {
    for (const header of [
      `Bearer  ${ctx.tenant.key}`,
      `bearer ${ctx.tenant.key}`,
      `BEARER   ${ctx.tenant.key}`,
    ]) {
      const res = await ctx.anonymous.get('/api/v1/users').set('Authorization', header);
      expect(res.status, header).toBe(200);
    }
    expectProblem(
      await ctx.anonymous.get('/api/v1/users').set('Authorization', `Bearer\t${ctx.tenant.key}`),
      401,
      'unauthorized',
    );
  });

  it('answers 403 when the role lacks the scope, and lets the scope it grants through', async () => {
    const viewer = await keyWithRole('viewer');
    expect(viewer.scopes).toEqual(['read']);
    const before = await fingerprint(ctx.db);
    const denied = await ctx
      .withKey(viewer.key)
      .post('/api/v1/users')
      .send({ name: 'V', email: 'v@example.com' });
    const problem = expectProblem(denied, 403, 'forbidden');
    expect(problem.detail).toMatch(/write/);
    expectProblem(await ctx.withKey(viewer.key).get('/api/v1/api-keys'), 403, 'forbidden');
    expect(await fingerprint(ctx.db)).toEqual(before);
    expect((await ctx.withKey(viewer.key).get('/api/v1/users')).status).toBe(200);

    const editor = await keyWithRole('editor');
    const created = await ctx
      .withKey(editor.key)
      .post('/api/v1/users')
      .send({ name: 'E', email: 'e@example.com' });
    expect(created.status).toBe(201);
  });

  it('keeps the platform key to creating tenants, and tenant keys away from it', async () => {
    expectProblem(await ctx.withKey(PLATFORM_KEY).get('/api/v1/users'), 403, 'forbidden');
    expectProblem(await ctx.api.post('/api/v1/tenants').send({ name: 'Sneaky' }), 403, 'forbidden');
    const app = ctx.appWith({ platformAdminKey: undefined });
    const res = await app
      .post('/api/v1/tenants')
      .set('Authorization', `Bearer ${PLATFORM_KEY}`)
      .send({ name: 'X' });
    expectProblem(res, 401, 'unauthorized');
  });

  it('rejects an expired key with 401', async () => {
    const key = await keyWithRole('viewer', new Date(Date.now() + 60_000).toISOString());
    expect((await ctx.withKey(key.key).get('/api/v1/users')).status).toBe(200);
    await ctx.db
      .updateTable('api_keys')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', key.id)
      .execute();
    expectProblem(await ctx.withKey(key.key).get('/api/v1/users'), 401, 'unauthorized');
  });

  it('refuses a key that expired since it was last used before reading the body: 401, not 400', async () => {
    const key = await keyWithRole('editor', new Date(Date.now() + 1500).toISOString());
    expect((await ctx.withKey(key.key).get('/api/v1/users')).status).toBe(200);
    await pause(1600);
    const res = await ctx.withKey(key.key).post('/api/v1/users').send({ name: '' });
    expectProblem(res, 401, 'unauthorized');
  });

  it('never echoes the key or the Authorization header in a problem', async () => {
    const secret = 'sk_0123abcd_' + 'A'.repeat(43);
    const res = await ctx.withKey(secret).get('/api/v1/users');
    expectProblem(res, 401, 'unauthorized');
    expect(res.text).not.toContain(secret);
    const denied = await ctx.withKey(PLATFORM_KEY).get('/api/v1/users');
    expect(denied.text).not.toContain(PLATFORM_KEY);
  });
});

describe('POST /api/v1/tenants', () => {
  it('creates a tenant whose first key is an admin key that works at once', async () => {
    const res = await ctx.withKey(PLATFORM_KEY).post('/api/v1/tenants').send({ name: 'Acme' });
    expect(res.status).toBe(201);
    const { tenant, api_key } = res.body as Schemas['TenantWithKey'];
    expect(tenant.name).toBe('Acme');
    expect(api_key).toMatchObject({
      role: 'admin',
      scopes: ['read', 'write', 'analytics', 'keys', 'admin'],
      revoked_at: null,
    });
    expect(api_key.key.startsWith(`${api_key.prefix}_`)).toBe(true);
    const [stored] = await ctx.db
      .selectFrom('api_keys')
      .select(['tenant_id', 'key_hash'])
      .where('id', '=', api_key.id)
      .execute();
    expect(stored?.tenant_id).toBe(tenant.id);
    expect(stored?.key_hash.toString('utf8')).not.toContain(api_key.key.slice(12));
    expect((await ctx.withKey(api_key.key).get('/api/v1/users')).body).toEqual({
      data: [],
      next_cursor: null,
    });
  });

  it('rejects a blank name with 400 and writes nothing', async () => {
    const before = await fingerprint(ctx.db);
    expectProblem(
      await ctx.withKey(PLATFORM_KEY).post('/api/v1/tenants').send({ name: ' ' }),
      400,
      'validation-error',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('GET /api/v1/api-keys', () => {
  it("lists the tenant's keys without secrets or hashes", async () => {
    const viewer = await keyWithRole('viewer');
    const res = await ctx.api.get('/api/v1/api-keys');
    expect(res.status).toBe(200);
    const { data } = res.body as Schemas['ApiKeyCollection'];
    expect(data.map((k) => k.id)).toContain(viewer.id);
    expect(res.text).not.toContain(viewer.key);
    expect(res.text).not.toContain('key_hash');
  });
});

describe('POST /api/v1/api-keys', () => {
  it('rejects an expiry in the past with 422 and an unknown role with 400, writing nothing', async () => {
    const before = await fingerprint(ctx.db);
    const past = await ctx.api
      .post('/api/v1/api-keys')
      .send({ name: 'old', role: 'viewer', expires_at: '2020-01-01T00:00:00Z' });
    expectProblem(past, 422, 'unprocessable');
    expectProblem(
      await ctx.api.post('/api/v1/api-keys').send({ name: 'x', role: 'root' }),
      400,
      'validation-error',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('DELETE /api/v1/api-keys/{keyId}', () => {
  it('revokes a key: it stops working at once and stays listed', async () => {
    const key = await keyWithRole('editor');
    expect((await ctx.withKey(key.key).get('/api/v1/users')).status).toBe(200);
    expect((await ctx.api.delete(`/api/v1/api-keys/${key.id}`)).status).toBe(204);
    expectProblem(await ctx.withKey(key.key).get('/api/v1/users'), 401, 'unauthorized');
    const listed = (await ctx.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection'];
    expect(listed.data.find((k) => k.id === key.id)?.revoked_at).toEqual(expect.any(String));
    const revokedAt = listed.data.find((k) => k.id === key.id)?.revoked_at;
    expect((await ctx.api.delete(`/api/v1/api-keys/${key.id}`)).status).toBe(204);
    // Revoking it again changes nothing: the same revoked_at, and one event only.
    const again = (await ctx.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection'];
    expect(again.data.find((k) => k.id === key.id)?.revoked_at).toBe(revokedAt);
    const events = (await ctx.api.get('/api/v1/events').query({ resource_id: key.id }))
      .body as Schemas['EventList'];
    expect(events.data.map((e) => e.type)).toEqual(['api_key.created', 'api_key.revoked']);
    expect(events.data[1]?.previous).toEqual({ revoked_at: null });
    expectProblem(
      await ctx.api.delete('/api/v1/api-keys/01937f00-0000-7000-8000-000000000000'),
      404,
      'not-found',
    );
  });
});

describe('a tenant cannot lock itself out', () => {
  it('refuses to revoke the last active admin key with 409, and allows it once another exists', async () => {
    const t = await ctx.newTenant();
    const [first] = ((await t.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection']).data;
    const before = await fingerprint(ctx.db);
    const refused = expectProblem(await t.api.delete(`/api/v1/api-keys/${first!.id}`), 409, 'conflict');
    expect(refused.detail).toMatch(/last admin key that is unrevoked and never expires/);
    // Its id in upper case is the same key (it was revoked so: ids compared as text).
    expectProblem(await t.api.delete(`/api/v1/api-keys/${first!.id.toUpperCase()}`), 409, 'conflict');
    expect(await fingerprint(ctx.db)).toEqual(before);
    expect((await t.api.get('/api/v1/users')).status).toBe(200);

    // An expired or revoked admin key does not count as another one.
    const expiring = await t.api
      .post('/api/v1/api-keys')
      .send({ name: 'soon', role: 'admin', expires_at: new Date(Date.now() + 60_000).toISOString() });
    await ctx.db
      .updateTable('api_keys')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', (expiring.body as Schemas['ApiKey']).id)
      .execute();
    expectProblem(await t.api.delete(`/api/v1/api-keys/${first!.id}`), 409, 'conflict');

    const second = (await t.api.post('/api/v1/api-keys').send({ name: 'second admin', role: 'admin' }))
      .body as Schemas['ApiKeyWithSecret'];
    expect((await t.api.delete(`/api/v1/api-keys/${first!.id}`)).status).toBe(204);
    const alone = ctx.withKey(second.key);
    expectProblem(await alone.delete(`/api/v1/api-keys/${second.id}`), 409, 'conflict');
  });

  it('refuses to revoke the last admin key that never expires while an expiring admin key works', async () => {
    const t = await ctx.newTenant();
    const [first] = ((await t.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection']).data;
    // Valid for a year, and working now: still, once it lapsed nobody could manage keys.
    const expiring = (
      await t.api.post('/api/v1/api-keys').send({
        name: 'temp admin',
        role: 'admin',
        expires_at: new Date(Date.now() + 365 * 86_400_000).toISOString(),
      })
    ).body as Schemas['ApiKeyWithSecret'];
    expect((await ctx.withKey(expiring.key).get('/api/v1/api-keys')).status).toBe(200);
    const before = await fingerprint(ctx.db);
    const refused = expectProblem(
      await ctx.withKey(expiring.key).delete(`/api/v1/api-keys/${first!.id}`),
      409,
      'conflict',
    );
    expect(refused.detail).toMatch(/last admin key that is unrevoked and never expires/);
    expect(await fingerprint(ctx.db)).toEqual(before);
    // The expiring admin key itself may go: the one that never expires stays.
    expect((await t.api.delete(`/api/v1/api-keys/${expiring.id}`)).status).toBe(204);
    expect((await t.api.get('/api/v1/api-keys')).status).toBe(200);
  });

  it('lets exactly one of two admins revoking each other at the same moment succeed', async () => {
    const t = await ctx.newTenant();
    const [first] = ((await t.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection']).data;
    const second = (await t.api.post('/api/v1/api-keys').send({ name: 'second admin', role: 'admin' }))
      .body as Schemas['ApiKeyWithSecret'];
    // Both requests authenticate, then queue behind this lock on the tenant's keys.
    const held = await holdLocks(ctx.db, sql`select 1 from api_keys where tenant_id = ${t.id} for update`);
    const requests = Promise.all([
      t.api.delete(`/api/v1/api-keys/${second.id}`).then((r) => r),
      ctx
        .withKey(second.key)
        .delete(`/api/v1/api-keys/${first!.id}`)
        .then((r) => r),
    ]);
    await waitForLockWaiters(ctx.db, 2);
    await held.release();
    const results = await requests;
    expect(results.map((r) => r.status).sort()).toEqual([204, 409]);
    const active = await ctx.db
      .selectFrom('api_keys')
      .select('id')
      .where('tenant_id', '=', t.id)
      .where('role', '=', 'admin')
      .where('revoked_at', 'is', null)
      .execute();
    expect(active).toHaveLength(1);
  });
});

describe('abuse limits and headers', () => {
  it('answers 429 with Retry-After and RateLimit headers once a key is over its limit', async () => {
    // Counts are per clock minute and shared by every app on the database: a key of its own, and
    // a start well inside one minute, so that neither another test nor a new window moves them.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await pause(60_500 - intoMinute);
    const app = ctx.appWith({ rateLimitPerMinute: 2 });
    const { key } = await keyWithRole('viewer');
    const call = () => app.get('/api/v1/users').set('Authorization', `Bearer ${key}`);
    const first = await call();
    expect(first.status).toBe(200);
    // draft-ietf-httpapi-ratelimit-headers-08: the policy names a partition key that stands for the
    // API key without revealing it.
    const policy = /^"per-key"; q=2; w=60; pk=:([A-Za-z0-9+/=]{16}):$/;
    expect(first.headers['ratelimit-policy']).toMatch(policy);
    expect(first.headers.ratelimit).toMatch(/^"per-key"; r=1; t=([1-9]|[1-5][0-9]|60)$/);
    const second = await call();
    expect(second.status).toBe(200);
    expect(second.headers.ratelimit).toMatch(/^"per-key"; r=0; t=\d+$/);
    expect(second.headers['ratelimit-policy']).toBe(first.headers['ratelimit-policy']);
    const limited = await call();
    expectProblem(limited, 429, 'too-many-requests');
    expect(limited.headers.ratelimit).toMatch(/^"per-key"; r=0; t=\d+$/);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect((limited.body as { detail: string }).detail).toContain(`retry after ${retryAfter} seconds`);
    // Another key has its own budget, and its own partition key.
    const other = await ctx.newTenant();
    const otherFirst = await app.get('/api/v1/users').set('Authorization', `Bearer ${other.key}`);
    expect(otherFirst.status).toBe(200);
    expect(otherFirst.headers.ratelimit).toMatch(/^"per-key"; r=1; /);
    expect(otherFirst.headers['ratelimit-policy']).toMatch(policy);
    expect(otherFirst.headers['ratelimit-policy']).not.toBe(first.headers['ratelimit-policy']);
  }, 90_000);

  it('counts a key across processes: two app instances share one budget', async () => {
    // Counts are per clock minute: start the test well inside one.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 55_000) await pause(60_500 - intoMinute);
    const one = ctx.appWith({ rateLimitPerMinute: 4, rateLimitSyncMs: 20 });
    const two = ctx.appWith({ rateLimitPerMinute: 4, rateLimitSyncMs: 20 });
    const { id, key } = await keyWithRole('viewer');
    const call = (app: typeof one) => app.get('/api/v1/users').set('Authorization', `Bearer ${key}`);
    for (const app of [one, two, one, two]) expect((await call(app)).status).toBe(200);
    // Both have flushed their hits; then a few more sync rounds, in which each reads the total back.
    for (let i = 0; ; i++) {
      const flushed = await sql<{ hits: number }>`
        select coalesce(sum(hits), 0)::int as hits from rate_limit_hits where key = ${id}`.execute(ctx.db);
      if (flushed.rows[0]!.hits >= 4) break;
      expect(i, 'the two instances never flushed their hits').toBeLessThan(600);
      await pause(20);
    }
    await pause(200);
    expectProblem(await call(one), 429, 'too-many-requests');
    expectProblem(await call(two), 429, 'too-many-requests');
    // Each instance keeps its own row of the key's hits; their sum is the key's count.
    const stored = await sql<{ instances: number; hits: number }>`
      select count(*)::int as instances, sum(hits)::int as hits from rate_limit_hits where key = ${id}`.execute(
      ctx.db,
    );
    expect(stored.rows[0]?.instances).toBe(2);
    expect(stored.rows[0]?.hits).toBeGreaterThanOrEqual(4);
  });

  it('sends security headers and, by default, no CORS headers', async () => {
    const res = await ctx.api.get('/api/v1/users').set('Origin', 'https://evil.example');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows configured CORS origins only', async () => {
    const app = ctx.appWith({ corsOrigins: ['https://app.example'] });
    const ok = await app
      .options('/api/v1/users')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'GET');
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await app.get('/healthz').set('Origin', 'https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
