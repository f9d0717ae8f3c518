// The canary run: the project's own test settings (the same global setup, which starts
// PostgreSQL) on one file of this folder only. Those files sit outside the normal test globs.
import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default defineConfig({
  test: { ...base.test, include: [`test/canary/${process.env.CANARY ?? 'failing'}.canary.ts`] },
});
