// Each test file gets its own database, cloned from the migrated template, and the app in-process
// with response validation on: a response that breaks openapi.yaml fails the test that caused it.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import supertest from 'supertest';
import { afterAll, beforeAll, inject } from 'vitest';
import { createApp } from '../../src/app.js';
import { createDb, type Db } from '../../src/db.js';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/postgres.js';
import { OPERATIONS_LOG, type RecordedRequest } from '../contract/operations.js';

export interface TestContext {
  db: Db;
  api: ReturnType<typeof supertest>;
  /** Errors the app logged as unexpected (500s); tests assert it stays empty. */
  unexpectedErrors: unknown[];
}

export function useTestApp(): TestContext {
  const ctx = { unexpectedErrors: [] as unknown[] } as TestContext;
  const database = `test_${randomUUID().replaceAll('-', '')}`;
  const serverUrl = inject('serverUrl');
  const requests: RecordedRequest[] = [];

  beforeAll(async () => {
    await ensureDatabase(serverUrl, database, inject('templateDatabase'));
    ctx.db = createDb(databaseUrl(serverUrl, database), 4);
    const app = createApp({
      db: ctx.db,
      validateResponses: true,
      log: (_message, error) => ctx.unexpectedErrors.push(error),
    });
    const recorder = express();
    recorder.use((req, res, next) => {
      res.on('finish', () =>
        requests.push({
          method: req.method,
          path: req.originalUrl.split('?')[0] ?? '',
          status: res.statusCode,
        }),
      );
      next();
    });
    recorder.use(app);
    ctx.api = supertest(recorder);
  });

  afterAll(async () => {
    const log = path.join(OPERATIONS_LOG, `${process.pid}.jsonl`);
    appendFileSync(log, requests.map((r) => JSON.stringify(r) + '\n').join(''));
    await ctx.db.destroy();
    await dropDatabase(serverUrl, database);
  });

  return ctx;
}
