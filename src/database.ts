// Where the app's database lives: DATABASE_URL, or an embedded PostgreSQL 16 under .data/.
import type { Config } from './config.js';
import pg from 'pg';
import { databaseUrl, embeddedUrl, ensureDatabase, startEmbeddedPostgres } from './postgres.js';

export interface DatabaseHandle {
  readonly url: string;
  stop(): Promise<void>;
}

const EMBEDDED_DATABASE = 'subscriptions';

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function openDatabase(config: Config): Promise<DatabaseHandle> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  // `make start` may already run the embedded server: commands such as `make tenant` then share it.
  const running = embeddedUrl(config.embedded.port);
  if (await answers(running)) {
    await ensureDatabase(running, EMBEDDED_DATABASE);
    return { url: databaseUrl(running, EMBEDDED_DATABASE), stop: async () => {} };
  }
  const server = await startEmbeddedPostgres(config.embedded);
  await ensureDatabase(server.url, EMBEDDED_DATABASE);
  return { url: databaseUrl(server.url, EMBEDDED_DATABASE), stop: () => server.stop() };
}
