// The maintained aggregates under concurrent writers, and the plans the analytics queries rely on.
import { readdirSync, readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { findDifferences } from '../../src/analytics/maintenance.js';
import { analyticsQueries } from '../../src/analytics/metrics.js';
import type { Schemas } from '../../src/contract.js';
import { type Db, withTenant } from '../../src/database/connection.js';
import { NEXT_STATUSES } from '../../src/services/subscriptions.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createSubscription, createUser } from '../helpers/factories.js';

const ctx = useTestApp();

describe('concurrent writers', () => {
  it('leave the aggregates exactly equal to a recomputation, without deadlocks', async () => {
    const t = await ctx.newTenant();
    const users = await Promise.all(Array.from({ length: 4 }, () => createUser(t)));
    const statuses = ['active', 'trialing', 'past_due', 'canceled'] as const;
    // 8 writers at once (the app's pool has 4 connections, so they truly overlap in PostgreSQL),
    // each creating, repricing, changing status and deleting subscriptions of the same users and
    // months, so they contend for the same aggregate rows.
    const worker = async (w: number) => {
      const mine: Schemas['Subscription'][] = [];
      for (let i = 0; i < 15; i++) {
        const s = await createSubscription(t, {
          user_id: users[(w + i) % users.length]!.id,
          plan_cost: `${w}.${String(i).padStart(2, '0')}`,
          start_date: `2026-0${1 + (i % 3)}-15`,
          status: statuses[i % 4]!,
        });
        mine.push(s);
        // A status the lifecycle allows next, or none (a canceled subscription stays canceled,
        // and final: only its metadata changes).
        const next = NEXT_STATUSES[s.status][(i + w) % 2];
        const update = await t.api
          .patch(`/api/v1/subscriptions/${s.id}`)
          .send(
            s.status === 'canceled'
              ? { metadata: { round: String(i) } }
              : { plan_cost: `${i}.99`, ...(next ? { status: next } : {}) },
          );
        expect(update.status).toBe(200);
        if (i % 3 === 0)
          expect((await t.api.delete(`/api/v1/subscriptions/${mine.shift()!.id}`)).status).toBe(204);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));

    expect(ctx.unexpectedErrors).toEqual([]); // a deadlock would have been a 500
    expect(await withTenant(ctx.appDb, { tenantId: t.id }, (trx) => findDifferences(trx, t.id))).toEqual([]);
    const count = await ctx.db
      .selectFrom('subscriptions')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('tenant_id', '=', t.id)
      .executeTakeFirstOrThrow();
    expect(count.n).toBe(8 * 15 - 8 * 5);
  });
});

describe('query plans on a seeded tenant', () => {
  let t: TestTenant;

  beforeAll(async () => {
    // db/seeds at 30,000 subscriptions, as make seed runs it (see src/cli/seed.ts).
    t = await ctx.newTenant();
    const rows = 30_000;
    for (const file of readdirSync('db/seeds')
      .filter((f) => f.endsWith('.sql'))
      .sort()) {
      await ctx.db.transaction().execute(async (trx) => {
        await sql`select set_config('app.tenant_id', ${t.id}, true), set_config('seed.rows', ${String(rows)}, true),
          set_config('seed.users', ${String(rows / 3)}, true)`.execute(trx);
        await sql.raw(readFileSync(`db/seeds/${file}`, 'utf8')).execute(trx);
      });
    }
    await sql`analyze subscriptions, subscription_rollups, user_totals, users, invoices`.execute(ctx.db);
  });

  /** The plan of a query run as the app runs it: app role, tenant set. */
  const plan = (explain: (trx: Db) => Promise<Record<string, unknown>[]>) =>
    withTenant(ctx.appDb, { tenantId: t.id }, async (trx) =>
      (await explain(trx)).map((r) => String(r['QUERY PLAN'])).join('\n'),
    );
  const params = { asOf: '2026-11-23', months: 12, top: 5 };

  it('reads top users in order from user_totals_top_idx', async () => {
    const text = await plan((trx) => analyticsQueries.topUsers(trx, params).explain());
    expect(text).toMatch(/Index Scan using user_totals_top_idx/);
    expect(text).not.toMatch(/Sort/);
  });

  it('reads top users from user_totals_top_idx in a generic plan too', async () => {
    // The app prepares every statement; after five runs PostgreSQL may switch to a generic plan,
    // made without the parameters' values. Forced here, as it would be then.
    const query = analyticsQueries.topUsers(ctx.appDb, params).compile();
    const text = await withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
      await sql`set local plan_cache_mode = force_generic_plan`.execute(trx);
      await sql.raw(`prepare top_users as ${query.sql}`).execute(trx);
      const args = sql.join(query.parameters.map((p) => sql.lit(String(p))));
      const { rows } = await sql<{ 'QUERY PLAN': string }>`explain execute top_users (${args})`.execute(trx);
      await sql`deallocate top_users`.execute(trx);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(text).toMatch(/Index Scan using user_totals_top_idx/);
    expect(text).not.toMatch(/Sort|Seq Scan/);
    expect(text).toMatch(/Index Scan using users_pkey/);
  });

  it('reads totals and months from the rollups, never from subscriptions', async () => {
    for (const text of [
      await plan((trx) => analyticsQueries.totals(trx).explain()),
      await plan((trx) => analyticsQueries.monthlyRevenue(trx, params).explain()),
    ]) {
      expect(text).toMatch(/subscription_rollups/);
      expect(text).not.toMatch(/on subscriptions /);
    }
  });

  it('serves the live recomputations from the BRIN and partial indexes', async () => {
    const month = await withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
      const { rows } = await sql<{
        'QUERY PLAN': string;
      }>`explain select count(*), sum(plan_cost) from subscriptions
        where start_date >= '2026-10-01' and start_date < '2026-11-01'`.execute(trx);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(month).toMatch(/subscriptions_start_date_brin/);
    const active = await plan(
      async (trx) =>
        (
          await sql<
            Record<string, unknown>
          >`explain select sum(plan_cost) from subscriptions where status = 'active'`.execute(trx)
        ).rows,
    );
    expect(active).toMatch(/subscriptions_active_plan_cost_idx/);
  });

  it('reads the event feed filtered by type through events_type_idx, never the whole feed', async () => {
    // 20,000 events of one type; then a page of a type with none, as listEvents asks for it.
    await ctx.db.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(trx);
      await sql`insert into events (type, resource_type, resource_id, actor, data)
        select 'user.created', 'user', gen_random_uuid(), 'plan test', '{}'
        from generate_series(1, 20000) i`.execute(trx);
    });
    await sql`analyze events`.execute(ctx.db);
    const text = await withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
      const { rows } = await sql<{ 'QUERY PLAN': string }>`explain select seq, id from events
        where xid < pg_snapshot_xmin(pg_current_snapshot()) and type in ('invoice.voided')
        order by events.xid, events.seq limit 21`.execute(trx);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(text).toMatch(/Index Scan using events_type_idx/);
    expect(text).toMatch(/Index Cond: .*type = 'invoice.voided'/);
  });

  it('finds a customer by email through users_email_key under row-level security, in a generic plan too', async () => {
    // The statement as listUsers sends it (db/sql is checked against the code by make check-gen).
    const listUsers = /-- listUsers\n(.+);\n/.exec(readFileSync('db/sql/users.sql', 'utf8'))![1]!;
    expect(listUsers).toMatch(/"email_key" = lower\(\$2\)/);
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      const text = await withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
        await sql.raw(`set local plan_cache_mode = ${mode}`).execute(trx);
        await sql.raw(`prepare by_email as ${listUsers}`).execute(trx);
        const { rows } = await sql<{
          'QUERY PLAN': string;
        }>`explain execute by_email ('ffffffff-ffff-7fff-bfff-ffffffffffff', 'Nobody@Example.com', 21)`.execute(
          trx,
        );
        await sql`deallocate by_email`.execute(trx);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      expect(text, mode).toMatch(/Index Cond: \(\(tenant_id = .*\) AND \(email_key = /);
      expect(text, mode).toMatch(/users_email_key/);
    }
  });

  it.each([
    ['subscriptions', 'paused', 'subscriptions_status_idx'],
    ['invoices', 'draft', 'invoices_status_idx'],
  ] as const)(
    'pages %s filtered by a status no row has (%s) through %s, in a generic plan too',
    async (table, status, index) => {
      // As listSubscriptions and listInvoices build it: newest first from the cursor, one status.
      const query = ctx.appDb
        .selectFrom(table)
        .selectAll()
        .where('id', '<', 'ffffffff-ffff-7fff-bfff-ffffffffffff')
        .where('status', 'in', [status])
        .orderBy('id', 'desc')
        .limit(21)
        .compile();
      for (const mode of ['force_custom_plan', 'force_generic_plan']) {
        const text = await withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
          await sql.raw(`set local plan_cache_mode = ${mode}`).execute(trx);
          await sql.raw(`prepare by_status as ${query.sql}`).execute(trx);
          const args = sql.join(query.parameters.map((p) => sql.lit(String(p))));
          const { rows } = await sql<{ 'QUERY PLAN': string }>`explain execute by_status (${args})`.execute(
            trx,
          );
          await sql`deallocate by_status`.execute(trx);
          return rows.map((r) => r['QUERY PLAN']).join('\n');
        });
        expect(text, mode).toMatch(new RegExp(`Index (Only )?Scan Backward using ${index}`));
        expect(text, mode).toMatch(/Index Cond: .*status = /);
      }
    },
  );
});
