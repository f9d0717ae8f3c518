// config → database → migrations → app → listen. SIGTERM or SIGINT: stop accepting, let the
// requests in flight finish (SHUTDOWN_DRAIN_SECONDS), close the pool, stop an embedded
// database, exit 0. Any startup failure is one line on stderr and exit 1 (src/startup.ts).
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { openDatabase } from './database/open.js';
import { createDb } from './database/connection.js';
import { createHttpServer, drain, listen } from './http/server.js';
import { migrateToLatest } from './database/migrator.js';
import { takeOverShutdownSignals } from './database/embedded.js';
import { runMain } from './startup.js';

/** Resolves when the promise does or after ms, whichever comes first. */
const atMost = (ms: number, promise: Promise<unknown>) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms).unref())]);

runMain(async () => {
  const config = loadConfig();
  // JSON lines for machines; readable lines when a person watches a terminal (make start).
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY });
  const database = await openDatabase(config);
  // Migrations run as the URL's user (the owner); the app's own pool logs in as that user too but
  // every one of its connections is the app role, under RLS.
  const db = createDb(database.url, {
    poolSize: config.dbPoolSize,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    asAppRole: true,
  });
  const server = createHttpServer(createApp({ db, logger, ...config }));
  try {
    const owner = createDb(database.url, { poolSize: 1 });
    try {
      for (const step of await migrateToLatest(owner)) logger.info(`migrated: ${step}`);
    } finally {
      await owner.destroy();
    }
    await listen(server, config.port, config.host);
  } catch (error) {
    await db.destroy();
    await database.stop();
    throw error;
  }

  const { port } = server.address() as AddressInfo;
  const where = config.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL on port ${config.embedded.port}`;
  logger.info(
    `Subscriptions API (pid ${process.pid}) on http://localhost:${port} (docs: /docs, database: ${where})`,
  );
  if (!config.platformAdminKey)
    logger.info('PLATFORM_ADMIN_KEY is unset: create tenants with `make tenant NAME=...`');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.info(`${signal} again: cutting the requests still in flight`);
      server.closeAllConnections();
      return;
    }
    stopping = true;
    logger.info(
      `${signal}: not accepting connections; up to ${config.drainTimeoutMs / 1000} s for requests in flight`,
    );
    if (!(await drain(server, config.drainTimeoutMs))) {
      logger.info('drain timeout: the requests still in flight were cut');
    }
    // A query cut by the drain timeout may still hold its connection; do not wait on it forever.
    await atMost(2000, db.destroy());
    await database.stop();
    logger.info('stopped');
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    process.exit(0);
  };
  takeOverShutdownSignals();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      shutdown(signal).catch((error: unknown) => {
        console.error(`error: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      });
    });
  }
});
