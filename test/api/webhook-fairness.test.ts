// Webhook fairness: one tenant's endpoint that never answers, with a backlog, must not delay
// another endpoint's deliveries (docs/webhooks.md, "One failing endpoint does not hold up the
// others"): the dead endpoint is probed once per backoff step, not once per delivery, a claim takes
// a few deliveries per endpoint, and a manual retry is sent at once, backoff or not.
import type dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { claimDueDeliveries } from '../../src/queries/webhooks.js';
import { type DeliverOptions, deliverDue, startWebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import type { LookupFunction } from '../../src/webhooks/ssrf.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { silentLogger } from '../../src/logger.js';

const ctx = useTestApp();

const lookup: LookupFunction = (_hostname, _options, callback) => {
  process.nextTick(() => callback(null, [{ address: '127.0.0.1', family: 4 } satisfies dns.LookupAddress]));
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A receiver that, while `down`, accepts each connection and holds it without answering. */
async function startFlakyReceiver() {
  const state = { down: true, requests: 0, answered: 0 };
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    state.requests++;
    req.resume();
    if (state.down) return; // never answers: the attempt ends at the dispatcher's timeout
    state.answered++;
    res.end('ok');
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  servers.push({ server, sockets });
  return { state, url: `http://receiver.test:${port}/hook` };
}
const servers: Array<{ server: http.Server; sockets: Set<net.Socket> }> = [];
afterAll(async () => {
  for (const { server, sockets } of servers) {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

let open: (tenant: TestTenant) => (path: string, body: object) => ReturnType<TestTenant['api']['post']>;
beforeAll(() => {
  const openApp = ctx.appWith({ webhooks: { allowPrivateUrls: true } });
  open = (tenant) => (path, body) =>
    openApp.post(path).set('Authorization', `Bearer ${tenant.key}`).send(body);
});

async function endpointAt(tenant: TestTenant, url: string): Promise<Schemas['WebhookEndpointWithSecret']> {
  const res = await open(tenant)('/api/v1/webhook-endpoints', { url, enabled_events: ['user.created'] });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['WebhookEndpointWithSecret'];
}

/** Attempts made to an endpoint (the owner's view), and its deliveries by status. */
async function attemptsTo(endpointId: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from webhook_attempts a
    join webhook_deliveries d on d.tenant_id = a.tenant_id and d.id = a.delivery_id
    where d.endpoint_id = ${endpointId}`.execute(ctx.db);
  return Number(rows[0]!.n);
}
async function statusesOf(endpointId: string): Promise<Record<string, number>> {
  const { rows } = await sql<{ status: string; n: string }>`
    select status, count(*) as n from webhook_deliveries where endpoint_id = ${endpointId}
    group by status`.execute(ctx.db);
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/** Waits (polling every 10 ms) until check passes; fails after ms. */
async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const dispatch = (overrides: Partial<DeliverOptions> = {}) =>
  deliverDue({
    ownerDb: ctx.db,
    appDb: ctx.appDb,
    logger: silentLogger(),
    allowPrivate: true,
    lookup,
    timeoutMs: 300,
    retryBaseMs: 60_000,
    retryForMs: 3_600_000,
    random: () => 1,
    ...overrides,
  });

describe('webhook fairness', () => {
  it("delivers a healthy endpoint's delivery in the first round while another tenant's dead endpoint has 100 pending, probing the dead one once per backoff step", async () => {
    const deadTenant = await ctx.newTenant();
    const healthyTenant = await ctx.newTenant();
    const dead = await startFlakyReceiver();
    const deadEndpoint = await endpointAt(deadTenant, dead.url);
    for (let i = 0; i < 10; i++) {
      await Promise.all(Array.from({ length: 10 }, () => createUser(deadTenant)));
    }
    expect(await statusesOf(deadEndpoint.id)).toEqual({ pending: 100 });

    const healthy = await startFlakyReceiver();
    healthy.state.down = false;
    const healthyEndpoint = await endpointAt(healthyTenant, healthy.url);
    await createUser(healthyTenant);

    // The first round (or the second) delivers it, behind the dead endpoint's older backlog.
    let rounds = 0;
    while ((await statusesOf(healthyEndpoint.id)).succeeded !== 1) {
      expect(++rounds, 'rounds before the healthy delivery').toBeLessThanOrEqual(2);
      await dispatch();
    }
    expect(healthy.state.answered).toBe(1);

    // The dead endpoint got one claim's few concurrent attempts (at most 5 per endpoint), then
    // its next attempt waits for its backoff (60 s here), however many of its deliveries are due.
    const first = await attemptsTo(deadEndpoint.id);
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(5);
    for (let i = 0; i < 3; i++) await dispatch();
    expect(await attemptsTo(deadEndpoint.id)).toBe(first);
    expect(dead.state.requests).toBe(first);
    expect(await statusesOf(deadEndpoint.id)).toEqual({ pending: 100 });
  });

  it('probes a failing endpoint once per backoff step, sends a manual retry at once, and delivers the backlog when it is back', async () => {
    const tenant = await ctx.newTenant();
    const flaky = await startFlakyReceiver();
    const endpoint = await endpointAt(tenant, flaky.url);
    for (let i = 0; i < 3; i++) {
      await Promise.all(Array.from({ length: 10 }, () => createUser(tenant)));
    }
    const settings = { retryBaseMs: 1000, timeoutMs: 100 };
    await dispatch(settings);
    const first = await attemptsTo(endpoint.id);
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(5);
    // Within its backoff step (1 s from the failure): nothing more.
    await dispatch(settings);
    await dispatch(settings);
    expect(await attemptsTo(endpoint.id)).toBe(first);
    // After it: one probe (a failing endpoint gets one attempt at a time), then 2 s of quiet.
    await sleep(1100);
    await dispatch(settings);
    await dispatch(settings);
    expect(await attemptsTo(endpoint.id)).toBe(first + 1);

    // Backing off for an hour now: a manual retry of a delivery never attempted is sent at once,
    // and its failure does not lengthen the backoff.
    await sql`update webhook_endpoints set retry_at = now() + interval '1 hour' where id = ${endpoint.id}`.execute(
      ctx.db,
    );
    const [never] = await tenant.api
      .get(`/api/v1/webhook-endpoints/${endpoint.id}/deliveries?limit=1`)
      .then((res) => (res.body as Schemas['WebhookDeliveryList']).data);
    expect(never!.attempt_count).toBe(0);
    expect((await tenant.api.post(`/api/v1/webhook-deliveries/${never!.id}/retry`)).status).toBe(202);
    await dispatch(settings);
    await dispatch(settings);
    const retried = (await tenant.api.get(`/api/v1/webhook-deliveries/${never!.id}`))
      .body as Schemas['WebhookDelivery'];
    expect(retried.attempt_count).toBe(1);
    expect(await attemptsTo(endpoint.id)).toBe(first + 2);
    const { rows } = await sql<{ consecutive_failures: number; later: boolean }>`
      select consecutive_failures, retry_at > now() + interval '59 minutes' as later
      from webhook_endpoints where id = ${endpoint.id}`.execute(ctx.db);
    expect(rows[0]).toEqual({ consecutive_failures: 2, later: true });

    // Back up, and the hour over: a probe succeeds, and the whole backlog follows, a few per claim.
    flaky.state.down = false;
    await sql`update webhook_endpoints set retry_at = now() where id = ${endpoint.id}`.execute(ctx.db);
    await sleep(1050); // the failed deliveries' own retry times (1 s after their attempt)
    for (let i = 0; i < 40 && (await statusesOf(endpoint.id)).succeeded !== 30; i++) {
      await dispatch(settings);
      await sleep(10);
    }
    expect(await statusesOf(endpoint.id)).toEqual({ succeeded: 30 });
  });

  it('takes many retries on request of one failing endpoint one at a time, never all at once', async () => {
    const tenant = await ctx.newTenant();
    const dead = await startFlakyReceiver();
    const endpoint = await endpointAt(tenant, dead.url);
    await Promise.all(Array.from({ length: 12 }, () => createUser(tenant)));
    // It failed, and backs off for an hour.
    await dispatch();
    const failed = await attemptsTo(endpoint.id);
    await sql`update webhook_endpoints set retry_at = now() + interval '1 hour' where id = ${endpoint.id}`.execute(
      ctx.db,
    );
    const deliveries = (
      (await tenant.api.get(`/api/v1/webhook-endpoints/${endpoint.id}/deliveries?limit=20`))
        .body as Schemas['WebhookDeliveryList']
    ).data;
    for (const d of deliveries) {
      const res = await tenant.api.post(`/api/v1/webhook-deliveries/${d.id}/retry`);
      expect([202, 409], res.text).toContain(res.status);
    }
    // Each claim takes one retry of it (a failing endpoint gets one attempt at a time): a claim of
    // 100 slots does not send it 12 at once.
    const started = dead.state.requests;
    const round = dispatch();
    await sleep(150); // the attempts are in flight, waiting for their 300 ms timeout
    expect(dead.state.requests - started).toBe(1);
    await round;
    expect(await attemptsTo(endpoint.id)).toBe(failed + 1);
  });

  it('claims no more than the limit in flight with a retry on request among the due (ops5 #1)', async () => {
    const tenant = await ctx.newTenant();
    const healthy = await endpointAt(tenant, 'http://receiver.test:9/healthy');
    await Promise.all(Array.from({ length: 8 }, () => createUser(tenant)));
    const failing = await endpointAt(tenant, 'http://receiver.test:9/failing');
    await Promise.all(Array.from({ length: 4 }, () => createUser(tenant)));
    await sql`update webhook_endpoints set consecutive_failures = 1, retry_at = now() - interval '1 second'
      where id = ${failing.id}`.execute(ctx.db);
    // One delivery of each asked to be retried; the others are simply due.
    for (const endpoint of [healthy, failing])
      await sql`update webhook_deliveries set retry_requested = true
        where id = (select id from webhook_deliveries where endpoint_id = ${endpoint.id} order by id desc limit 1)`.execute(
        ctx.db,
      );
    // A 1 ms lease: other files' deliveries this claim takes are free again at once.
    const claimed = await claimDueDeliveries(ctx.db, 100, 1, 5);
    const { rows } = await sql<{ endpoint_id: string; n: string }>`
      select endpoint_id, count(*) as n from webhook_deliveries where id = any(${claimed.map((c) => c.id)}::uuid[])
      group by endpoint_id`.execute(ctx.db);
    const byEndpoint = Object.fromEntries(rows.map((r) => [r.endpoint_id, Number(r.n)]));
    // 5 at most to a healthy endpoint, the probe alone to a failing one: the retry among them.
    expect([byEndpoint[healthy.id], byEndpoint[failing.id]]).toEqual([5, 1]);
  });

  it('keeps to the limit in flight across dispatchers claiming at the same time (ops6 #3)', async () => {
    const tenant = await ctx.newTenant();
    const endpoint = await endpointAt(tenant, 'http://receiver.test:9/two-workers');
    await Promise.all(Array.from({ length: 12 }, () => createUser(tenant)));
    // One dispatcher's claim is not committed yet when another claims (its leases are ended
    // right after, for the other files).
    let second: Promise<Array<{ id: string }>> | undefined;
    const first = await ctx.db.transaction().execute(async (trx) => {
      const claimed = await claimDueDeliveries(trx, 100, 60_000, 5);
      second = claimDueDeliveries(ctx.db, 100, 60_000, 5);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return claimed;
    });
    const ids = [...first, ...(await second!)].map((c) => c.id);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from webhook_deliveries
      where endpoint_id = ${endpoint.id} and id = any(${ids}::uuid[])`.execute(ctx.db);
    expect(rows[0]!.n).toBe(5);
    // Free again for the other files: leases taken here end now.
    await sql`update webhook_deliveries set leased_until = null, lease_token = null
      where id = any(${ids}::uuid[])`.execute(ctx.db);
  });

  it("sends a healthy delivery while a dead endpoint's attempts wait for their timeout: slots, not rounds", async () => {
    const deadTenant = await ctx.newTenant();
    const healthyTenant = await ctx.newTenant();
    const dead = await startFlakyReceiver();
    await endpointAt(deadTenant, dead.url);
    await Promise.all(Array.from({ length: 10 }, () => createUser(deadTenant)));
    const healthy = await startFlakyReceiver();
    healthy.state.down = false;
    await endpointAt(healthyTenant, healthy.url);
    const dispatcher = await startWebhookDispatcher({
      ownerUrl: ctx.url,
      ownerDb: ctx.db,
      appDb: ctx.appDb,
      logger: silentLogger(),
      allowPrivate: true,
      lookup,
      timeoutMs: 4000,
      retryBaseMs: 60_000,
      retryForMs: 3_600_000,
      random: () => 1,
      pollMs: 60_000,
    });
    try {
      // The dead endpoint's attempts are in flight (a few: at most 5 per endpoint)...
      await waitFor(() => dead.state.requests >= 1, 5000, 'the dead endpoint’s attempts');
      await sleep(100);
      expect(dead.state.requests).toBeLessThanOrEqual(5);
      // ...and a new delivery elsewhere is sent at once, not after their 4 s timeout.
      const started = Date.now();
      await createUser(healthyTenant);
      await waitFor(() => healthy.state.answered === 1, 10_000, 'the healthy delivery');
      expect(Date.now() - started).toBeLessThan(2500);
    } finally {
      await dispatcher.stop();
    }
  });

  it('drains a backlog to one endpoint without waiting for the poll: a freed slot takes the next at once', async () => {
    const tenant = await ctx.newTenant();
    const receiver = await startFlakyReceiver();
    receiver.state.down = false;
    await endpointAt(tenant, receiver.url);
    // 300 deliveries due before the dispatcher starts: no notification will come for them, so
    // only the ends of attempts (5 at a time to one endpoint) move the backlog, never the poll.
    await ctx.db.transaction().execute(async (trx) => {
      await sql`select set_config('app.tenant_id', ${tenant.id}, true)`.execute(trx);
      await sql`insert into events (type, resource_type, resource_id, actor, data)
        select 'user.created', 'user', gen_random_uuid(), 'backlog test', '{}'
        from generate_series(1, 300)`.execute(trx);
    });
    const dispatcher = await startWebhookDispatcher({
      ownerUrl: ctx.url,
      ownerDb: ctx.db,
      appDb: ctx.appDb,
      logger: silentLogger(),
      allowPrivate: true,
      lookup,
      timeoutMs: 4000,
      retryBaseMs: 60_000,
      retryForMs: 3_600_000,
      random: () => 1,
      pollMs: 120_000,
    });
    try {
      await waitFor(() => receiver.state.answered >= 300, 60_000, 'the backlog');
    } finally {
      await dispatcher.stop();
    }
  });
});
