// `make tenant NAME="Acme Inc."`: creates a tenant and prints its first admin key (shown once).
import { loadConfig } from '../config.js';
import { openDatabase } from '../database/open.js';
import { createDb } from '../database/connection.js';
import { migrateToLatest } from '../database/migrator.js';
import { createTenant } from '../services/tenants.js';
import { runMain } from '../startup.js';

const name = process.argv.slice(2).join(' ').trim();
if (!name || name.length > 200) {
  console.error('usage: make tenant NAME="Acme Inc."  (1 to 200 characters)');
  process.exit(2);
}

runMain(async () => {
  const database = await openDatabase(loadConfig());
  const db = createDb(database.url, { poolSize: 1 });
  try {
    await migrateToLatest(db);
    const { tenant, apiKey } = await createTenant({ db }, name);
    console.log(`tenant  ${tenant.id}  ${tenant.name}`);
    console.log(`api key ${apiKey.key}`);
    console.log(
      'This is the only time the key is shown: store it now. Use it as Authorization: Bearer <key>.',
    );
  } finally {
    await db.destroy();
    await database.stop();
  }
});
