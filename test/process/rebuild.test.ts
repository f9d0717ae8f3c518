// `make rebuild TENANT=…` as operators run it: the MRR sums of a tenant whose aggregates were
// damaged are rebuilt from its tables, with progress and the check's verdict printed, while
// another tenant's sums stay as they were.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { createSubscription, createUser } from '../helpers/factories.js';
import { spawnProcess } from '../helpers/process.js';

const ctx = useTestApp();

const rebuildCli = (tenant: string) =>
  spawnProcess(process.execPath, ['--import', 'tsx', 'src/cli/rebuild.ts'], {
    DATABASE_URL: ctx.url,
    TENANT: tenant,
  });

const daysOf = async (tenantId: string) =>
  (
    await sql<{ n: number; mrr: string | null }>`
      select count(*)::int as n, sum(mrr)::text as mrr from mrr_days where tenant_id = ${tenantId}`.execute(
      ctx.db,
    )
  ).rows[0]!;

describe('make rebuild', () => {
  it('repairs damaged sums, reports progress and a consistent check, and leaves other tenants alone', async () => {
    const t = await ctx.newTenant('Rebuilt');
    const other = await ctx.newTenant('Untouched');
    for (const tenant of [t, other]) {
      for (let i = 0; i < 3; i++) {
        const user = await createUser(tenant);
        await createSubscription(tenant, {
          user_id: user.id,
          plan_cost: `${10 + i}.00`,
          start_date: '2025-03-01',
        });
      }
      await tenant.api.post('/api/v1/analytics/rebuild').expect(200);
    }
    const good = await daysOf(t.id);
    const untouched = await daysOf(other.id);
    expect(good.n).toBeGreaterThan(0);
    // Damage: a bug or a restore left the sums wrong; the check sees it.
    await sql`update mrr_days set mrr = mrr + 100 where tenant_id = ${t.id}`.execute(ctx.db);
    const damaged = await t.api.get('/api/v1/analytics/consistency').expect(200);
    expect((damaged.body as { consistent: boolean }).consistent).toBe(false);

    const cli = rebuildCli(t.id);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(0);
    expect(cli.stdout()).toMatch(/rebuilt in [\d.]+ s/);
    expect(cli.stdout()).toMatch(/checked in [\d.]+ s: consistent/);
    // Not a terminal: the progress goes to stderr as plain lines (or nothing, for a short run).
    expect(cli.stderr()).not.toContain('\u001b');
    // The rebuild's and the check's long statements say what they are doing at once.
    expect(cli.stderr()).toMatch(/^reading every subscription: \d+ s$/m);
    expect(cli.stderr()).toMatch(/^checking: reading every subscription: \d+ s$/m);
    expect(await daysOf(t.id)).toEqual(good);
    expect(await daysOf(other.id)).toEqual(untouched);
    expect((await t.api.get('/api/v1/analytics/consistency').expect(200)).body).toEqual({
      consistent: true,
      differences: [],
    });
  });

  it('refuses an unknown tenant with exit code 2', async () => {
    const cli = rebuildCli('no such tenant');
    expect((await cli.exited).code).toBe(2);
    expect(cli.stderr()).toContain('no tenant no such tenant');
  });
});
