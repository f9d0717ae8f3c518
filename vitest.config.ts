import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    pool: 'forks',
    // A test file spends much of its time waiting for PostgreSQL, so one file per core keeps the
    // cores busy. Vitest's default, one fewer than the cores, ran one file at a time on 2 cores:
    // the suite took 888 s that way and 544 s with two files at once.
    maxWorkers: Math.max(2, availableParallelism()),
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
