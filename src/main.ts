// config → database → migrations → app → listen; stops cleanly on SIGINT/SIGTERM.
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { openDatabase } from './database.js';
import { APP_ROLE, createDb } from './db.js';
import { migrateToLatest } from './migrator.js';

const config = loadConfig();
const database = await openDatabase(config);

// Migrations run as the URL's user (the owner); requests run as the app role, under RLS.
const owner = createDb(database.url, { poolSize: 1 });
try {
  for (const step of await migrateToLatest(owner)) console.log(`migrated: ${step}`);
} finally {
  await owner.destroy();
}
const db = createDb(database.url, { poolSize: config.dbPoolSize, role: APP_ROLE });

const app = createApp({ db, ...config });
const server = app.listen(config.port, config.host, () => {
  const where = config.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL on port ${config.embedded.port}`;
  console.log(`Subscriptions API on http://localhost:${config.port} (docs: /docs, database: ${where})`);
  if (!config.platformAdminKey)
    console.log('PLATFORM_ADMIN_KEY is unset: create tenants with `make tenant NAME=...`');
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing`);
  server.close();
  await db.destroy();
  await database.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
