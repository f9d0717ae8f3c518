// `make migrate`: tsx src/cli/migrate.ts [latest|down|redo]
import { NO_MIGRATIONS } from 'kysely';
import { loadConfig } from '../config.js';
import { openDatabase } from '../database/open.js';
import { createDb } from '../database/connection.js';
import { createMigrator, unwrap } from '../database/migrator.js';
import { runMain } from '../startup.js';

const command = process.argv[2] ?? 'latest';
if (!['latest', 'down', 'redo'].includes(command)) {
  console.error('usage: migrate [latest|down|redo]  (redo = down all, then up: checks every down works)');
  process.exit(2);
}

runMain(async () => {
  const database = await openDatabase(loadConfig());
  const db = createDb(database.url, { poolSize: 1 });
  try {
    // A step still running after a second says so (stderr); the summary at the end.
    const migrator = createMigrator(db, (line) => console.error(line));
    const steps: string[] = [];
    if (command === 'down') steps.push(...unwrap(await migrator.migrateDown()));
    if (command === 'redo') {
      steps.push(...unwrap(await migrator.migrateTo(NO_MIGRATIONS)));
    }
    if (command !== 'down') steps.push(...unwrap(await migrator.migrateToLatest()));
    console.log(steps.length ? steps.join('\n') : 'already up to date');
  } finally {
    await db.destroy();
    await database.stop();
  }
});
