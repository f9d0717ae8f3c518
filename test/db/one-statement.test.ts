// withTenant's one-statement reads: COMMIT goes out with the statement, and everything else about
// the tenant transaction holds (the scope, the key check, one statement only).
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withTenant } from '../../src/database/connection.js';
import { inTenant } from '../../src/services/context.js';
import { useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';

const ctx = useTestApp();
const one = { oneStatement: true };

describe('a one-statement tenant transaction', () => {
  it("sees only its tenant's rows, in a transaction that is over when it returns", async () => {
    const mine = await createUser(ctx);
    const other = await ctx.newTenant();
    await createUser({ ...ctx, api: other.api });
    const rows = await withTenant(
      ctx.appDb,
      { tenantId: ctx.tenant.id },
      (db) => db.selectFrom('users').select(['id', 'tenant_id']).execute(),
      undefined,
      one,
    );
    expect(rows).toEqual([{ id: mine.id, tenant_id: ctx.tenant.id }]);
    // The connection went back to the pool outside any transaction, with no tenant set.
    const after = await sql<{
      tenant: string | null;
    }>`select current_setting('app.tenant_id', true) as tenant`.execute(ctx.appDb);
    expect(after.rows[0]?.tenant ?? '').toBe('');
  });

  it('refuses a second statement (it would run outside the tenant transaction)', async () => {
    await expect(
      withTenant(
        ctx.appDb,
        { tenantId: ctx.tenant.id },
        async (db) => {
          await db.selectFrom('users').select('id').execute();
          return db.selectFrom('users').select('id').execute();
        },
        undefined,
        one,
      ),
    ).rejects.toThrow('a one-statement transaction ran a second statement');
  });

  it('fails with the key check when the key is no longer valid, as other transactions do', async () => {
    const holder = { prefix: 'sk_nokey', hash: Buffer.alloc(32) };
    await expect(
      withTenant(
        ctx.appDb,
        { tenantId: ctx.tenant.id, apiKey: holder },
        (db) => db.selectFrom('users').select('id').execute(),
        undefined,
        one,
      ),
    ).rejects.toMatchObject({ code: 'KEY01' });
  });

  it('records no event and takes no idempotency key', async () => {
    const actor = { tenantId: ctx.tenant.id, keyId: 'system' };
    await expect(
      inTenant(
        { db: ctx.appDb },
        actor,
        async (tx) => {
          tx.emit({ type: 'user.created', resource_type: 'user', resource_id: 'x', data: {} });
          return tx.db.selectFrom('users').select('id').execute();
        },
        one,
      ),
    ).rejects.toThrow('a one-statement read records no event');
    const idempotency = { key: 'k', fingerprint: 'f', reply: () => undefined };
    await expect(
      inTenant(
        { db: ctx.appDb },
        { ...actor, idempotency },
        (tx) => tx.db.selectFrom('users').select('id').execute(),
        one,
      ),
    ).rejects.toThrow('a one-statement read takes no idempotency key');
  });
});

describe('commitWithNext: the last statement of a transaction carries COMMIT', () => {
  const actor = () => ({ tenantId: ctx.tenant.id, keyId: 'system' });
  const countEvents = async (userId: string) =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from events where tenant_id = ${ctx.tenant.id}
          and type = 'user.updated' and resource_id = ${userId}`.execute(ctx.db)
      ).rows[0]!.n,
    );

  it('commits what the work wrote, with its last statement, and refuses a statement after it', async () => {
    const email = `last-${Date.now()}@example.com`;
    const found = await inTenant({ db: ctx.appDb }, actor(), async (tx) => {
      await tx.db.insertInto('users').values({ name: 'Last', email }).execute();
      tx.commitWithNext();
      return tx.db.selectFrom('users').select('email').where('email', '=', email).execute();
    });
    expect(found).toEqual([{ email }]);
    const stored =
      await sql`select 1 from users where tenant_id = ${ctx.tenant.id} and email = ${email}`.execute(ctx.db);
    expect(stored.rows).toHaveLength(1);
    await expect(
      inTenant({ db: ctx.appDb }, actor(), async (tx) => {
        tx.commitWithNext();
        await tx.db.selectFrom('users').select('id').execute();
        return tx.db.selectFrom('users').select('id').execute();
      }),
    ).rejects.toThrow('a one-statement transaction ran a second statement');
  });

  it('changes nothing when an event waits to be written: it goes out before COMMIT', async () => {
    const user = await createUser(ctx);
    const rows = await inTenant({ db: ctx.appDb }, actor(), async (tx) => {
      tx.emit({ type: 'user.updated', resource_type: 'user', resource_id: user.id, data: {} });
      tx.commitWithNext();
      await tx.db.selectFrom('users').select('id').execute();
      return tx.db.selectFrom('users').select('id').execute();
    });
    expect(Array.isArray(rows)).toBe(true);
    expect(await countEvents(user.id)).toBe(1);
  });
});
