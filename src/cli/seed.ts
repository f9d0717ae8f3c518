// `make seed` (ROWS=500000 SEED=42): a demo tenant with users, features, subscriptions and links,
// built inside PostgreSQL by the generate_series statements in db/seeds/, by their leading number.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../config.js';
import { openDatabase } from '../database/open.js';
import { createDb, type Db } from '../database/connection.js';
import { migrateToLatest } from '../database/migrator.js';
import { exemptFromFeedHorizon } from '../queries/events.js';
import { rebuildUnchecked } from '../services/analytics.js';
import { recordMissingVersions } from '../services/mrr-rebuild.js';
import { createTenant } from '../services/tenants.js';
import { runMain } from '../startup.js';
import { countingProgress, startProgress } from './progress.js';

const DEMO = 'Demo';
const SEEDS = path.resolve(import.meta.dirname, '../../db/seeds');

function positiveInt(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 50_000_000) {
    console.error(`${name} must be an integer from 1 to 50000000`);
    process.exit(2);
  }
  return value;
}

const rows = positiveInt('ROWS', 500_000);
const seed = positiveInt('SEED', 42);
const users = Math.max(1, Math.floor(rows / 3));

async function step<T>(label: string, work: () => Promise<T>, count?: (result: T) => string): Promise<T> {
  const started = performance.now();
  // A statement that runs long says so (one SQL statement has no finer progress to report).
  const heartbeat = setInterval(
    () => console.log(`  ... ${label} still running, ${((performance.now() - started) / 1000).toFixed(0)} s`),
    15_000,
  );
  let result: T;
  try {
    result = await work();
  } finally {
    clearInterval(heartbeat);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(`${label.padEnd(34)} ${(count ? count(result) : '').padStart(12)}  ${seconds.padStart(6)} s`);
  return result;
}

/**
 * Removes an earlier demo tenant and everything it owns, so re-running replaces it. Issued
 * invoices are final (a trigger refuses their deletion, the owner's too), so this needs a
 * superuser, whose replica mode skips the triggers; anyone else retires the old demo tenant
 * instead: renamed, its keys revoked, its data kept.
 */
async function removeDemo(owner: Db, superuser: boolean): Promise<string> {
  const old = await owner.selectFrom('tenants').select('id').where('name', '=', DEMO).execute();
  if (old.length === 0) return '0 removed';
  const ids = old.map((t) => t.id);
  if (!superuser) {
    await owner.transaction().execute(async (trx) => {
      await trx
        .updateTable('tenants')
        .set({ name: sql`name || ' (replaced ' || now()::timestamp(0) || ')'` })
        .where('id', 'in', ids)
        .execute();
      await trx
        .updateTable('api_keys')
        .set({ revoked_at: sql`now()` })
        .where('tenant_id', 'in', ids)
        .where('revoked_at', 'is', null)
        .execute();
    });
    return `${old.length} retired`;
  }
  const tables = await sql<{ table_name: string }>`
    select c.table_name from information_schema.columns c
    join information_schema.tables t using (table_schema, table_name)
    where c.table_schema = current_schema() and c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE'
    order by c.table_name`.execute(owner);
  const others = await owner.selectFrom('tenants').select('id').where('name', '<>', DEMO).limit(1).execute();
  await owner.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    if (others.length === 0) {
      // Nobody else's data here: emptying the tables is instant, and leaves no dead rows to slow
      // down the inserts that follow.
      const all = [...tables.rows.map((t) => t.table_name), 'tenants'];
      await sql`truncate ${sql.join(all.map((t) => sql.table(t)))}`.execute(trx);
      return;
    }
    for (const { table_name } of tables.rows) {
      await sql`delete from ${sql.table(table_name)} where tenant_id = any(${ids}::uuid[])`.execute(trx);
    }
    await trx.deleteFrom('tenants').where('id', 'in', ids).execute();
  });
  return `${old.length} removed`;
}

/** Whether this connection may skip row triggers (replica mode): superusers only. */
function canSkipTriggers(owner: Db): Promise<boolean> {
  return owner
    .transaction()
    .execute((trx) => sql`set local session_replication_role = replica`.execute(trx))
    .then(
      () => true,
      () => false,
    );
}

/** One file of db/seeds in one transaction, random() seeded from SEED and the file's name. */
function runSeedFile(owner: Db, file: string, options: { tenantId: string; fast: boolean }) {
  const statement = readFileSync(path.join(SEEDS, file), 'utf8');
  const fileSeed =
    ([...file].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1_000_003, seed) % 1_000_000) / 1_000_000;
  return owner.transaction().execute(async (trx) => {
    // It records no event: other tenants' feeds need not wait for it (minutes at 5,000,000).
    const release = await exemptFromFeedHorizon(owner, trx, `seed ${file}`);
    // Parallel workers would draw random() in a different order each run.
    await sql`set local max_parallel_workers_per_gather = 0`.execute(trx);
    // Sorts of hundreds of megabytes (subscriptions in start_date order) in memory, not on disk.
    await sql`set local work_mem = '256MB'`.execute(trx);
    if (options.fast) await sql`set local session_replication_role = replica`.execute(trx);
    await sql`select setseed(${fileSeed}), set_config('app.tenant_id', ${options.tenantId}, true),
      set_config('seed.rows', ${String(rows)}, true), set_config('seed.users', ${String(users)}, true)`.execute(
      trx,
    );
    // A file may hold several statements (3-usage.sql): run one by one, the rows they wrote summed.
    let written = 0n;
    for (const one of statement.split(/;\s*$/m).filter((s) => s.replace(/--.*$/gm, '').trim() !== '')) {
      written += (await sql.raw(one).execute(trx)).numAffectedRows ?? 0n;
    }
    await release();
    return { numAffectedRows: written };
  });
}

