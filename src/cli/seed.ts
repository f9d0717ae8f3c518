// `make seed` (ROWS=500000 SEED=42): a demo tenant with users, features, subscriptions and links,
// built inside PostgreSQL by the generate_series statements in db/seeds/, in file order.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../config.js';
import { openDatabase } from '../database/open.js';
import { createDb, type Db } from '../database/connection.js';
import { migrateToLatest } from '../database/migrator.js';
import { rebuild } from '../services/analytics.js';
import { createTenant } from '../services/tenants.js';
import { runMain } from '../startup.js';

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
  const result = await work();
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(`${label.padEnd(34)} ${(count ? count(result) : '').padStart(12)}  ${seconds.padStart(6)} s`);
  return result;
}

/** Removes an earlier demo tenant and everything it owns, so re-running replaces it. */
async function removeDemo(owner: Db): Promise<number> {
  const old = await owner.selectFrom('tenants').select('id').where('name', '=', DEMO).execute();
  for (const { id } of old) {
    await owner.transaction().execute(async (trx) => {
      for (const table of [
        'subscription_features',
        'subscriptions',
        'features',
        'user_totals',
        'users',
      ] as const) {
        await trx.deleteFrom(table).where('tenant_id', '=', id).execute();
      }
      await trx.deleteFrom('tenants').where('id', '=', id).execute(); // keys and rollups cascade
    });
  }
  return old.length;
}

runMain(async () => {
  const total = performance.now();
  const database = await openDatabase(loadConfig());
  // One connection for every step: setseed() governs random() for the rest of this session.
  const owner = createDb(database.url, { poolSize: 1 });
  try {
    await migrateToLatest(owner);
    console.log(`seeding ${rows} subscriptions for ${users} users (SEED=${seed})`);
    await step(
      'remove the previous demo tenant',
      () => removeDemo(owner),
      (n) => `${n} removed`,
    );
    const { tenant, apiKey } = await step('create the demo tenant', () => createTenant({ db: owner }, DEMO));

    // The statements run as the owner, filtering on app.tenant_id themselves. As a superuser they
    // also skip row triggers (foreign key checks, the aggregates): the data is valid by
    // construction, and the aggregates are rebuilt in one pass at the end.
    const fast = await owner
      .transaction()
      .execute((trx) => sql`set local session_replication_role = replica`.execute(trx))
      .then(
        () => true,
        () => false,
      );
    if (!fast) console.log('(not a superuser: row triggers stay on, which is slower)');
    await sql`select setseed(${(seed % 1_000_000) / 1_000_000})`.execute(owner);
    for (const file of readdirSync(SEEDS)
      .filter((f) => f.endsWith('.sql'))
      .sort()) {
      const statement = readFileSync(path.join(SEEDS, file), 'utf8');
      await step(
        file,
        () =>
          owner.transaction().execute(async (trx) => {
            // Parallel workers would draw random() in a different order each run.
            await sql`set local max_parallel_workers_per_gather = 0`.execute(trx);
            if (fast) await sql`set local session_replication_role = replica`.execute(trx);
            await sql`select set_config('app.tenant_id', ${tenant.id}, true),
              set_config('seed.rows', ${String(rows)}, true), set_config('seed.users', ${String(users)}, true)`.execute(
              trx,
            );
            return sql.raw(statement).execute(trx);
          }),
        (result) => `${String(result.numAffectedRows ?? 0n)} rows`,
      );
    }
    // As the app role, under RLS: only the demo tenant's aggregates are rebuilt.
    await step('rebuild the analytics aggregates', () =>
      rebuild({ db: owner }, { tenantId: tenant.id, keyId: 'system' }),
    );
    await step('analyze', () =>
      sql`analyze users, features, subscriptions, subscription_features, subscription_rollups, user_totals`.execute(
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
