// A tenant whose MRR passes what the metrics count exactly (2^53 cents in one sum): its figures
// answer 409 problems, never a 500 and never rounded, and its compaction waits without holding up
// any other tenant's.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { MrrRangeError } from '../../src/analytics/mrr-engine.js';
import { startMrrCompaction } from '../../src/jobs/mrr-compaction.js';
import { createLogger } from '../../src/logger.js';
import { checkMrr, rebuildMrr } from '../../src/services/mrr-rebuild.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createSubscription } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

const dirty = async (tenantId: string) =>
  Number(
    (
      await sql<{ n: string }>`select count(*) as n from mrr_dirty where tenant_id = ${tenantId}`.execute(
        ctx.db,
      )
    ).rows[0]!.n,
  );

/**
 * A tenant of 10 customers with 920 subscriptions each at the highest price, monthly: 9,200 ×
 * 9,999,999,999.99 a month, past 2^53 cents (90,071,992,547,409.91) in total, though no customer
 * is near it. Loaded straight into the tables (a bulk load): every customer waits for compaction.
 */
async function bigTenant(): Promise<TestTenant> {
  const t = await ctx.newTenant();
  await ctx.db.transaction().execute(async (trx) => {
    await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(trx);
    await sql`insert into users (name, email) select 'Big ' || i, 'big-' || i || '@example.com' from generate_series(1, 10) i`.execute(
      trx,
    );
    await sql`insert into subscriptions (user_id, status, plan_cost, start_date)
      select id, 'active', 9999999999.99, date '2026-01-01'
      from users, generate_series(1, 920) where tenant_id = ${t.id}`.execute(trx);
  });
  // Statistics, as autovacuum would gather after a bulk load: without them, the whole-tenant
  // statement of the check and the rebuild is planned for empty tables (80 s here, not 0.5 s).
  await sql`analyze`.execute(ctx.db);
  expect(await dirty(t.id)).toBe(10);
  return t;
}

const expectBeyondExact = (res: Parameters<typeof expectProblem>[0]) => {
  const problem = expectProblem(res, 409, 'conflict');
  expect(problem.detail).toContain('90,071,992,547,409.91');
  return problem;
};

describe('a tenant whose MRR passes 2^53 cents', () => {
  it('answers its figures, check and rebuild with a 409 problem, never a 500', async () => {
    const t = await bigTenant();
    // Reads while its customers wait for compaction: they add those customers' difference.
    const query = { from: '2026-01', to: '2026-02' };
    expectBeyondExact(await t.api.get('/api/v1/metrics/mrr').query(query));
    expectBeyondExact(await t.api.get('/api/v1/metrics/churn').query(query));
    expectBeyondExact(await t.api.get('/api/v1/analytics').query({ as_of: '2026-03-01' }));
    expectBeyondExact(await t.api.get('/api/v1/analytics/consistency'));
    expectBeyondExact(await t.api.post('/api/v1/analytics/rebuild'));
    expect(ctx.unexpectedErrors).toEqual([]);
    // Counted on threads, the failure is still the typed one.
    await expect(rebuildMrr(ctx.db, t.id, { threads: 2 })).rejects.toBeInstanceOf(MrrRangeError);
    await expect(checkMrr(ctx.db, t.id, { threads: 2 })).rejects.toBeInstanceOf(MrrRangeError);
    // Nothing was rounded into the aggregates: the customers still wait.
    expect(await dirty(t.id)).toBe(10);
  });

  it("answers 409 once one customer's MRR passes it, though no day's change does (metrics3)", async () => {
    // One customer with 9,000 subscriptions at the highest price, half starting on each of two
    // days: 89,999,999,999,910.00 a month from the second day, under 2^53 cents, counted.
    const t = await ctx.newTenant();
    const load = (count: number) =>
      ctx.db.transaction().execute(async (trx) => {
        await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(trx);
        await sql`insert into subscriptions (user_id, status, plan_cost, start_date)
          select id, 'active', 9999999999.99, date '2026-01-01' + (i % 2)
          from users, generate_series(1, ${count}::int) i where tenant_id = ${t.id}`.execute(trx);
      });
    await ctx.db.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${t.id}, true)`.execute(trx);
      await sql`insert into users (name, email) values ('Whale', 'whale@example.com')`.execute(trx);
    });
    await load(9000);
    await sql`analyze`.execute(ctx.db);
    await rebuildMrr(ctx.db, t.id);
    // 101 more: 91,009,999,999,908.99 a month, an odd number of cents past 2^53, which a double
    // cannot hold. Each day's change is still under it: compacted, the figures were a cent off.
    await load(101);
    expect(await dirty(t.id)).toBe(1);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    const compaction = startMrrCompaction({ db: ctx.appDb, ownerDb: ctx.db }, logger, 20);
    try {
      const until = Date.now() + 15_000;
      while ((await dirty(t.id)) > 0 && !lines.some((l) => l.tenantId === t.id) && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await compaction.stop();
    }
    expect(await dirty(t.id)).toBe(1);
    expectBeyondExact(await t.api.get('/api/v1/metrics/mrr').query({ from: '2026-01', to: '2026-02' }));
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('does not stop the compaction of other tenants: its own waits, logged', async () => {
    const big = await bigTenant();
    const other = await ctx.newTenant();
    await createSubscription(other, { plan_cost: '10.00', start_date: '2026-01-01' });
    await createSubscription(other, { plan_cost: '20.00', start_date: '2026-01-01' });
    expect(await dirty(other.id)).toBe(2);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    // Whichever of the two comes first in the round, the other tenant is compacted.
    const compaction = startMrrCompaction({ db: ctx.appDb, ownerDb: ctx.db }, logger, 20);
    try {
      const until = Date.now() + 15_000;
      while ((await dirty(other.id)) > 0 && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 20));
      // The big tenant's failure is logged as its own, in a round that goes on.
      while (!lines.some((l) => l.tenantId === big.id) && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await compaction.stop();
    }
    expect(await dirty(other.id)).toBe(0);
    expect(await dirty(big.id)).toBe(10);
    expect(lines.find((l) => l.tenantId === big.id)).toMatchObject({
      err: expect.objectContaining({ type: 'MrrRangeError' }),
    });
    // No round failed as a whole.
    expect(lines.filter((l) => l.tenantId === undefined)).toEqual([]);
    const mrr = await other.api.get('/api/v1/metrics/mrr').query({ from: '2026-01', to: '2026-01' });
    expect(mrr.status, mrr.text).toBe(200);
    expect(mrr.body).toMatchObject({ months: [{ month: '2026-01', mrr: '30.00' }] });
  });
});
