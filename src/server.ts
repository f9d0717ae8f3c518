// One serving process: the app's pool, the Express app and the HTTP server, listening. Used by
// main.ts directly (WORKERS=1) or in each cluster worker (cluster.ts).
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { createDb } from './database/connection.js';
import { clusterWriteTurns } from './http/cluster-write-turns.js';
import { createHttpServer, drain, listen } from './http/server.js';
import type { Logger } from './logger.js';
import { purgeExpiredIdempotencyKeys } from './services/maintenance.js';

export interface RunningServer {
  readonly port: number;
  /** Stops accepting, lets requests in flight finish (drainTimeoutMs), closes the pool. */
  stop(): Promise<void>;
  /** Cuts the requests still in flight (a second signal). */
  cut(): void;
}

/** Resolves when the promise does or after ms, whichever comes first. */
const atMost = (ms: number, promise: Promise<unknown>) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms).unref())]);

export async function startServer(
  config: Config,
  databaseUrl: string,
  logger: Logger,
): Promise<RunningServer> {
  // The pool logs in as the URL's user, but every one of its connections is the app role (RLS).
  const db = createDb(databaseUrl, {
    poolSize: config.dbPoolSize,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    asAppRole: true,
  });
  // A cluster's workers take their writes' turns from the primary (http/cluster-write-turns.ts).
  const writeConcurrency = cluster.isWorker ? clusterWriteTurns() : config.writeConcurrency;
  const server = createHttpServer(createApp({ db, logger, ...config, writeConcurrency }));
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  // Expired idempotency keys go once an hour (every process does it; it is idempotent).
  const purge = () =>
    purgeExpiredIdempotencyKeys({ db }).then(
      (n) => n > 0 && logger.info({ deleted: n }, 'purged expired idempotency keys'),
      (error: unknown) => logger.warn({ err: error }, 'could not purge idempotency keys'),
    );
  const purging = setInterval(() => void purge(), 60 * 60 * 1000);
  purging.unref();
  void purge();
  return {
    port: (server.address() as AddressInfo).port,
    async stop() {
      clearInterval(purging);
      if (!(await drain(server, config.drainTimeoutMs))) {
        logger.info('drain timeout: the requests still in flight were cut');
      }
      // A query cut by the drain timeout may still hold its connection; do not wait on it forever.
      await atMost(2000, db.destroy());
    },
    cut: () => server.closeAllConnections(),
  };
}
