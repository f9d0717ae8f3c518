// The worker as operators run it (src/worker-main.ts, `make worker`): its own metrics, a clean
// SIGTERM, and the proof that SIGKILL loses nothing: a year on a test clock run undisturbed and
// run again with the worker killed at random points end in the same state, event for event, and
// every event reaches a webhook receiver, signed.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { type Api, type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { errorLines, spawnProcess } from '../helpers/process.js';

const ctx = useTestApp();
const METRICS_TOKEN = 'worker-metrics-token-0123456789';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `make worker` on this file's database: short job expiry, so a killed worker's job returns soon. */
function spawnWorker() {
  const worker = spawnProcess(process.execPath, ['--import', 'tsx', 'src/worker-main.ts'], {
    DATABASE_URL: ctx.url,
    NODE_ENV: undefined,
    JOB_TIMEOUT_SECONDS: '5',
    JOB_MAINTENANCE_SECONDS: '1',
    JOB_POLL_SECONDS: '1',
    WEBHOOKS_ALLOW_PRIVATE_URLS: 'true',
    WEBHOOK_RETRY_BASE_SECONDS: '1',
    METRICS_TOKEN,
    WORKER_METRICS_PORT: '0',
    HOST: '127.0.0.1',
  });
  return worker;
}
type Worker = ReturnType<typeof spawnWorker>;
const started = async (worker: Worker) =>
  Number((await worker.waitFor(/metrics on http:\/\/localhost:(\d+)\/metrics/))[1]);

/** A webhook receiver that records every request and answers 200. */
interface Received {
  path: string;
  signature: string;
  eventId: string;
  body: string;
}
const receivers: http.Server[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((s) => new Promise((resolve) => s.close(resolve))));
});
async function startReceiver() {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        signature: String(req.headers['subscriptions-signature']),
        eventId: String(req.headers['subscriptions-event-id']),
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receivers.push(server);
  return { received, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hooks` };
}

/** The receiver's check, from the README alone: HMAC-SHA256 of "<t>.<body>", t within 5 minutes. */
function verified(request: Received, secret: string): boolean {
  const parts = request.signature.split(',').map((p) => p.split('=', 2) as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${request.body}`).digest();
  return parts.some(
    ([k, v]) =>
      k === 'v1' && Buffer.from(v, 'hex').length === 32 && timingSafeEqual(Buffer.from(v, 'hex'), expected),
  );
}

/** Every item of a cursor-paginated list. */
async function listAll<T>(api: Api, path: string, query: Record<string, string> = {}): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const res = await api.get(path).query({ ...query, limit: 100, ...(cursor ? { cursor } : {}) });
    expect(res.status, res.text).toBe(200);
    const page = res.body as { data: T[]; next_cursor: string | null };
    items.push(...page.data);
    // The event feed's cursor is never null (it is where to poll next): an empty page ends it.
    cursor = page.data.length > 0 ? page.next_cursor : null;
  } while (cursor);
  return items;
}

/**
 * A tenant set up for a year: a webhook endpoint for every event, a monthly plan, a test clock on
 * 2026-01-01 and subscriptions paying by card, ACH, wire and a card that always fails (dunning).
 */
