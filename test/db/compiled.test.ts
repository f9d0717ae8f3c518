// Queries compiled once (src/database/compiled.ts) send what Kysely would have built for the
// call: the same SQL, the same parameters.
import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { runCompiled } from '../../src/database/compiled.js';
import { withTenant } from '../../src/database/connection.js';
import * as users from '../../src/queries/users.js';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();

describe('runCompiled', () => {
  it('sends the SQL and parameters the builder makes for each call, and the rows', async () => {
    const at = new Date('2026-01-02T03:04:05Z');
    const build = (email: string, when: Date) =>
      ctx.db
        .selectFrom('users')
        .select(['id'])
        .where(sql`lower(email)`, '=', sql`lower(${email})`)
        .where('created_at', '<', when)
        .limit(3);
    const spy = vi.spyOn(ctx.db, 'executeQuery');
    for (const email of ['A@example.com', 'b@example.com']) {
      await runCompiled(ctx.db, 'test.compiled', [email, at] as const, build);
      const sent = spy.mock.lastCall![0] as unknown as { sql: string; parameters: unknown[] };
      const direct = build(email, at).compile();
      expect(sent.sql).toBe(direct.sql);
      expect(sent.parameters).toEqual(direct.parameters);
    }
    spy.mockRestore();
  });

  it('refuses a builder that does not pass a value to Kysely as a parameter', async () => {
    await expect(
      runCompiled(ctx.db, 'test.unused', ['x', 'y'], (x: string, _y: string) =>
        ctx.db.selectFrom('users').select('id').where('email', '=', x),
      ),
    ).rejects.toThrow('a value did not become a parameter');
  });

  it('serves the user queries with and without their optional parts', async () => {
    const tenant = { tenantId: ctx.tenant.id };
    const [plain, withRegion] = await withTenant(ctx.appDb, tenant, async (db) => [
      await users.insertUser(db, { name: 'No Region', email: 'plain@example.com' }),
      await users.insertUser(db, { name: 'Region', email: 'region@example.com', region: 'DE' }),
    ]);
    expect(plain).toMatchObject({ name: 'No Region', region: null, version: 1 });
    expect(withRegion).toMatchObject({ name: 'Region', region: 'DE' });
    const found = await withTenant(ctx.appDb, tenant, (db) => users.findUser(db, withRegion.id));
    expect(found).toEqual(withRegion);
    const listed = await withTenant(ctx.appDb, tenant, async (db) => ({
      all: await users.listUsers(db, { limit: 10 }),
      after: await users.listUsers(db, { limit: 10, after: withRegion.id }),
      email: await users.listUsers(db, { limit: 10, email: 'PLAIN@example.com' }),
    }));
    expect(listed.all.map((u) => u.id)).toEqual([withRegion.id, plain.id]);
    expect(listed.after.map((u) => u.id)).toEqual([plain.id]);
    expect(listed.email.map((u) => u.id)).toEqual([plain.id]);
  });
});

describe('prepared statements', () => {
  it('are made of every statement but those with an array parameter, which are planned with their values', async () => {
    const t = await ctx.newTenant();
    const prepared = await withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
      // Each run six times: PostgreSQL may take a generic plan from the sixth run of a prepared one.
      for (let i = 0; i < 6; i++) {
        await sql`select id from users where id = any(${[t.id]}::uuid[])`.execute(trx);
        await sql`select id from users where id = ${t.id}::uuid`.execute(trx);
      }
      const { rows } = await sql<{ statement: string }>`
        select statement from pg_prepared_statements where statement like 'select id from users where id =%'`.execute(
        trx,
      );
      return rows.map((r) => r.statement).sort();
    });
    expect(prepared).toEqual(['select id from users where id = $1::uuid']);
  });
});
