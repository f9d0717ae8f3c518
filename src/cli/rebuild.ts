// `make rebuild TENANT=<id or name>`: rebuilds every analytics aggregate of one tenant (the
// recovery path after a bug or a restore), printing its progress, then checks them. Writes to
// the tenant keep working meanwhile (see docs/analytics.md). `CHECK=0` skips the check.
import { loadConfig } from '../config.js';
import { createDb } from '../database/connection.js';
import { migrateToLatest } from '../database/migrator.js';
import { openDatabase } from '../database/open.js';
import { checkConsistency, rebuildUnchecked } from '../services/analytics.js';
import { runMain } from '../startup.js';
import { countingProgress, startProgress } from './progress.js';

const wanted = (process.env.TENANT ?? '').trim();
if (!wanted) {
  console.error('usage: make rebuild TENANT=<tenant id or name>  [CHECK=0 to skip the check]');
  process.exit(2);
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

runMain(async () => {
  const database = await openDatabase(loadConfig());
  // The rebuild reads and writes on one connection; the check reads on two that share a snapshot.
  const db = createDb(database.url, { poolSize: 2 });
  try {
    await migrateToLatest(db);
    const matches = await db
      .selectFrom('tenants')
      .select(['id', 'name'])
      .where(UUID.test(wanted) ? 'id' : 'name', '=', wanted)
      .execute();
    if (matches.length !== 1) {
      console.error(
        matches.length === 0
          ? `no tenant ${wanted}`
          : `${matches.length} tenants are named ${wanted}: give the id`,
      );
      process.exitCode = 2;
      return;
    }
    const tenant = matches[0]!;
    const actor = { tenantId: tenant.id, keyId: 'system' };
    const started = performance.now();
    const progress = startProgress(`rebuilding ${tenant.name}: customers counted`);
    try {
      await rebuildUnchecked({ db }, actor, countingProgress(progress, 'reading every subscription'));
    } finally {
      progress.finish();
    }
    console.log(`rebuilt in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (process.env.CHECK === '0') return;
    const checked = performance.now();
    // The check takes about half as long as the rebuild: its progress too.
    const checking = startProgress(`checking ${tenant.name}: stored customers counted`);
    let differences: Awaited<ReturnType<typeof checkConsistency>>;
    try {
      differences = await checkConsistency(
        { db },
        actor,
        countingProgress(
          checking,
          'checking: reading every subscription',
          "checking: comparing every customer's input now with the stored one",
        ),
      );
    } finally {
      checking.finish();
    }
    console.log(
      `checked in ${((performance.now() - checked) / 1000).toFixed(1)} s: ${differences.length === 0 ? 'consistent' : `${differences.length} differences`}`,
    );
    for (const d of differences.slice(0, 20)) console.log(JSON.stringify(d));
    if (differences.length > 0) process.exitCode = 1;
  } finally {
    await db.destroy();
    await database.stop();
  }
});
