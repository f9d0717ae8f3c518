import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    pool: 'forks',
    // Files share their worker's module cache instead of importing the app again each (171 s of
    // imports in all): a clean-clone `.ci/run` took 512.7 s for the suite this way against 653 s
    // isolated. Tests keep no module state of their own between files (each makes its tenant).
    isolate: false,
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
