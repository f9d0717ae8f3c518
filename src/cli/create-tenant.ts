// `make tenant NAME="Acme Inc."`: creates a tenant and prints its first admin key (shown once).
import { loadConfig } from '../config.js';
import { openDatabase } from '../database.js';
import { APP_ROLE, createDb } from '../db.js';
import { migrateToLatest } from '../migrator.js';
import { createTenant } from '../routes/tenants.js';

const name = process.argv.slice(2).join(' ').trim();
if (!name || name.length > 200) {
  console.error('usage: make tenant NAME="Acme Inc."  (1 to 200 characters)');
  process.exit(2);
}

const database = await openDatabase(loadConfig());
const owner = createDb(database.url, { poolSize: 1 });
const app = createDb(database.url, { poolSize: 1, role: APP_ROLE });
try {
  await migrateToLatest(owner);
  const { tenant, api_key } = await createTenant(app, name);
  console.log(`tenant  ${tenant.id}  ${tenant.name}`);
  console.log(`api key ${api_key.key}`);
  console.log('This is the only time the key is shown: store it now. Use it as Authorization: Bearer <key>.');
} finally {
  await app.destroy();
  await owner.destroy();
  await database.stop();
}
