// Where the app's database lives: DATABASE_URL, or an embedded PostgreSQL 16 under .data/.
import type { Config } from './config.js';
import { databaseUrl, ensureDatabase, startEmbeddedPostgres } from './postgres.js';

export interface DatabaseHandle {
  readonly url: string;
  stop(): Promise<void>;
}

const EMBEDDED_DATABASE = 'subscriptions';

export async function openDatabase(config: Config): Promise<DatabaseHandle> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  const server = await startEmbeddedPostgres(config.embedded);
  await ensureDatabase(server.url, EMBEDDED_DATABASE);
  return { url: databaseUrl(server.url, EMBEDDED_DATABASE), stop: () => server.stop() };
}
