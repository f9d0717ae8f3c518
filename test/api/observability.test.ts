// Request ids, the access log and /metrics: what an operator sees of each request.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { startWorkerMetricsServer } from '../../src/http/metrics.js';
import { createLogger } from '../../src/logger.js';
import { startWorker } from '../../src/worker.js';
import { useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
const METRICS_TOKEN = 'metrics-token-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const logOf = (requestId: string) => ctx.logs.filter((line) => line.request_id === requestId);

describe('X-Request-Id', () => {
  it('echoes a well-formed id, in the header, the problem body and the access log line', async () => {
    const id = 'trace-4bf92f35.77/b7ad:6b7169203331';
    const res = await ctx.api
      .get('/api/v1/users/0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f70')
      .set('X-Request-Id', id);
    expect(res.headers['x-request-id']).toBe(id);
    expect(expectProblem(res, 404, 'not-found').request_id).toBe(id);
    await new Promise((resolve) => setImmediate(resolve));
    expect(logOf(id)).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'request',
        method: 'GET',
        path: '/api/v1/users/0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f70',
        operation: 'getUser',
        status: 404,
        latency_ms: expect.any(Number),
        tenant_id: ctx.tenant.id,
        key_id: expect.stringMatching(UUID),
      }),
    ]);
  });

  it('replaces a missing or malformed id with a generated UUID', async () => {
    for (const given of [undefined, 'has spaces in it', 'x'.repeat(129), 'quote"d']) {
      const req = ctx.api.get('/healthz');
      if (given !== undefined) void req.set('X-Request-Id', given);
      const res = await req;
      expect(res.headers['x-request-id'], given).toMatch(UUID);
    }
  });

  it('gives every response an id, those refused before any route included', async () => {
    const anonymous = await ctx.anonymous.get('/api/v1/users');
    expect(expectProblem(anonymous, 401, 'unauthorized').request_id).toBe(anonymous.headers['x-request-id']);
    const unknown = await ctx.api.get('/nowhere');
    expect(expectProblem(unknown, 404, 'not-found').request_id).toBe(unknown.headers['x-request-id']);
  });
});

describe('the access log', () => {
  it('has one line per request and never the key, the Authorization header, the query or the body', async () => {
    const before = ctx.logs.length;
    const email = `secret-${Date.now()}@example.com`;
    const res = await ctx.api.post('/api/v1/users').send({ name: 'Private Person', email });
    expect(res.status).toBe(201);
    await ctx.api.get(`/api/v1/users?email=${encodeURIComponent(email)}`).expect(200);
    const lines = ctx.logs.slice(before);
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(2);
    const text = JSON.stringify(lines);
    for (const secret of [ctx.tenant.key, ctx.tenant.key.slice(12), 'Bearer', email, 'Private Person']) {
      expect(text).not.toContain(secret);
    }
    expect(lines.find((l) => l.operation === 'listUsers')?.path).toBe('/api/v1/users');
  });

  it('logs an unexpected error once, with the request id, and answers a bare 500', async () => {
    // An email PostgreSQL accepts but the contract does not: the response check fails, a bug.
    const user = await createUser(ctx);
    await sql`update users set email = 'two@@example.com' where id = ${user.id}`.execute(ctx.db);
    const res = await ctx.api.get(`/api/v1/users/${user.id}`);
    expect(res.status).toBe(500);
    const body = JSON.parse(res.text) as Schemas['Problem'];
    expect(body).toMatchObject({ type: 'about:blank', status: 500, request_id: res.headers['x-request-id'] });
    expect(ctx.unexpectedErrors).toEqual([
      expect.objectContaining({ msg: 'unexpected error', request_id: res.headers['x-request-id'] }),
    ]);
    ctx.unexpectedErrors.length = 0;
    await sql`update users set email = ${user.email} where id = ${user.id}`.execute(ctx.db);
  });
});

