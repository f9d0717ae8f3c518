// config → database → migrations → app → listen; stops cleanly on SIGINT/SIGTERM.
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { openDatabase } from './database.js';
import { createDb } from './db.js';
import { migrateToLatest } from './migrator.js';

const config = loadConfig();
const database = await openDatabase(config);
const db = createDb(database.url, config.dbPoolSize);
for (const step of await migrateToLatest(db)) console.log(`migrated: ${step}`);

const app = createApp({ db, validateResponses: config.validateResponses, bodyLimit: config.bodyLimit });
const server = app.listen(config.port, config.host, () => {
  const where = config.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL on port ${config.embedded.port}`;
  console.log(`Subscriptions API on http://localhost:${config.port} (docs: /docs, database: ${where})`);
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
