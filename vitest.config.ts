import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    pool: 'forks',
    // A test file spends much of its time waiting for PostgreSQL, so one file per core keeps the
    // cores busy. Vitest's default, one fewer than the cores, ran one file at a time on 2 cores:
    // the suite took 888 s that way and 544 s with two files at once. Each worker gets a cluster
    // of its own (test/setup/global.ts); on TEST_DATABASE_URL's one server, files run one at a
    // time, as the event feed of one waits for transactions of any other in its cluster.
    maxWorkers: process.env.TEST_DATABASE_URL ? 1 : Math.max(2, availableParallelism()),
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
