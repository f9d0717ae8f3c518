// WORKERS > 1: this process (the primary) owns the database (embedded or not) and the migrations,
// and forks WORKERS server processes that share the port (node:cluster hands connections out).
// A worker that dies is replaced; SIGTERM or SIGINT is passed to every worker, which drains, and
// the primary exits once they all have, after stopping an embedded database.
import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config.js';
import { serveClusterWriteTurns } from './http/cluster-write-turns.js';
import { serveClusterMetrics } from './http/metrics.js';
import type { Logger } from './logger.js';
import { StartupError } from './startup.js';

export interface Primary {
  /** Resolves once every worker listens, with the shared port. */
  ready: Promise<number>;
  /** Passes the signal to the workers; resolves when they have all exited. */
  stop(signal: NodeJS.Signals): Promise<void>;
  /** Signals the workers again: they cut the requests still in flight. */
  cut(): void;
}

export function startPrimary(config: Config, databaseUrl: string, logger: Logger): Primary {
  serveClusterMetrics();
  // One gate for the writes of every worker: reads anywhere hold them back (write-gate.ts).
  serveClusterWriteTurns(config.writeConcurrency * config.workers);
  // A worker that fails while starting (a busy port, say) has said why on stderr: give up then.
  let started = false;
  let stopping = false;
  const live = new Set<Worker>();
  // Workers use the database the primary opened: they never start or migrate one themselves.
  const fork = () => {
    const worker = cluster.fork({ DATABASE_URL: databaseUrl });
    live.add(worker);
    worker.on('exit', (code, signal) => {
      live.delete(worker);
      if (stopping || !started) return;
      logger.error({ worker_pid: worker.process.pid, code, signal }, 'worker died; starting another');
      setTimeout(fork, 1000).unref();
    });
    return worker;
  };

  const ready = Promise.all(
    Array.from(
      { length: config.workers },
      () =>
        new Promise<number>((resolve, reject) => {
          const worker = fork();
          worker.once('listening', (address) => resolve(address.port));
          worker.once('exit', (code) =>
            reject(new StartupError(`a worker process exited with code ${code} while starting (see above)`)),
          );
        }),
    ),
  ).then(
    (ports) => {
      started = true;
      return ports[0]!;
    },
    (error: unknown) => {
      stopping = true;
      for (const worker of live) worker.process.kill('SIGTERM');
      throw error;
    },
  );

  return {
    ready,
    stop(signal) {
      stopping = true;
      return new Promise((resolve) => {
        if (live.size === 0) return resolve();
        for (const worker of live) {
          worker.once('exit', () => live.size === 0 && resolve());
          worker.process.kill(signal);
        }
      });
    },
    cut() {
      for (const worker of live) worker.process.kill('SIGTERM');
    },
  };
}
