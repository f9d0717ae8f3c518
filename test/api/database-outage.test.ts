// The database going away under a running app: every way it can be unreachable answers 503
// problem+json with Retry-After, never a 500, and the app recovers when the database is back.
import { sql } from 'kysely';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createDb, type Db } from '../../src/database/connection.js';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createUser } from '../helpers/factories.js';
import { holdLocks, waitForLockWaiters } from '../helpers/locks.js';
import { captureLogs } from '../helpers/logs.js';
import { expectProblem } from '../helpers/problems.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const ctx = useTestApp();
let proxy: TcpProxy;
let db: Db;
let api: supertest.Agent;
const captured = captureLogs();
const unexpected = captured.errors;

beforeAll(async () => {
  proxy = await startTcpProxy(ctx.url);
  db = createDb(proxy.url, { poolSize: 2, connectTimeoutMs: 500, asAppRole: true });
  const app = createApp({ db, validateResponses: true, logger: captured.logger });
  api = supertest.agent(app).set('Authorization', `Bearer ${ctx.tenant.key}`);
});

afterAll(async () => {
  await db.destroy();
  await proxy.close();
});

function expectUnavailable(res: supertest.Response) {
  expectProblem(res, 503, 'service-unavailable');
  expect(res.headers['retry-after']).toBe('5');
}

describe('when the database is unreachable', () => {
  it('answers 503 with Retry-After for reads, writes and readiness, and writes nothing', async () => {
    expect((await api.get('/api/v1/users')).status).toBe(200); // pooled connections exist
    await proxy.stop();
    expectUnavailable(await api.get('/api/v1/users'));
    expectUnavailable(await api.post('/api/v1/users').send({ name: 'Ada', email: 'ada@example.com' }));
    expectUnavailable(await api.get('/readyz'));
    expect((await api.get('/healthz')).status).toBe(200);

    await proxy.start();
    const before = await fingerprint(ctx.db);
    expect(before['public.users']).toMatch(/^0:/);
    expect((await api.get('/api/v1/users')).status).toBe(200);
    expect((await api.get('/readyz')).status).toBe(200);
  });

  it('answers 503 when the connection drops in the middle of a request', async () => {
    const user = await createUser(ctx);
    // Hold the user's row so the PATCH is in flight, waiting on the lock, when the proxy drops.
    const held = await holdLocks(ctx.db, sql`select 1 from users where id = ${user.id} for update`);
    const patch = api
      .patch(`/api/v1/users/${user.id}`)
      .send({ name: 'Renamed' })
      .then((res) => res);
    await waitForLockWaiters(ctx.db);
    await proxy.stop();
    expectUnavailable(await patch);
    await held.release();
    await proxy.start();
    const stored = await ctx.db
      .selectFrom('users')
      .select('name')
      .where('id', '=', user.id)
      .executeTakeFirst();
    expect(stored?.name).toBe(user.name);
  });

  it('answers 503 when connecting times out (a host that never answers)', async () => {
    await db.destroy(); // no pooled connection may hide the outage
    db = createDb(proxy.url, { poolSize: 2, connectTimeoutMs: 500, asAppRole: true });
    const app = createApp({ db, validateResponses: true, logger: captured.logger });
    const fresh = supertest(app);
    await proxy.blackhole();
    const started = Date.now();
    expectUnavailable(await fresh.get('/api/v1/users').set('Authorization', `Bearer ${ctx.tenant.key}`));
    expect(Date.now() - started).toBeLessThan(5000);
    await proxy.start();
  });

  it('logged no unexpected error', () => {
    expect(unexpected).toEqual([]);
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
