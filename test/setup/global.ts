// Once per run: a PostgreSQL 16 server per test worker (embedded; or TEST_DATABASE_URL's, one), a
// migrated template database in each, and an empty log for the requests each test file makes (see test/contract/).
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/database/connection.js';
import { migrateToLatest } from '../../src/database/migrator.js';
import { installQueue } from '../../src/worker.js';
import {
  databaseUrl,
  dropDatabase,
  ensureDatabase,
  startEmbeddedPostgres,
} from '../../src/database/embedded.js';
import { OPERATIONS_LOG } from '../contract/operations.js';

export const TEMPLATE = 'subscriptions_test_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** One PostgreSQL server per test worker (testServerUrl picks this worker's). */
    serverUrls: string[];
    templateDatabase: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** One cluster, with the migrated template database and pg-boss's queue in it. */
async function startCluster(external: string | undefined): Promise<{ url: string; stop(): Promise<void> }> {
  const server = external
    ? { url: external, stop: async () => {} }
    : await startEmbeddedPostgres({
        dataDir: path.resolve(`.data/test-cluster-${process.pid}-${randomUUID().slice(0, 8)}`),
        port: await freePort(),
        ephemeral: true,
        // Durability buys nothing for a throwaway cluster; these make writes several times faster.
        settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
      });
  try {
    await dropDatabase(server.url, TEMPLATE);
    await ensureDatabase(server.url, TEMPLATE);
    const db = createDb(databaseUrl(server.url, TEMPLATE), { poolSize: 1 });
    try {
      await migrateToLatest(db);
    } finally {
      await db.destroy();
    }
    // pg-boss's schema and queue, cloned into every test database with the rest.
    await installQueue(databaseUrl(server.url, TEMPLATE), {
      inProcess: false,
      timeoutSeconds: 300,
      pollSeconds: 1,
      settlementDelayScale: 1,
    });
    return server;
  } catch (error) {
    await server.stop(); // never leave an orphan server behind
    throw error;
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.TEST_DATABASE_URL;
  // One embedded cluster per test worker: the event feed hands out events of transactions older
  // than every transaction running in the cluster (pg_snapshot_xmin), so a file holding a
  // transaction open would hold back the feed of a file running beside it in the same cluster.
  const count = external ? 1 : Math.max(1, Number(project.config.maxWorkers) || 1);
  const started = await Promise.allSettled(Array.from({ length: count }, () => startCluster(external)));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }

  rmSync(OPERATIONS_LOG, { recursive: true, force: true });
  mkdirSync(OPERATIONS_LOG, { recursive: true });
  project.provide(
    'serverUrls',
    servers.map((s) => s.url),
  );
  project.provide('templateDatabase', TEMPLATE);

  return async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
}
