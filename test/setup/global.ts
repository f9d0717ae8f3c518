// Once per run: one PostgreSQL 16 server (embedded, or TEST_DATABASE_URL's), a migrated template
// database, and an empty log for the requests each test file makes (see test/contract/).
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
    serverUrl: string;
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

export default async function setup(project: TestProject) {
  const external = process.env.TEST_DATABASE_URL;
  const server = external
    ? { url: external, stop: async () => {} }
    : await startEmbeddedPostgres({
        dataDir: path.resolve(`.data/test-cluster-${process.pid}`),
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
  } catch (error) {
    await server.stop(); // never leave an orphan server behind
    throw error;
  }

  rmSync(OPERATIONS_LOG, { recursive: true, force: true });
  mkdirSync(OPERATIONS_LOG, { recursive: true });
  project.provide('serverUrl', server.url);
  project.provide('templateDatabase', TEMPLATE);

  return async () => {
    await server.stop();
  };
}
