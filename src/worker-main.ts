// `make worker`: the background worker alone (for operators who scale it apart from the API; run
// the API with JOBS=off then). Same database settings as the server; with METRICS_TOKEN set it
// serves GET /metrics on WORKER_METRICS_PORT (default 9464); SIGTERM or SIGINT finishes
// the running job (up to SHUTDOWN_DRAIN_SECONDS; a job cut off is run again later) and exits 0.
import { loadConfig } from './config.js';
import { createDb } from './database/connection.js';
import { takeOverShutdownSignals } from './database/embedded.js';
import { migrateToLatest } from './database/migrator.js';
import { openDatabase } from './database/open.js';
import { startWorkerMetricsServer } from './http/metrics.js';
import { createLogger } from './logger.js';
import { runMain } from './startup.js';
import { startWorker } from './worker.js';

runMain(async () => {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY });
  const database = await openDatabase(config);
  const owner = createDb(database.url, { poolSize: 1 });
  try {
    for (const step of await migrateToLatest(owner, (line) => logger.info(line)))
      logger.info(`migrated: ${step}`);
  } finally {
    await owner.destroy();
  }
  // The metrics port first: a busy one fails the start before any job runs.
  const metrics =
    config.metricsToken === undefined
      ? undefined
      : await startWorkerMetricsServer(config.jobs.metricsPort, config.host, config.metricsToken);
  const worker = await startWorker(database.url, logger, { jobs: config.jobs, webhooks: config.webhooks });
  // Handlers before the line that says we are up: a SIGTERM right after it must find them.
  takeOverShutdownSignals();
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info(`${signal}: finishing the running job`);
      void Promise.all([worker.stop(config.drainTimeoutMs), metrics?.close()])
        .then(() => database.stop())
        .then(
          () => process.exit(0),
          (error: unknown) => {
            console.error(
              `error: shutdown failed: ${error instanceof Error ? error.message : String(error)}`,
            );
            process.exit(1);
          },
        );
    });
  }
  logger.info(
    `Subscriptions API worker (pid ${process.pid})` +
      (metrics
        ? `, metrics on http://localhost:${metrics.port}/metrics`
        : ', metrics off (set METRICS_TOKEN)'),
  );
});
