// Each test file gets its own database, cloned from the migrated template, and the app in-process
// with response validation on: a response that breaks openapi.yaml fails the test that caused it.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import supertest from 'supertest';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { type AppOptions, createApp } from '../../src/app.js';
import type { Schemas } from '../../src/contract.js';
import { createDb, type Db } from '../../src/database/connection.js';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/database/embedded.js';
import { createHttpServer, drain, listen } from '../../src/http/server.js';
import { createClient, type SubscriptionsClient } from '../../clients/typescript/src/index.js';
import { OPERATIONS_LOG, type RecordedRequest } from '../contract/operations.js';
import { captureLogs, type LogLine } from './logs.js';

export const PLATFORM_KEY = 'test-platform-admin-key-0123456789abcdef';

export type Api = ReturnType<typeof supertest.agent>;

export interface TestTenant {
  id: string;
  /** The tenant's first (admin) key. */
  key: string;
  /** Requests carrying that key. */
  api: Api;
}

export interface TestContext {
  /** This test file's database. */
  url: string;
  /** The database owner's connection: sees every tenant's rows, for assertions about state. */
  db: Db;
  /** The connection the app uses: role subscriptions_app, under row-level security. */
  appDb: Db;
  /** Requests as tenant A's admin key. */
  api: Api;
  tenant: TestTenant;
  /** Requests without credentials. */
  anonymous: ReturnType<typeof supertest>;
  /** Another tenant, through POST /api/v1/tenants. */
  newTenant(name?: string): Promise<TestTenant>;
  /** Requests carrying this Authorization key. */
  withKey(key: string): Api;
  /** A second app on the same database, with other options (e.g. a low rate limit). */
  appWith(options: Partial<AppOptions>): ReturnType<typeof supertest>;
  /** Errors the app logged as unexpected (500s); tests assert it stays empty. */
  unexpectedErrors: unknown[];
  /** Every line the app logged (access log, warnings, errors). */
  logs: LogLine[];
  /** The same app listening on a real port (started on first use): its base URL. */
  baseUrl(): Promise<string>;
  /** The typed SDK (clients/typescript) with this key, against that real port. */
  sdk(key: string): Promise<SubscriptionsClient>;
}

/** This test worker's PostgreSQL server (test/setup/global.ts starts one per worker). */
export function testServerUrl(): string {
  const urls = inject('serverUrls');
  return urls[(Number(process.env.VITEST_POOL_ID ?? 1) - 1) % urls.length]!;
}

/** appOptions: for the app that ctx.api and ctx.baseUrl() reach (e.g. the webhook URL policy). */
export function useTestApp(appOptions: Partial<AppOptions> = {}): TestContext {
  const database = `test_${randomUUID().replaceAll('-', '')}`;
  const serverUrl = testServerUrl();
  const requests: RecordedRequest[] = [];
  const captured = captureLogs();
  const ctx = { unexpectedErrors: captured.errors, logs: captured.lines } as TestContext;
  let server: http.Server | undefined;

  // Records each request's operation for the coverage check in test/contract/.
  const recorded = (options: Partial<AppOptions> = {}) => {
    const app = createApp({
      db: ctx.appDb,
      validateResponses: true,
      platformAdminKey: PLATFORM_KEY,
      rateLimitPerMinute: 1_000_000,
      logger: captured.logger,
      ...options,
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
    return recorder;
  };

  beforeAll(async () => {
    await ensureDatabase(serverUrl, database, inject('templateDatabase'));
    const url = databaseUrl(serverUrl, database);
    ctx.url = url;
    ctx.db = createDb(url, { poolSize: 2 });
    ctx.appDb = createDb(url, { poolSize: 4, asAppRole: true });
    const app = recorded(appOptions);
    ctx.anonymous = supertest(app);
    ctx.withKey = (key) => supertest.agent(app).set('Authorization', `Bearer ${key}`);
    ctx.appWith = (options) => supertest(recorded(options));
    ctx.newTenant = async (name = `Tenant ${randomUUID().slice(0, 8)}`) => {
      const res = await ctx.withKey(PLATFORM_KEY).post('/api/v1/tenants').send({ name });
      expect(res.status, String(ctx.unexpectedErrors.at(-1))).toBe(201);
      const created = res.body as Schemas['TenantWithKey'];
      return { id: created.tenant.id, key: created.api_key.key, api: ctx.withKey(created.api_key.key) };
    };
    ctx.tenant = await ctx.newTenant('Tenant A');
    ctx.api = ctx.tenant.api;
    let listening: Promise<string> | undefined;
    ctx.baseUrl = () =>
      (listening ??= (async () => {
        server = createHttpServer(app);
        await listen(server, 0, '127.0.0.1');
        return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      })());
    ctx.sdk = async (key) => createClient({ baseUrl: await ctx.baseUrl(), apiKey: key, retryBaseMs: 20 });
  });

  afterAll(async () => {
    if (server) await drain(server, 1000);
    appendFileSync(
      path.join(OPERATIONS_LOG, `${process.pid}.jsonl`),
      requests.map((r) => JSON.stringify(r) + '\n').join(''),
    );
    await ctx.appDb.destroy();
    await ctx.db.destroy();
    await dropDatabase(serverUrl, database);
  });

  return ctx;
}
