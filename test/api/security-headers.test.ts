// The README promises helmet's security headers on every response: the probes, /metrics (the
// API's and the worker's), 404s of unknown paths, problems of every kind and the docs.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerMetricsServer } from '../../src/http/metrics.js';
import { StartupError } from '../../src/startup.js';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();
const METRICS_TOKEN = 'metrics-token-0123456789';

/** A sample of helmet's headers, with the values this API configures. */
const EXPECTED = {
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'content-security-policy': expect.stringContaining("default-src 'self'"),
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

function expectSecurityHeaders(headers: Record<string, unknown>, what: string) {
  expect({ what, ...headers }).toMatchObject({ what, ...EXPECTED });
}

describe('security headers', () => {
  it('are on every response of the API app, whatever answers it', async () => {
    const metrics = ctx.appWith({ metricsToken: METRICS_TOKEN });
    const token = `Bearer ${METRICS_TOKEN}`;
    const cases: Array<
      [string, () => Promise<{ status: number; headers: Record<string, unknown> }>, number]
    > = [
      ['GET /healthz', () => ctx.anonymous.get('/healthz'), 200],
      ['HEAD /healthz', () => ctx.anonymous.head('/healthz'), 200],
      ['GET /readyz', () => ctx.anonymous.get('/readyz'), 200],
      ['DELETE /healthz', () => ctx.anonymous.delete('/healthz'), 405],
      ['GET /metrics, metrics off', () => ctx.anonymous.get('/metrics'), 404],
      ['GET /metrics without the token', () => metrics.get('/metrics'), 401],
      ['GET /metrics', () => metrics.get('/metrics').set('Authorization', token), 200],
      ['GET /nowhere', () => ctx.anonymous.get('/nowhere'), 404],
      ['GET /api/v1/nowhere', () => ctx.api.get('/api/v1/nowhere'), 404],
      ['GET /api/v1/users without a key', () => ctx.anonymous.get('/api/v1/users'), 401],
      ['GET /api/v1/users', () => ctx.api.get('/api/v1/users'), 200],
      [
        'POST /api/v1/users, text/plain',
        () => ctx.api.post('/api/v1/users').set('Content-Type', 'text/plain').send('x'),
        415,
      ],
      ['GET /openapi.json', () => ctx.anonymous.get('/openapi.json'), 200],
      ['GET /docs/', () => ctx.anonymous.get('/docs/'), 200],
      ['GET /dashboard/', () => ctx.anonymous.get('/dashboard/'), 200],
    ];
    for (const [what, request, status] of cases) {
      const res = await request();
      expect([what, res.status]).toEqual([what, status]);
      expectSecurityHeaders(res.headers, what);
    }
  });

  it('are on the problems the HTTP server writes before Express (431)', async () => {
    const url = new URL(await ctx.baseUrl());
    const response = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname);
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    });
    const [head = ''] = response.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 431 /);
    const headers = Object.fromEntries(
      head
        .split('\r\n')
        .slice(1)
        .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 2)]),
    );
    expectSecurityHeaders(headers, 'a 431 written on the socket');
  });
});

describe("the worker's metrics server", () => {
  let server: Awaited<ReturnType<typeof startWorkerMetricsServer>>;
  let base: string;
  beforeAll(async () => {
    server = await startWorkerMetricsServer(0, '127.0.0.1', METRICS_TOKEN);
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());

  it('refuses a busy port in one line naming the setting, not with a stack (ops6 #6)', async () => {
    await expect(startWorkerMetricsServer(server.port, '127.0.0.1', METRICS_TOKEN)).rejects.toThrow(
      new StartupError(
        `127.0.0.1:${server.port} (HOST, WORKER_METRICS_PORT) is already in use: is another instance running?`,
      ),
    );
  });

  it('puts the security headers on every response', async () => {
    const cases: Array<[string, () => Promise<Response>, number]> = [
      [
        'GET /metrics',
        () => fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } }),
        200,
      ],
      ['GET /metrics without the token', () => fetch(`${base}/metrics`), 401],
      ['POST /metrics', () => fetch(`${base}/metrics`, { method: 'POST' }), 405],
      ['GET /elsewhere', () => fetch(`${base}/elsewhere`), 404],
    ];
    for (const [what, request, status] of cases) {
      const res = await request();
      await res.arrayBuffer();
      expect([what, res.status]).toEqual([what, status]);
      expectSecurityHeaders(Object.fromEntries(res.headers), what);
    }
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