describe('GET /metrics', () => {
  it('is not served without METRICS_TOKEN', async () => {
    expect((await ctx.anonymous.get('/metrics')).status).toBe(404);
  });

  it('needs the token, then shows the operation just called, the pool and the process', async () => {
    const app = ctx.appWith({ metricsToken: METRICS_TOKEN });
    expect((await app.get('/metrics')).status).toBe(401);
    expect((await app.get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789')).status).toBe(
      401,
    );
    const user = await createUser(ctx);
    await app.get(`/api/v1/users/${user.id}`).set('Authorization', `Bearer ${ctx.tenant.key}`).expect(200);

    const res = await app.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^http_requests_total\{operation="getUser",method="GET",status="200"\} 1$/m);
    expect(res.text).toMatch(
      /^http_request_duration_seconds_bucket\{le="\+Inf",operation="getUser",method="GET",status="200"\} 1$/m,
    );
    expect(res.text).toMatch(/^db_pool_connections\{state="total"\} \d+$/m);
    expect(res.text).toMatch(/^db_pool_connections\{state="waiting"\} 0$/m);
    expect(res.text).toMatch(/^process_cpu_seconds_total \d/m);
  });

  it('reads the token as the API reads keys, and refuses with a 401 problem+json', async () => {
    const app = ctx.appWith({ metricsToken: METRICS_TOKEN });
    for (const header of [`bearer ${METRICS_TOKEN}`, `Bearer  ${METRICS_TOKEN}`, `BEARER ${METRICS_TOKEN}`]) {
      expect((await app.get('/metrics').set('Authorization', header)).status, header).toBe(200);
    }
    for (const header of [
      undefined,
      `Bearer\t${METRICS_TOKEN}`,
      `Bearer ${METRICS_TOKEN}x`,
      `Basic ${METRICS_TOKEN}`,
      METRICS_TOKEN,
    ]) {
      const req = app.get('/metrics');
      const res = await (header === undefined ? req : req.set('Authorization', header));
      expect(expectProblem(res, 401, 'unauthorized').request_id, header).toBe(res.headers['x-request-id']);
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it("reads the worker metrics server's token the same way, and answers problem+json", async () => {
    const server = await startWorkerMetricsServer(0, '127.0.0.1', METRICS_TOKEN);
    try {
      const get = (authorization?: string, path = '/metrics') =>
        fetch(`http://127.0.0.1:${server.port}${path}`, {
          headers: authorization === undefined ? {} : { Authorization: authorization },
        });
      for (const header of [`bearer ${METRICS_TOKEN}`, `Bearer  ${METRICS_TOKEN}`]) {
        const res = await get(header);
        expect(res.status, header).toBe(200);
        expect(await res.text()).toMatch(/^# HELP /m);
      }
      for (const header of [undefined, `Bearer\t${METRICS_TOKEN}`, 'Bearer wrong-token-0123456789']) {
        const res = await get(header);
        expect([header, res.status, res.headers.get('content-type')]).toEqual([
          header,
          401,
          'application/problem+json',
        ]);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(await res.json()).toMatchObject({ type: '/problems/unauthorized', status: 401 });
      }
      const elsewhere = await get(`Bearer ${METRICS_TOKEN}`, '/other');
      expect([elsewhere.status, elsewhere.headers.get('content-type')]).toEqual([
        404,
        'application/problem+json',
      ]);
      await elsewhere.arrayBuffer();
    } finally {
      await server.close();
    }
  });

  it('shows the background worker of this process: queue depth, job outcomes, webhook deliveries', async () => {
    const worker = await startWorker(ctx.url, createLogger({ level: 'warn' }), {
      jobs: { inProcess: true, timeoutSeconds: 60, pollSeconds: 1, settlementDelayScale: 1 },
      pollSeconds: 0.5,
      dbPoolSize: 2,
    });
    try {
      const clock = await ctx.api
        .post('/api/v1/test-clocks')
        .send({ name: 'metrics', frozen_time: '2026-01-01T00:00:00Z' });
      expect(clock.status, clock.text).toBe(201);
      const id = (clock.body as Schemas['TestClock']).id;
      await ctx.api.post(`/api/v1/test-clocks/${id}/advance`).send({ frozen_time: '2026-02-01T00:00:00Z' });
      const app = ctx.appWith({ metricsToken: METRICS_TOKEN });
      let text = '';
      for (let i = 0; i < 100 && !/^jobs_total\{.*outcome="completed"\} [1-9]/m.test(text); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        text = (await app.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`)).text;
      }
      expect(text).toMatch(/^jobs_total\{queue="billing\.due",outcome="completed"\} [1-9]\d*$/m);
      expect(text).toMatch(/^job_queue_depth\{queue="billing\.due",state="active"\} \d+$/m);
      expect(text).toMatch(/^job_queue_depth\{queue="billing\.due",state="failed"\} 0$/m);
      expect(text).toMatch(/^webhook_deliveries_pending 0$/m);
    } finally {
      await worker.stop(1000);
    }
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
