// config → database → migrations → one server (WORKERS=1) or a cluster of them → listen.
// SIGTERM or SIGINT: stop accepting, let the requests in flight finish (SHUTDOWN_DRAIN_SECONDS),
// close the pool, stop an embedded database, exit 0. Any startup failure is one line on stderr
// and exit 1 (src/startup.ts).
import cluster from 'node:cluster';
import { startPrimary } from './cluster.js';
import { loadConfig } from './config.js';
import { createDb } from './database/connection.js';
import { ensurePortFree } from './http/server.js';
import { takeOverShutdownSignals } from './database/embedded.js';
import { migrateToLatest } from './database/migrator.js';
import { openDatabase } from './database/open.js';
import { createLogger, type Logger } from './logger.js';
import { startServer } from './server.js';
import { runMain } from './startup.js';
import { installQueue, type RunningWorker, startWorker } from './worker.js';

/** Runs stop on the first SIGTERM/SIGINT, cut on another one a second or more later. */
function onShutdownSignal(logger: Logger, stop: (signal: NodeJS.Signals) => Promise<void>, cut: () => void) {
  let first: number | undefined;
  takeOverShutdownSignals();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      // Ctrl-C reaches a cluster's workers twice (from the terminal and from the primary).
      if (first !== undefined) {
        if (Date.now() - first > 1000) {
          logger.info(`${signal} again: cutting the requests still in flight`);
          cut();
        }
        return;
      }
      first = Date.now();
      stop(signal)
        .then(async () => {
          logger.info('stopped');
          await new Promise<void>((resolve) => logger.flush(() => resolve()));
          process.exit(0);
        })
        .catch((error: unknown) => {
          console.error(`error: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
          process.exit(1);
        });
    });
  }
}

runMain(async () => {
  const config = loadConfig();
  // JSON lines for machines; readable lines when a person watches a terminal (make start).
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY });

  if (cluster.isWorker) {
    // The primary passed its database as DATABASE_URL and migrated it already.
    const server = await startServer(config, config.databaseUrl!, logger);
    onShutdownSignal(
      logger,
      () => server.stop(),
      () => server.cut(),
    );
    return;
  }

  await ensurePortFree(config.port, config.host);
  // The first start creates the embedded cluster (initdb): some 15 s with nothing else to show.
  if (!config.databaseUrl)
    logger.info(
      `starting the embedded PostgreSQL (port ${config.embedded.port}, data in ${config.embedded.dataDir}; its first start creates it)`,
    );
  const database = await openDatabase(config);
  let port: number;
  let stop: (signal: NodeJS.Signals) => Promise<void>;
  let cut: () => void;
  let worker: RunningWorker | undefined;
  try {
    // Migrations run as the URL's user (the owner).
    const owner = createDb(database.url, { poolSize: 1 });
    try {
      for (const step of await migrateToLatest(owner, (line) => logger.info(line)))
        logger.info(`migrated: ${step}`);
    } finally {
      await owner.destroy();
    }
    await installQueue(database.url, config.jobs);
    // In this process (the cluster's primary when WORKERS > 1), beside the servers.
    if (config.jobs.inProcess)
      worker = await startWorker(database.url, logger, { jobs: config.jobs, webhooks: config.webhooks });
    if (config.workers === 1) {
      const server = await startServer(config, database.url, logger);
      port = server.port;
      stop = () => server.stop();
      cut = () => server.cut();
    } else {
      const primary = startPrimary(config, database.url, logger);
      port = await primary.ready;
      stop = (signal) => primary.stop(signal);
      cut = () => primary.cut();
    }
  } catch (error) {
    await worker?.stop(0);
    await database.stop();
    throw error;
  }

  // Handlers first: the line below tells a supervisor we are up, and it can reach one before the
  // next statement runs (a full log buffer is written from libuv's threads). A SIGTERM then found
  // no handler and the default action killed the process (CI, lifecycle.test.ts, exit code null).
  onShutdownSignal(
    logger,
    async (signal) => {
      logger.info(
        `${signal}: not accepting connections; up to ${config.drainTimeoutMs / 1000} s for requests in flight`,
      );
      await Promise.all([stop(signal), worker?.stop(config.drainTimeoutMs)]);
      await database.stop();
    },
    () => cut(),
  );
  const where = config.databaseUrl ? 'DATABASE_URL' : `embedded PostgreSQL on port ${config.embedded.port}`;
  const processes =
    (config.workers === 1 ? '' : `, ${config.workers} server processes`) +
    (config.jobs.inProcess ? ', background jobs on' : ', background jobs off (run make worker)');
  logger.info(
    `Subscriptions API (pid ${process.pid}) on http://localhost:${port} (docs: /docs, database: ${where}${processes})`,
  );
  if (!config.platformAdminKey)
    logger.info('PLATFORM_ADMIN_KEY is unset: create tenants with `make tenant NAME=...`');
});