async function yearTenant(receiverUrl: string) {
  const tenant = await ctx.newTenant('A year of billing');
  const hooks = await ctx
    .appWith({ webhooks: { allowPrivateUrls: true } })
    .post('/api/v1/webhook-endpoints')
    .set('Authorization', `Bearer ${tenant.key}`)
    .send({ url: receiverUrl, enabled_events: ['*'] });
  expect(hooks.status, hooks.text).toBe(201);
  const plan = await tenant.api
    .post('/api/v1/plans')
    .send({ code: 'pro', name: 'Pro', interval: 'month', price: { model: 'flat', amount: '10.00' } });
  expect(plan.status, plan.text).toBe(201);
  const clock = await tenant.api
    .post('/api/v1/test-clocks')
    .send({ name: 'a year', frozen_time: '2026-01-01T00:00:00Z' });
  expect(clock.status, clock.text).toBe(201);
  const clockId = (clock.body as Schemas['TestClock']).id;
  for (const [i, [payment_method, payment_rail]] of Object.entries([
    ['pm_card_visa', 'card'],
    ['pm_us_bank_account', 'ach_standard'],
    ['pm_us_bank_account', 'wire'],
    ['pm_insufficient_funds', 'card'],
  ])) {
    const user = await createUser(tenant, { name: `Payer ${i}`, email: `payer-${i}@example.com` });
    const sub = await tenant.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      start_date: '2026-01-01',
      plan_id: (plan.body as Schemas['Plan']).id,
      test_clock_id: clockId,
      payment_method,
      payment_rail,
    });
    expect(sub.status, sub.text).toBe(201);
  }
  return { tenant, clockId, secret: (hooks.body as Schemas['WebhookEndpointWithSecret']).secret };
}

const advanceAYear = async (tenant: TestTenant, clockId: string) => {
  const res = await tenant.api
    .post(`/api/v1/test-clocks/${clockId}/advance`)
    .send({ frozen_time: '2026-12-31T12:00:00Z' });
  expect(res.status, res.text).toBe(202);
};
const clockReady = async (tenant: TestTenant, clockId: string) =>
  ((await tenant.api.get(`/api/v1/test-clocks/${clockId}`)).body as Schemas['TestClock']).status === 'ready';
const eventCount = async (tenantId: string) =>
  Number(
    (await sql<{ n: string }>`select count(*) as n from events where tenant_id = ${tenantId}`.execute(ctx.db))
      .rows[0]!.n,
  );
const pendingDeliveries = async (tenantId: string) =>
  Number(
    (
      await sql<{ n: string }>`select count(*) as n from webhook_deliveries
        where tenant_id = ${tenantId} and status = 'pending'`.execute(ctx.db)
    ).rows[0]!.n,
  );

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000) {
  const since = Date.now();
  while (!(await check())) {
    if (Date.now() - since > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/**
 * Fields set by the wall clock (not the test clock), random (a key's prefix) or told apart on
 * purpose (each run's webhook URL): they differ between any two runs.
 */
const RUN_SPECIFIC = new Set(['created_at', 'updated_at', 'occurred_at', 'request_id', 'prefix', 'url']);

/**
 * Everything the year left, through the API: the event history in order, and the subscriptions,
 * invoices and payments as they ended. Ids are replaced by the order in which they first appear,
 * and wall-clock times dropped, so two tenants' runs compare field for field.
 */
async function finalState(tenant: TestTenant) {
  const events = await listAll<Schemas['Event']>(tenant.api, '/api/v1/events');
  const state = {
    events: events.map(({ id: _id, ...event }) => event),
    subscriptions: await listAll<Schemas['Subscription']>(tenant.api, '/api/v1/subscriptions'),
    invoices: await listAll<Schemas['Invoice']>(tenant.api, '/api/v1/invoices'),
    payments: await listAll<Schemas['Payment']>(tenant.api, '/api/v1/payments'),
  };
  const labels = new Map<string, string>();
  const label = (id: string) => {
    if (!labels.has(id)) labels.set(id, `id#${labels.size}`);
    return labels.get(id)!;
  };
  const normalise = (value: unknown): unknown => {
    if (typeof value === 'string') return value.replace(UUID, label);
    if (Array.isArray(value)) return value.map(normalise);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value)
          .filter(([key]) => !RUN_SPECIFIC.has(key))
          .map(([key, inner]) => [key, normalise(inner)]),
      );
    }
    return value;
  };
  // The events an endpoint for every type receives: those from its own creation on.
  const subscribed = events.slice(events.findIndex((e) => e.type === 'webhook_endpoint.created'));
  return { state: normalise(state) as typeof state, eventIds: new Set(subscribed.map((e) => e.id)) };
}

