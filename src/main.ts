// config → database → migrations → app → listen; stops cleanly on SIGINT/SIGTERM.
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { openDatabase } from './database.js';
import { createDb } from './db.js';
import { createHttpServer } from './http/server.js';
import { migrateToLatest } from './migrator.js';

const config = loadConfig();
const database = await openDatabase(config);

// Migrations run as the URL's user (the owner); each request's transaction switches to the app
// role (withTenant), under RLS.
const db = createDb(database.url, {
  poolSize: config.dbPoolSize,
  connectTimeoutMs: config.dbConnectTimeoutMs,
});
for (const step of await migrateToLatest(db)) console.log(`migrated: ${step}`);

const app = createApp({ db, ...config });
const server = createHttpServer(app).listen(config.port, config.host, () => {
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
