import { createHash } from 'node:crypto';
// Tenant B's key never reaches tenant A's rows, through any operation; and the database enforces
// it even for a query that forgets the tenant.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { APP_ROLE, createDb, type Db, withTenant } from '../../src/database/connection.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';
import { fingerprint } from '../helpers/db-state.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let b: TestTenant;
let user: Schemas['User'];
let feature: Schemas['Feature'];
let subscription: Schemas['Subscription'];
let keyId: string;

/** Tenant A's rows as the owner sees them: must not change whatever B does. */
async function tenantARows() {
  const tenantId = ctx.tenant.id;
  return Promise.all(
    (['users', 'features', 'subscriptions', 'subscription_features', 'api_keys'] as const).map((table) =>
      sql<{
        row: string;
      }>`select t::text as row from ${sql.table(table)} t where tenant_id = ${tenantId} order by 1`
        .execute(ctx.db)
        .then((r) => r.rows.map((x) => x.row)),
    ),
  );
}

beforeAll(async () => {
  user = await createUser(ctx, { email: 'shared@example.com' });
  feature = await createFeature(ctx, { name: 'shared-feature' });
  subscription = await createSubscription(ctx, { user_id: user.id });
  await ctx.api.put(`/api/v1/subscriptions/${subscription.id}/features/${feature.id}`).expect(201);
  keyId = ((await ctx.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection']).data[0]!.id;
  b = await ctx.newTenant('Tenant B');
});

describe("tenant B and tenant A's rows", () => {
  it('cannot read, list, update, link or delete any of them: 404 or empty, exactly as if absent', async () => {
    const before = await tenantARows();
    const paths = [
      `/api/v1/users/${user.id}`,
      `/api/v1/features/${feature.id}`,
      `/api/v1/subscriptions/${subscription.id}`,
    ];
    for (const path of paths) {
      expectProblem(await b.api.get(path), 404, 'not-found');
      expectProblem(await b.api.delete(path), 404, 'not-found');
    }
    expectProblem(await b.api.patch(paths[0]!).send({ name: 'Hijacked' }), 404, 'not-found');
    expectProblem(await b.api.patch(paths[1]!).send({ name: 'hijacked' }), 404, 'not-found');
    expectProblem(await b.api.patch(paths[2]!).send({ status: 'canceled' }), 404, 'not-found');

    expect((await b.api.get('/api/v1/users')).body).toEqual({ data: [], next_cursor: null });
    expect((await b.api.get('/api/v1/users?email=shared@example.com')).body).toEqual({
      data: [],
      next_cursor: null,
    });
    expect((await b.api.get('/api/v1/features')).body).toEqual({ data: [], next_cursor: null });
    expect((await b.api.get(`/api/v1/subscriptions?user_id=${user.id}`)).body).toEqual({
      data: [],
      next_cursor: null,
    });

    const links = `/api/v1/subscriptions/${subscription.id}/features`;
    expectProblem(await b.api.get(links), 404, 'not-found');
    expectProblem(await b.api.put(`${links}/${feature.id}`), 404, 'not-found');
    expectProblem(await b.api.delete(`${links}/${feature.id}`), 404, 'not-found');

    const own = await createSubscription(b, { user_id: (await createUser(b)).id });
    expectProblem(
      await b.api.put(`/api/v1/subscriptions/${own.id}/features/${feature.id}`),
      404,
      'not-found',
    );
    const foreignUser = await b.api
      .post('/api/v1/subscriptions')
      .send({ user_id: user.id, status: 'active', plan_cost: '1.00', start_date: '2026-01-01' });
    expectProblem(foreignUser, 422, 'unprocessable');

    expectProblem(await b.api.delete(`/api/v1/api-keys/${keyId}`), 404, 'not-found');
    const keys = (await b.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection'];
    expect(keys.data.map((k) => k.id)).not.toContain(keyId);

    expect(await tenantARows()).toEqual(before);
  });

  it("sees, checks and rebuilds only its own analytics; its new keys stay out of A's list", async () => {
    const before = await tenantARows();
    const aggregatesOfA = () =>
      sql<{ row: string }>`select t::text as row from (
          select month, status, sum(subscription_count) n, sum(plan_cost_total) total
          from subscription_rollups where tenant_id = ${ctx.tenant.id} group by 1, 2
          union all
          select null, user_id::text, subscription_count, total_value from user_totals where tenant_id = ${ctx.tenant.id}
        ) t order by 1`
        .execute(ctx.db)
        .then((r) => r.rows.map((x) => x.row));
    const aggregates = await aggregatesOfA();
    expect(aggregates.length).toBeGreaterThan(0);

    const analytics = (await b.api.get('/api/v1/analytics')).body as Schemas['Analytics'];
    expect(analytics.subscription_count).toBe(
      Number(
        (
          await ctx.db
            .selectFrom('subscriptions')
            .select(sql<string>`count(*)`.as('n'))
            .where('tenant_id', '=', b.id)
            .executeTakeFirstOrThrow()
        ).n,
      ),
    );
    expect(analytics.top_users.map((u) => u.id)).not.toContain(user.id);
    expect((await b.api.post('/api/v1/analytics/rebuild')).body).toEqual({
      consistent: true,
      differences: [],
    });
    expect((await b.api.get('/api/v1/analytics/consistency')).body).toEqual({
      consistent: true,
      differences: [],
    });
    expect(await aggregatesOfA()).toEqual(aggregates);

    const created = await b.api.post('/api/v1/api-keys').send({ name: 'b key', role: 'viewer' });
    expect(created.status).toBe(201);
    const listedForA = (await ctx.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection'];
    expect(listedForA.data.map((k) => k.id)).not.toContain((created.body as Schemas['ApiKey']).id);
    expect(await tenantARows()).toEqual(before);
  });

  it('may reuse the same email and feature name: uniqueness is per tenant', async () => {
    expect((await b.api.post('/api/v1/users').send({ name: 'B', email: 'SHARED@example.com' })).status).toBe(
      201,
    );
    expect((await b.api.post('/api/v1/features').send({ name: 'shared-feature' })).status).toBe(201);
  });
});

/** A transaction as the app role with no tenant named: what a forgotten set_config would see. */
function withoutTenant<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${APP_ROLE}, true)`.execute(trx);
    return fn(trx);
  });
}

describe('row-level security', () => {
  it('runs tenant transactions as a role that owns nothing and cannot bypass RLS', async () => {
    const rows = await withTenant(ctx.appDb, { tenantId: b.id }, async (trx) => {
      const result = await sql<{ role: string; bypass: boolean; superuser: boolean; owns: number }>`
        select current_user as role, rolbypassrls as bypass, rolsuper as superuser,
          (select count(*)::int from pg_class where relowner = r.oid) as owns
        from pg_roles r where rolname = current_user`.execute(trx);
      return result.rows;
    });
    expect(rows).toEqual([{ role: 'subscriptions_app', bypass: false, superuser: false, owns: 0 }]);
  });

  it("returns only the current tenant's rows to a query with no tenant filter at all", async () => {
    const all = await ctx.db.selectFrom('users').select('id').execute();
    expect(all.length).toBeGreaterThan(1); // the owner sees both tenants
    const seen = await withTenant(ctx.appDb, { tenantId: b.id }, (trx) =>
      trx.selectFrom('users').select('id').execute(),
    );
    const bUsers = await ctx.db.selectFrom('users').select('id').where('tenant_id', '=', b.id).execute();
    expect(seen).toEqual(expect.arrayContaining(bUsers));
    expect(seen).toHaveLength(bUsers.length);
    expect(seen.map((r) => r.id)).not.toContain(user.id);
  });

  it('shows nothing, and refuses writes, without a tenant or for another tenant', async () => {
    expect(
      await withoutTenant(ctx.appDb, (trx) => trx.selectFrom('subscriptions').select('id').execute()),
    ).toEqual([]);
    await expect(
      withoutTenant(ctx.appDb, (trx) => trx.insertInto('features').values({ name: 'orphan' }).execute()),
    ).rejects.toThrow();
    await expect(
      withTenant(ctx.appDb, { tenantId: b.id }, (trx) =>
        sql`insert into features (tenant_id, name) values (${ctx.tenant.id}, 'planted')`.execute(trx),
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('never carries one tenant into the next transaction on a reused connection', async () => {
    const one = createDb(ctx.url, { poolSize: 1, asAppRole: true }); // every transaction shares one connection
    try {
      const pids = new Set<number>();
      const visible = async (tenantId: string) =>
        withTenant(one, { tenantId: tenantId }, async (trx) => {
          const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
          pids.add(rows[0]!.pid);
          return (await trx.selectFrom('users').select('id').execute()).map((r) => r.id);
        });
      for (let i = 0; i < 3; i++) {
        expect(await visible(ctx.tenant.id)).toContain(user.id);
        expect(await withoutTenant(one, (trx) => trx.selectFrom('users').select('id').execute())).toEqual([]);
        expect(await visible(b.id)).not.toContain(user.id);
      }
      expect(pids.size).toBe(1);
    } finally {
      await one.destroy();
    }
  });
});

describe('the request pipeline', () => {
  it("makes every connection of the app's pool the app role, even outside a tenant transaction", async () => {
    const { rows } = await sql<{ role: string }>`select current_user as role`.execute(ctx.appDb);
    expect(rows).toEqual([{ role: 'subscriptions_app' }]);
    expect(await ctx.appDb.selectFrom('users').select('id').execute()).toEqual([]); // no tenant named
  });

  it('runs none of the statements pipelined behind a key that the database refuses', async () => {
    const before = await fingerprint(ctx.db);
    const bogus = { prefix: 'sk_00000000', hash: Buffer.alloc(32) };
    await expect(
      withTenant(ctx.appDb, { tenantId: ctx.tenant.id, apiKey: bogus }, async (trx) => {
        await trx.insertInto('features').values({ name: 'smuggled' }).execute();
        return trx.selectFrom('users').select('id').execute();
      }),
    ).rejects.toMatchObject({ code: 'KEY01' });
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('takes the tenant from the key itself, whatever tenant the caller names', async () => {
    const key = await ctx.api.post('/api/v1/api-keys').send({ name: 'pipeline', role: 'viewer' });
    const secret = (key.body as { key: string }).key;
    const { prefix, hash } = {
      prefix: secret.slice(0, 11),
      hash: createHash('sha256').update(secret).digest(),
    };
    const seen = await withTenant(ctx.appDb, { tenantId: b.id, apiKey: { prefix, hash } }, (trx) =>
      trx.selectFrom('users').select('id').execute(),
    );
    expect(seen.map((r) => r.id)).toContain(user.id); // tenant A's user: the key's tenant, not b
  });

  it('refuses a key revoked through another instance at once, though that instance still caches it', async () => {
    const other = ctx.appWith({}); // its own key cache, as another process or instance would have
    const created = await ctx.api
      .post('/api/v1/api-keys')
      .send({ name: 'revoked elsewhere', role: 'editor' });
    const { id, key } = created.body as { id: string; key: string };
    const asOther = () => other.get('/api/v1/users').set('Authorization', `Bearer ${key}`);
    expect((await asOther()).status).toBe(200); // now cached by the other instance
    expect((await ctx.api.delete(`/api/v1/api-keys/${id}`)).status).toBe(204);

    const before = await fingerprint(ctx.db);
    expectProblem(await asOther(), 401, 'unauthorized');
    const write = await other
      .post('/api/v1/features')
      .set('Authorization', `Bearer ${key}`)
      .send({ name: 'after revocation' });
    expectProblem(write, 401, 'unauthorized');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('routing', () => {
  it('treats a path in another case as unknown: 404, never a way around authentication', async () => {
    const before = await ctx.db.selectFrom('tenants').select('id').execute();
    for (const path of ['/API/v1/tenants', '/api/V1/tenants', '/api/v1/Tenants']) {
      const res = await ctx.anonymous
        .post(path)
        .set('Authorization', 'Bearer anything')
        .send({ name: 'Mallory' });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    expectProblem(await ctx.anonymous.get('/API/v1/users'), 404, 'not-found');
    expect(await ctx.db.selectFrom('tenants').select('id').execute()).toEqual(before);
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