describe('make worker', () => {
  it('serves its metrics to the token holder, and exits 0 on SIGTERM', async () => {
    const worker = spawnWorker();
    const port = await started(worker);
    const url = `http://127.0.0.1:${port}/metrics`;
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^job_queue_depth\{queue="billing\.due",state="created"\} \d+$/m);
    expect(text).toMatch(/^job_queue_depth\{queue="billing\.due",state="failed"\} \d+$/m);
    expect(text).toMatch(/^webhook_deliveries_pending \d+$/m);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(errorLines(worker.stderr())).toEqual([]);
  });
});

describe('SIGKILL at random points during a year on a test clock', () => {
  it('ends in the state of an undisturbed run, every event delivered to the webhook', async () => {
    const receiver = await startReceiver();

    // The undisturbed run.
    const calm = await yearTenant(`${receiver.url}/calm`);
    let worker = spawnWorker();
    await started(worker);
    await advanceAYear(calm.tenant, calm.clockId);
    await until('the undisturbed year', () => clockReady(calm.tenant, calm.clockId));
    await until('its webhooks', async () => (await pendingDeliveries(calm.tenant.id)) === 0);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    const expected = await finalState(calm.tenant);

    // The same year, killing the worker a few times while it works. The seed is printed so a
    // failure can be replayed (KILL_SEED=...).
    const seed = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
    let state = seed;
    const random = () => (state = (state * 48_271) % 2_147_483_647) / 2_147_483_647;
    console.log(`worker kill test: KILL_SEED=${seed}`);
    const killed = await yearTenant(`${receiver.url}/killed`);
    worker = spawnWorker();
    await started(worker);
    await advanceAYear(killed.tenant, killed.clockId);
    let kills = 0;
    for (let seen = await eventCount(killed.tenant.id); kills < 3; kills++) {
      // Once the worker is making progress (the first kill's job comes back after its expiry),
      // kill it a random moment later, mid-year.
      const before = seen;
      await until('progress', async () => (seen = await eventCount(killed.tenant.id)) > before);
      await sleep(random() * 500);
      if (await clockReady(killed.tenant, killed.clockId)) break;
      worker.child.kill('SIGKILL');
      expect((await worker.exited).signal).toBe('SIGKILL');
      worker = spawnWorker();
      await started(worker);
    }
    await until('the year after the kills', () => clockReady(killed.tenant, killed.clockId));
    await until('its webhooks', async () => (await pendingDeliveries(killed.tenant.id)) === 0);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(
      kills,
      `the year finished before the worker was killed twice (seed ${seed})`,
    ).toBeGreaterThanOrEqual(2);
    // The clock's job really was cut off and run again.
    const { rows } = await sql<{ retries: number }>`
      select max(retry_count) as retries from pgboss.job where singleton_key = ${`clock:${killed.clockId}`}`.execute(
      ctx.db,
    );
    expect(rows[0]!.retries).toBeGreaterThanOrEqual(1);

    const actual = await finalState(killed.tenant);
    expect(actual.state, `seed ${seed}`).toEqual(expected.state);
    // A year's worth: 12 paid invoices for each paying subscription, and a dunned cancellation.
    const invoices = expected.state.invoices;
    expect(invoices.filter((i) => i.status === 'paid')).toHaveLength(36);
    expect(invoices.filter((i) => i.status === 'uncollectible')).toHaveLength(1);
    expect(expected.state.events.map((e) => e.type)).toContain('subscription.canceled');

    // Every event reached its tenant's endpoint, signed with its secret; a killed worker may
    // have sent one twice (at least once), never an event of another tenant.
    for (const run of [
      { ...calm, ids: expected.eventIds, path: '/hooks/calm' },
      { ...killed, ids: actual.eventIds, path: '/hooks/killed' },
    ]) {
      const delivered = receiver.received.filter((r) => r.path === run.path);
      expect(new Set(delivered.map((r) => r.eventId))).toEqual(run.ids);
      for (const request of delivered) {
        expect(verified(request, run.secret), request.eventId).toBe(true);
        expect((JSON.parse(request.body) as { id: string }).id).toBe(request.eventId);
      }
    }
    expect(ctx.unexpectedErrors).toEqual([]);
  }, 240_000);
});