runMain(async () => {
  const total = performance.now();
  const database = await openDatabase(loadConfig());
  // Up to four files at once, each with a second connection to register it (exemptFromFeedHorizon).
  const owner = createDb(database.url, { poolSize: 8 });
  try {
    await migrateToLatest(owner, (line) => console.log(line));
    console.log(`seeding ${rows} subscriptions for ${users} users (SEED=${seed})`);
    // The statements run as the owner, filtering on app.tenant_id themselves. As a superuser they
    // also skip row triggers (foreign key checks, the aggregates): the data is valid by
    // construction, and the aggregates are rebuilt in one pass at the end.
    const fast = await canSkipTriggers(owner);
    if (!fast) console.log('(not a superuser: row triggers stay on, which is slower)');
    await step(
      'remove the previous demo tenant',
      () => removeDemo(owner, fast),
      (outcome) => outcome,
    );
    const { tenant, apiKey } = await step('create the demo tenant', () => createTenant({ db: owner }, DEMO));

    // Files run by their leading number: those sharing one run side by side (two cores do twice
    // the work), each on its own connection with its own random seed, so the data does not depend
    // on which finishes first.
    const phases = new Map<string, string[]>();
    for (const file of readdirSync(SEEDS).filter((f) => f.endsWith('.sql'))) {
      const phase = file.split('-')[0]!;
      phases.set(phase, [...(phases.get(phase) ?? []), file]);
    }
    const order = [...phases.keys()].sort((a, b) => Number(a) - Number(b));
    for (const phase of order) {
      const files = phases.get(phase)!.sort();
      const run = (file: string) =>
        step(
          file,
          () => runSeedFile(owner, file, { tenantId: tenant.id, fast }),
          (result) => `${String(result.numAffectedRows ?? 0n)} rows`,
        );
      if (fast) {
        const work: Array<Promise<unknown>> = files.map(run);
        // With the row triggers skipped, the subscriptions (phase 2) have no first version yet:
        // the rebuild would record them one core at a time; here they share phase 3's two.
        if (phase === '3')
          work.push(
            step('first subscription versions', () =>
              recordMissingVersions(owner, tenant.id, { skipTriggers: true }),
            ),
          );
        await Promise.all(work);
      } else {
        // With the row triggers on, the files of a phase would maintain the same aggregate rows (a
        // customer's marks, the rollups) from two transactions, and could deadlock: one at a time.
        for (const file of files) await run(file);
      }
      // Statistics of what this phase wrote, before the next phase joins it: planned on a freshly
      // emptied table's estimate of one row, 3-invoices.sql joined users to subscriptions in a loop
      // that read every user for each subscription.
      if (phase !== order.at(-1))
        await step(`analyze after phase ${phase}`, () =>
          sql`analyze users, features, plans, plan_versions, tax_rates, subscriptions`.execute(owner),
        );
    }
    // Fresh statistics for the planner, the two big tables on one connection, the rest on the other.
    await step('analyze', () =>
      Promise.all([
        sql`analyze subscriptions, invoices`.execute(owner),
        sql`analyze users, features, plans, plan_versions, subscription_features, subscription_versions, tax_rates`.execute(
          owner,
        ),
      ]),
    );

    // The aggregates, in one pass over the finished data (as the app role, under RLS: only the
    // demo tenant's): PostgreSQL encodes every customer's input in one statement, the engine counts them.
    await step('rebuild the analytics aggregates', async () => {
      const progress = startProgress('  customers counted');
      try {
        await rebuildUnchecked(
          { db: owner },
          { tenantId: tenant.id, keyId: 'system' },
          countingProgress(progress, '  reading every subscription'),
        );
      } finally {
        progress.finish();
      }
    });
    await step('analyze the aggregates', () =>
      sql`analyze subscription_rollups, user_totals, subscription_versions, mrr_days, mrr_counted, usage_events, usage_totals`.execute(
        owner,
      ),
    );
    console.log(`done in ${((performance.now() - total) / 1000).toFixed(1)} s`);
    console.log(`demo tenant ${tenant.id}`);
    console.log(`api key     ${apiKey.key}   (admin; shown once)`);
  } finally {
    await owner.destroy();
    await database.stop();
  }
});
