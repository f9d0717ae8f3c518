// Two API processes on one database, as behind a load balancer: what one of them does, the other
// sees at once (rows, idempotency keys, rate limits, revocations): nothing that matters lives in
// one process's memory. They use the typed SDK, as a partner would.
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, ProblemError } from '../../clients/typescript/src/index.js';
import { useTestApp } from '../helpers/app.js';
import { spawnServer } from '../helpers/process.js';

const ctx = useTestApp();
type Server = ReturnType<typeof spawnServer> & { base: string };
const servers: Server[] = [];

async function start(): Promise<Server> {
  const server = spawnServer({
    DATABASE_URL: ctx.url,
    PORT: '0',
    HOST: '127.0.0.1',
    JOBS: 'off',
    RATE_LIMIT_PER_MINUTE: '8',
  });
  const [, , port] = await server.waitFor(/pid (\d+)\) on http:\/\/localhost:(\d+)/);
  const started = { ...server, base: `http://127.0.0.1:${port}` };
  servers.push(started);
  return started;
}

beforeAll(async () => {
  await Promise.all([start(), start()]);
}, 60_000);

afterAll(async () => {
  for (const server of servers) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

const client = (server: Server, key: string) =>
  createClient({ baseUrl: server.base, apiKey: key, maxRetries: 0 });

describe('two API processes on one database', () => {
  it('share rows, idempotency keys, the rate limit and revocations', async () => {
    const [a, b] = servers as [Server, Server];
    const t = await ctx.newTenant();
    const viaA = client(a, t.key);
    const viaB = client(b, t.key);

    // A write through one is read through the other, and its key is replayed by the other.
    const body = { name: 'Ada', email: 'ada@example.com' };
    const key = { params: { header: { 'Idempotency-Key': 'signup-ada' } }, body };
    const created = await viaA.POST('/api/v1/users', key);
    const replayed = await viaB.POST('/api/v1/users', key);
    expect(replayed.data!.id).toBe(created.data!.id);
    expect(replayed.response.headers.get('idempotent-replayed')).toBe('true');
    const read = await viaB.GET('/api/v1/users/{userId}', { params: { path: { userId: created.data!.id } } });
    expect(read.data).toMatchObject(body);

    // A second key is revoked through one process: the other refuses it from its next request on,
    // though it had just accepted (and cached) it.
    const second = await viaA.POST('/api/v1/api-keys', { body: { name: 'temporary', role: 'viewer' } });
    const temporary = client(b, second.data!.key);
    await temporary.GET('/api/v1/users');
    await viaA.DELETE('/api/v1/api-keys/{keyId}', { params: { path: { keyId: second.data!.id } } });
    const refused = await temporary.GET('/api/v1/users').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(ProblemError);
    expect(refused).toMatchObject({ status: 401 });

    // One budget of 8 requests a minute for a new key, wherever they land. Each process counts in
    // memory and shares its counts every 500 ms (services/rate-limits.ts), so once they have synced,
    // both refuse: 4 + 4 accepted, then every request to either is a 429.
    const fresh = await viaA.POST('/api/v1/api-keys', { body: { name: 'budget', role: 'viewer' } });
    const hit = async (server: Server) =>
      (
        await fetch(`${server.base}/api/v1/users`, {
          headers: { Authorization: `Bearer ${fresh.data!.key}` },
        })
      ).status;
    // The windows are whole minutes: start well inside one, so the budget does not reset midway.
    if (Date.now() % 60_000 > 50_000) await sleep(60_000 - (Date.now() % 60_000) + 100);
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push(await hit(a), await hit(b));
    expect(first).toEqual(Array(8).fill(200));
    // Both have flushed their hits; then a few sync rounds (500 ms each), in which each reads the total back.
    for (let i = 0; ; i++) {
      const flushed = await sql<{ hits: number }>`
        select coalesce(sum(hits), 0)::int as hits from rate_limit_hits where key = ${fresh.data!.id}`.execute(
        ctx.db,
      );
      if (flushed.rows[0]!.hits >= 8) break;
      expect(i, 'the two servers never flushed their hits').toBeLessThan(600);
      await sleep(50);
    }
    await sleep(1_500);
    const after: number[] = [];
    for (let i = 0; i < 2; i++) after.push(await hit(a), await hit(b));
    expect(after).toEqual([429, 429, 429, 429]);
  }, 90_000);
});
