// Webhooks: endpoints (CRUD, secrets shown once, rotation), the outbox trigger, the dispatcher
// (signed POSTs, retries with backoff, leases, disabling), SSRF refusals at registration and at
// delivery, and tenant isolation. Signatures are checked here by an independent HMAC check.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { NO_MIGRATIONS, sql } from 'kysely';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../db/migrations/index.js';
import type { Schemas } from '../../src/contract.js';
import { createDb } from '../../src/database/connection.js';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/database/embedded.js';
import { createMigrator, unwrap } from '../../src/database/migrator.js';
import { silentLogger } from '../../src/logger.js';
import {
  claimDueDeliveries,
  nextDueAt,
  recordAttempt,
  retryDelayMs,
} from '../../src/services/webhook-deliveries.js';
import { type DeliverOptions, deliverDue, startWebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { forbiddenAddressClass, type LookupFunction } from '../../src/webhooks/ssrf.js';
import { type TestTenant, testServerUrl, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { captureLogs } from '../helpers/logs.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

type Endpoint = Schemas['WebhookEndpoint'];
type EndpointWithSecret = Schemas['WebhookEndpointWithSecret'];
type Delivery = Schemas['WebhookDelivery'];

/** A resolver seam: these names resolve to these addresses, any other name fails at once. */
function fakeDns(table: Record<string, string>): LookupFunction {
  return (hostname, _options, callback) => {
    const address = table[hostname.replace(/\.$/, '')];
    process.nextTick(() => {
      if (!address) {
        callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      } else {
        callback(null, [{ address, family: net.isIPv6(address) ? 6 : 4 } satisfies dns.LookupAddress]);
      }
    });
  };
}
// At registration: public names resolve to a public address. At delivery: only receiver.test,
// to the local receivers; nothing in this file ever connects outside this machine.
const registrationDns = fakeDns({
  'hooks.example.com': '93.184.215.14',
  'rebind.example.com': '93.184.215.14',
  'receiver.test': '93.184.215.14',
  'private.example.com': '10.1.2.3',
  'metadata.example.com': '169.254.169.254',
  'mapped.example.com': '::ffff:127.0.0.1',
});
const deliveryDns = fakeDns({ 'receiver.test': '127.0.0.1', 'rebind.example.com': '127.0.0.1' });

/** The dispatcher as the tests drive it: tiny backoff, deterministic full jitter (its maximum). */
/** What the dispatcher logs: a wait that times out shows its unexpected errors. */
const dispatchLogs = captureLogs();
const dispatch = (overrides: Partial<DeliverOptions> = {}) =>
  deliverDue({
    ownerDb: ctx.db,
    appDb: ctx.appDb,
    logger: dispatchLogs.logger,
    allowPrivate: true,
    lookup: deliveryDns,
    timeoutMs: 2000,
    retryBaseMs: 40,
    retryForMs: 60_000,
    random: () => 1,
    ...overrides,
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let made = 0;
const createUserResponse = (tenant: TestTenant) =>
  tenant.api
    .post('/api/v1/users')
    .send({ name: 'Racer', email: `racer-${made++}-${randomUUID()}@example.com` });

/** Runs step (no more than every 25 ms) until check passes; 30 s at most (a loaded CI machine). */
async function until<T>(
  step: () => Promise<unknown>,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    await step();
    const done = await check();
    if (done !== undefined) return done;
    if (Date.now() - started > 30_000)
      throw new Error(
        `timed out waiting for webhook deliveries; the dispatcher's last errors: ${JSON.stringify(dispatchLogs.errors.slice(-3))}`,
      );
    await sleep(25);
  }
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A local receiver answering each request with the next status of `statuses` (the last one repeats). */
async function startReceiver(statuses: number[] = [200]) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.statusCode = statuses[Math.min(received.length - 1, statuses.length - 1)]!;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  receivers.push(server);
  return { received, port, url: `http://receiver.test:${port}/hook` };
}
const receivers: http.Server[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/**
 * The receiver's side, written from the README's description and nothing of src/: the HMAC of
 * "<t>.<raw body>" under one of the secrets equals one of the v1 signatures, and t is within 5
 * minutes of now.
 */
function verifySignature(header: string, rawBody: string, secret: string, now = Date.now()): boolean {
  const pairs = header.split(',').map((part) => part.split('=', 2) as [string, string]);
  const timestamp = Number(pairs.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(timestamp) || Math.abs(now / 1000 - timestamp) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest();
  return pairs
    .filter(([k]) => k === 'v1')
    .some(([, hex]) => {
      const given = Buffer.from(hex, 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}

let t: TestTenant;
/** The app with the resolver seam; private URLs refused (the default). */
let strict: (
  method: 'get' | 'post' | 'patch' | 'delete',
  path: string,
) => ReturnType<TestTenant['api']['get']>;
/** The app allowing private URLs (WEBHOOKS_ALLOW_PRIVATE_URLS=true), for the local receivers. */
let open: (tenant: TestTenant) => (path: string, body: object) => ReturnType<TestTenant['api']['post']>;

beforeAll(async () => {
  t = await ctx.newTenant();
  const strictApp = ctx.appWith({ webhooks: { allowPrivateUrls: false, lookup: registrationDns } });
  strict = (method, path) => strictApp[method](path).set('Authorization', `Bearer ${t.key}`);
  const openApp = ctx.appWith({ webhooks: { allowPrivateUrls: true } });
  open = (tenant) => (path, body) =>
    openApp.post(path).set('Authorization', `Bearer ${tenant.key}`).send(body);
});

/** An endpoint at a local receiver, for these event types. */
async function localEndpoint(
  tenant: TestTenant,
  url: string,
  enabled_events: string[] = ['user.created'],
): Promise<EndpointWithSecret> {
  const res = await open(tenant)('/api/v1/webhook-endpoints', { url, enabled_events });
  expect(res.status, res.text).toBe(201);
  return res.body as EndpointWithSecret;
}

async function deliveriesOf(tenant: TestTenant, endpointId: string, query = ''): Promise<Delivery[]> {
  const res = await tenant.api.get(`/api/v1/webhook-endpoints/${endpointId}/deliveries${query}`);
  expect(res.status, res.text).toBe(200);
  return (res.body as Schemas['WebhookDeliveryList']).data;
}

async function eventsOf(tenant: TestTenant, query: string): Promise<Schemas['Event'][]> {
  const res = await tenant.api.get(`/api/v1/events?limit=100&${query}`);
  expect(res.status, res.text).toBe(200);
  return (res.body as Schemas['EventList']).data;
}

describe('webhook endpoints', () => {
  it('registers an endpoint, shows its secret once, and reads, lists, updates and deletes it with ETags and events', async () => {
    const res = await strict('post', '/api/v1/webhook-endpoints').send({
      url: 'https://hooks.example.com/subscriptions',
      description: 'Billing system',
      enabled_events: ['invoice.paid', 'invoice.payment_failed'],
    });
    expect(res.status, res.text).toBe(201);
    const created = res.body as EndpointWithSecret;
    expect(created).toMatchObject({
      url: 'https://hooks.example.com/subscriptions',
      description: 'Billing system',
      enabled_events: ['invoice.paid', 'invoice.payment_failed'],
      status: 'enabled',
      disabled_reason: null,
      previous_secret_expires_at: null,
      version: 1,
    });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(res.headers.location).toBe(`/api/v1/webhook-endpoints/${created.id}`);
    expect(res.headers.etag).toBe('"1"');

    const got = await t.api.get(`/api/v1/webhook-endpoints/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('secret');
    expect(got.text).not.toContain(created.secret);
    expect(
      (await t.api.get(`/api/v1/webhook-endpoints/${created.id}`).set('If-None-Match', '"1"')).status,
    ).toBe(304);
    const listed = await t.api.get('/api/v1/webhook-endpoints?status=enabled&limit=1');
    expect(listed.status).toBe(200);
    expect((listed.body as Schemas['WebhookEndpointList']).data.map((e) => e.id)).toEqual([created.id]);
    expect(listed.text).not.toContain(created.secret);
    expect(
      ((await t.api.get('/api/v1/webhook-endpoints?status=disabled')).body as Schemas['WebhookEndpointList'])
        .data,
    ).toEqual([]);

    expectProblem(
      await strict('patch', `/api/v1/webhook-endpoints/${created.id}`)
        .set('If-Match', '"7"')
        .send({ description: 'x' }),
      412,
      'precondition-failed',
    );
    const patched = await strict('patch', `/api/v1/webhook-endpoints/${created.id}`)
      .set('If-Match', '"1"')
      .send({ url: 'https://hooks.example.com/v2', description: null, enabled_events: ['*'] });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({
      url: 'https://hooks.example.com/v2',
      description: null,
      version: 2,
    });
    expect(patched.headers.etag).toBe('"2"');
    const disabled = await t.api
      .patch(`/api/v1/webhook-endpoints/${created.id}`)
      .send({ status: 'disabled' });
    expect(disabled.body).toMatchObject({ status: 'disabled', disabled_reason: null, version: 3 });

    expectProblem(
      await t.api.delete(`/api/v1/webhook-endpoints/${created.id}`).set('If-Match', '"2"'),
      412,
      'precondition-failed',
    );
    await t.api.delete(`/api/v1/webhook-endpoints/${created.id}`).set('If-Match', '"3"').expect(204);
    expectProblem(await t.api.get(`/api/v1/webhook-endpoints/${created.id}`), 404, 'not-found');
    expectProblem(await t.api.delete(`/api/v1/webhook-endpoints/${created.id}`), 404, 'not-found');

    const events = await eventsOf(t, `resource_id=${created.id}`);
    expect(events.map((e) => e.type)).toEqual([
      'webhook_endpoint.created',
      'webhook_endpoint.updated',
      'webhook_endpoint.disabled',
      'webhook_endpoint.deleted',
    ]);
    expect(events[1]!.previous).toEqual({
      url: 'https://hooks.example.com/subscriptions',
      description: 'Billing system',
      enabled_events: ['invoice.paid', 'invoice.payment_failed'],
    });
    // Events are delivered by webhooks too: they never carry a secret.
    expect(JSON.stringify(events)).not.toContain('whsec_');
  });

  it('replays a create with the same Idempotency-Key, secret included, and makes one endpoint', async () => {
    const key = randomUUID();
    const body = { url: 'https://hooks.example.com/once', enabled_events: ['invoice.voided'] };
    const first = await strict('post', '/api/v1/webhook-endpoints').set('Idempotency-Key', key).send(body);
    const again = await strict('post', '/api/v1/webhook-endpoints').set('Idempotency-Key', key).send(body);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.text).toBe(first.text);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from webhook_endpoints where url = 'https://hooks.example.com/once'`.execute(
      ctx.db,
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('refuses invalid input with 400 problem+json and writes nothing', async () => {
    const count = async () =>
      (await sql<{ n: number }>`select count(*)::int as n from webhook_endpoints`.execute(ctx.db)).rows[0]!.n;
    const before = await count();
    const cases: Array<[object, string]> = [
      [{ url: 'https://hooks.example.com/', enabled_events: [] }, '/enabled_events'],
      [{ url: 'https://hooks.example.com/', enabled_events: ['user.exploded'] }, '/enabled_events/0'],
      [
        { url: 'https://hooks.example.com/', enabled_events: ['user.created', 'user.created'] },
        '/enabled_events',
      ],
      [{ url: 'not a url', enabled_events: ['*'] }, '/url'],
      [{ enabled_events: ['*'] }, '/url'],
      [{ url: `https://hooks.example.com/${'a'.repeat(2048)}`, enabled_events: ['*'] }, '/url'],
      [{ url: 'https://hooks.example.com/', enabled_events: ['*'], secret: 'whsec_mine' }, '/secret'],
      [
        { url: 'https://hooks.example.com/', enabled_events: ['*'], description: 'x'.repeat(501) },
        '/description',
      ],
    ];
    for (const [body, field] of cases) {
      const problem = expectProblem(
        await strict('post', '/api/v1/webhook-endpoints').send(body),
        400,
        'validation-error',
      );
      expect(problem.errors?.map((e) => e.field).join(' ')).toContain(field);
    }
    const made = (await localEndpoint(t, 'http://receiver.test:1/x', ['invoice.voided'])).id;
    for (const body of [{}, { status: 'paused' }, { grace_period_seconds: 5 }]) {
      expectProblem(
        await t.api.patch(`/api/v1/webhook-endpoints/${made}`).send(body),
        400,
        'validation-error',
      );
    }
    for (const grace of [-1, 604_801, 1.5]) {
      expectProblem(
        await t.api
          .post(`/api/v1/webhook-endpoints/${made}/rotate-secret`)
          .send({ grace_period_seconds: grace }),
        400,
        'validation-error',
      );
    }
    expectProblem(await t.api.get('/api/v1/webhook-endpoints?cursor=bogus'), 400, 'invalid-cursor');
    expectProblem(await t.api.get('/api/v1/webhook-deliveries/not-a-uuid'), 400, 'validation-error');
    expect(await count()).toBe(before + 1);
    expect(ctx.unexpectedErrors).toEqual([]);
  });

  it('is deleted while writes record events for it: none of those writes fails', async () => {
    // Each write's outbox trigger inserts a delivery for every enabled endpoint; one deleted by
    // then failed its foreign key, and the write answered 409 "still referenced".
    const tenant = await ctx.newTenant();
    const statuses: number[] = [];
    for (let round = 0; round < 12; round++) {
      const made = await tenant.api
        .post('/api/v1/webhook-endpoints')
        .send({ url: 'https://hooks.example.com/race', enabled_events: ['*'] });
      expect(made.status, made.text).toBe(201);
      let writing = true;
      const writers = Array.from({ length: 6 }, async () => {
        while (writing) statuses.push((await createUserResponse(tenant)).status);
      });
      await sleep(20);
      const deleted = await tenant.api.delete(`/api/v1/webhook-endpoints/${(made.body as Endpoint).id}`);
      expect(deleted.status, deleted.text).toBe(204);
      await sleep(20);
      writing = false;
      await Promise.all(writers);
    }
    expect(statuses.length).toBeGreaterThan(100);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
  });

  it('needs the admin scope', async () => {
    const res = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((res.body as Schemas['ApiKeyWithSecret']).key);
    expectProblem(await editor.get('/api/v1/webhook-endpoints'), 403, 'forbidden');
    expectProblem(
      await editor
        .post('/api/v1/webhook-endpoints')
        .send({ url: 'https://hooks.example.com/', enabled_events: ['*'] }),
      403,
      'forbidden',
    );
  });
});

describe('server-side request forgery', () => {
  it.each([
    ['http://hooks.example.com/', 'must use https:'],
    ['https://127.0.0.1/', 'loopback'],
    ['https://127.1/', 'loopback'],
    ['https://2130706433/', 'loopback'],
    ['https://0x7f000001/', 'loopback'],
    ['https://[::1]/', 'loopback'],
    ['https://[::ffff:127.0.0.1]/', 'loopback'],
    ['https://10.1.2.3/', 'private'],
    ['https://172.16.0.1/', 'private'],
    ['https://172.31.255.255/', 'private'],
    ['https://192.168.1.1/', 'private'],
    ['https://[fc00::1]/', 'private'],
    ['https://[fd12:3456::1]/', 'private'],
    ['https://169.254.169.254/latest/meta-data/', 'link-local'],
    ['https://[::ffff:a9fe:a9fe]/', 'link-local'],
    ['https://[fe80::1]/', 'link-local'],
    ['https://0.0.0.0/', 'names an unspecified address'],
    ['https://[::]/', 'unspecified'],
    ['https://100.64.0.1/', 'carrier-grade NAT'],
    ['https://224.0.0.1/', 'multicast'],
    ['https://[ff02::1]/', 'multicast'],
    ['https://255.255.255.255/', 'broadcast'],
    ['https://[64:ff9b::a01:203]/', 'private'],
    ['https://[2002:c0a8:101::1]/', 'private'],
    ['https://localhost/', 'loopback name'],
    ['https://LOCALHOST./', 'loopback name'],
    ['https://api.localhost/', 'loopback name'],
    ['https://metadata.google.internal/computeMetadata/v1/', 'metadata'],
    ['https://db.internal/', 'internal name'],
    ['https://printer.local/', 'internal name'],
    ['https://intranet/', 'single-label'],
    ['https://user:pass@hooks.example.com/', 'user name or password'],
    ['https://hooks.example.com:0/x', 'port 0'],
    ['https://:@hooks.example.com/', 'user name or password'],
    ['https://:@93.184.215.14/', 'user name or password'],
    ['https://[3fff::1]/', 'documentation'],
    ['https://[2001:2::1]/', 'benchmarking'],
    ['https://[5f00::1]/', 'SRv6'],
    ['https://[2001:10::1]/', 'ORCHID'],
    ['https://a..b.com/', 'not a valid host name'],
    ['https://-a.com/', 'not a valid host name'],
    ['https://a-.example.com/', 'not a valid host name'],
    ['https://*.com/', 'not a valid host name'],
    ['https://.com/', 'not a valid host name'],
    [`https://${'a'.repeat(64)}.example.com/`, 'not a valid host name'],
    [`https://${'abcdefghi.'.repeat(25)}example.com/`, 'not a valid host name'],
    ['https://private.example.com/', 'resolves to a private address (10.1.2.3)'],
    ['https://metadata.example.com/', 'resolves to a link-local (cloud metadata) address'],
    ['https://mapped.example.com/', 'loopback'],
  ])('refuses %s at registration with 422 on /url', async (url, reason) => {
    const res = await strict('post', '/api/v1/webhook-endpoints').send({ url, enabled_events: ['*'] });
    const problem = expectProblem(res, 422, 'unprocessable');
    expect(problem.detail).toContain(reason);
    expect(problem.errors).toEqual([
      { location: 'body', field: '/url', message: expect.stringContaining(reason) },
    ]);
  });

  it('refuses a private URL in an update too, and leaves the endpoint as it was', async () => {
    const made = (
      await strict('post', '/api/v1/webhook-endpoints').send({
        url: 'https://hooks.example.com/ok',
        enabled_events: ['invoice.voided'],
      })
    ).body as Endpoint;
    expectProblem(
      await strict('patch', `/api/v1/webhook-endpoints/${made.id}`).send({ url: 'https://169.254.169.254/' }),
      422,
      'unprocessable',
    );
    const now = (await t.api.get(`/api/v1/webhook-endpoints/${made.id}`)).body as Endpoint;
    expect(now).toMatchObject({ url: 'https://hooks.example.com/ok', version: 1 });
  });

  it('accepts public addresses and names', async () => {
    for (const url of [
      'https://93.184.215.14/hook',
      'https://[2606:4700:4700::1111]/hook',
      'https://hooks.example.com:8443/h?x=1',
      'https://hooks.example.com./trailing-dot',
      'https://a-b.x1.example.com/hyphens-and-digits',
      `https://${'a'.repeat(63)}.example.com/63-character-label`,
      `https://${'abcdefghi.'.repeat(24)}example.com/251-characters`,
    ]) {
      const res = await strict('post', '/api/v1/webhook-endpoints').send({
        url,
        enabled_events: ['invoice.voided'],
      });
      expect(res.status, res.text).toBe(201);
    }
  });

  it('classifies every address range', () => {
    const expectations: Array<[string, string | undefined]> = [
      ['8.8.8.8', undefined],
      ['93.184.215.14', undefined],
      ['172.15.255.255', undefined],
      ['172.32.0.0', undefined],
      ['100.63.255.255', undefined],
      ['100.128.0.0', undefined],
      ['2606:4700:4700::1111', undefined],
      ['::ffff:8.8.8.8', undefined],
      ['10.255.255.255', 'private'],
      ['192.168.0.1', 'private'],
      ['100.127.0.1', 'shared (carrier-grade NAT)'],
      ['169.254.169.254', 'link-local (cloud metadata)'],
      ['127.255.0.1', 'loopback'],
      ['0.1.2.3', 'unspecified'],
      ['239.255.255.250', 'multicast'],
      ['::ffff:10.0.0.1', 'private'],
      ['::ffff:169.254.169.254', 'link-local (cloud metadata)'],
      ['fe80::1%eth0', 'link-local'],
      ['febf::1', 'link-local'],
      ['fdff:ffff::1', 'private (unique local)'],
      ['::1', 'loopback'],
      ['::', 'unspecified'],
      ['ff05::2', 'multicast'],
      ['2001:db8::1', 'documentation'],
      ['3fff::1', 'documentation'],
      ['3fff:fff:ffff::1', 'documentation'],
      ['3fff:1000::1', undefined],
      ['2001:2::1', 'reserved (benchmarking)'],
      ['2001:2:0:ffff::1', 'reserved (benchmarking)'],
      ['2001:3::1', undefined],
      ['5f00::1', 'reserved (SRv6 segment identifiers)'],
      ['5f00:ffff::1', 'reserved (SRv6 segment identifiers)'],
      ['5f01::1', undefined],
      ['2001:10::1', 'reserved (ORCHID, deprecated)'],
      ['2001:1f:ffff::1', 'reserved (ORCHID, deprecated)'],
      ['2001:20::1', undefined],
    ];
    for (const [address, expected] of expectations) {
      expect([address, forbiddenAddressClass(address)]).toEqual([address, expected]);
    }
  });

  it('refuses at delivery a name that resolves to a private address by then (DNS rebinding), connecting nowhere', async () => {
    // Accepted at registration (the name resolved to a public address then)...
    const connections: net.Socket[] = [];
    const trap = net.createServer((socket) => connections.push(socket.end()));
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    const port = (trap.address() as net.AddressInfo).port;
    try {
      const res = await strict('post', '/api/v1/webhook-endpoints').send({
        url: `https://rebind.example.com:${port}/hook`,
        enabled_events: ['user.created'],
      });
      expect(res.status, res.text).toBe(201);
      const endpoint = res.body as EndpointWithSecret;
      await createUser(t);
      // ...and resolving to 127.0.0.1 at delivery.
      const [delivery] = await until(
        () => dispatch({ allowPrivate: false }),
        async () => {
          const found = await deliveriesOf(t, endpoint.id);
          return found[0]?.attempt_count ? found : undefined;
        },
      );
      expect(delivery).toMatchObject({ status: 'pending', last_status_code: null });
      expect(delivery!.last_error).toBe(
        'refused: rebind.example.com resolves to a loopback address (127.0.0.1)',
      );
      expect(connections).toHaveLength(0);
      await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
    } finally {
      await new Promise((resolve) => trap.close(resolve));
    }
  });

  it('refuses at delivery a URL that is no longer allowed (registered while private URLs were)', async () => {
    const receiver = await startReceiver();
    const endpoint = await localEndpoint(t, `http://127.0.0.1:${receiver.port}/hook`);
    await createUser(t);
    const [delivery] = await until(
      () => dispatch({ allowPrivate: false }),
      async () => {
        const found = await deliveriesOf(t, endpoint.id);
        return found[0]?.attempt_count ? found : undefined;
      },
    );
    expect(delivery!.last_error).toBe('refused: the URL must use https:');
    expect(receiver.received).toHaveLength(0);
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });
});

describe('webhook delivery', () => {
  it('retries with backoff until a receiver that fails twice succeeds, signed, with the attempts visible', async () => {
    const receiver = await startReceiver([503, 500, 200]);
    const endpoint = await localEndpoint(t, receiver.url);
    const user = await createUser(t);
    const [event] = await eventsOf(t, `resource_id=${user.id}&type=user.created`);

    const delivery = await until(dispatch, async () => {
      const [found] = await deliveriesOf(t, endpoint.id);
      return found?.status === 'succeeded' ? found : undefined;
    });
    expect(receiver.received).toHaveLength(3);
    expect(delivery).toMatchObject({
      endpoint_id: endpoint.id,
      event_id: event!.id,
      event_type: 'user.created',
      status: 'succeeded',
      attempt_count: 3,
      next_attempt_at: null,
      last_status_code: 200,
      last_error: null,
    });
    expect(delivery.attempts.map((a) => [a.number, a.status_code, a.error])).toEqual([
      [1, 503, null],
      [2, 500, null],
      [3, 200, null],
    ]);
    // Full jitter at its maximum (random = 1): 40 ms, then 80 ms.
    const [first, second, third] = delivery.attempts.map((a) => Date.parse(a.attempted_at));
    expect(second! - first!).toBeGreaterThanOrEqual(40);
    expect(third! - second!).toBeGreaterThanOrEqual(80);

    for (const request of receiver.received) {
      // The body is the event exactly as the event feed shows it.
      expect(JSON.parse(request.body)).toEqual(event);
      expect(request.headers).toMatchObject({
        'content-type': 'application/json',
        'user-agent': expect.stringMatching(/^Subscriptions-Webhooks\//),
        'subscriptions-event-id': event!.id,
        'subscriptions-delivery-id': delivery.id,
        host: `receiver.test:${receiver.port}`,
      });
      const signature = request.headers['subscriptions-signature'] as string;
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifySignature(signature, request.body, endpoint.secret)).toBe(true);
      expect(verifySignature(signature, request.body, `whsec_${'x'.repeat(43)}`)).toBe(false);
      expect(verifySignature(signature, request.body.replace('}', ' }'), endpoint.secret)).toBe(false);
      // Outside the 5-minute window the same signature is a replay.
      expect(verifySignature(signature, request.body, endpoint.secret, Date.now() + 301_000)).toBe(false);
    }

    const single = await t.api.get(`/api/v1/webhook-deliveries/${delivery.id}`);
    expect(single.status).toBe(200);
    expect(single.body).toEqual(delivery);
    expect(await deliveriesOf(t, endpoint.id, `?status=succeeded&event_id=${event!.id}`)).toEqual([delivery]);
    expect(await deliveriesOf(t, endpoint.id, '?status=failed')).toEqual([]);
    const metrics = await register.getSingleMetricAsString('webhook_delivery_attempts_total');
    expect(metrics).toMatch(/webhook_delivery_attempts_total\{outcome="succeeded"\} [1-9]/);
    expect(metrics).toMatch(/webhook_delivery_attempts_total\{outcome="http_error"\} [1-9]/);
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });

  it("never wakes the dispatcher for a disabled endpoint's deliveries, however overdue", async () => {
    const receiver = await startReceiver();
    const endpoint = await localEndpoint(t, receiver.url, ['*']);
    await t.api.patch(`/api/v1/webhook-endpoints/${endpoint.id}`).send({ status: 'disabled' }).expect(200);
    // The delivery of its own creation waits, pending: due long before anything else here.
    const longAgo = new Date('2000-01-01T00:00:00Z');
    const updated = await ctx.db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: longAgo })
      .where('endpoint_id', '=', endpoint.id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(1n);
    // Counted, it woke the dispatcher at once, and again, for a delivery it would never take.
    const next = await nextDueAt({ db: ctx.appDb, ownerDb: ctx.db });
    expect(next === undefined || next > longAgo, String(next)).toBe(true);
  });

  it('sends only the event types an endpoint asked for, nothing to disabled endpoints, and records a timeout', async () => {
    const receiver = await startReceiver();
    const users = await localEndpoint(t, receiver.url, ['user.updated']);
    const everything = await localEndpoint(t, receiver.url, ['*']);
    await t.api.patch(`/api/v1/webhook-endpoints/${everything.id}`).send({ status: 'disabled' }).expect(200);
    const user = await createUser(t);
    await t.api.patch(`/api/v1/users/${user.id}`).send({ name: 'Renamed' }).expect(200);
    const [delivery] = await until(dispatch, async () => {
      const found = await deliveriesOf(t, users.id);
      return found[0]?.status === 'succeeded' ? found : undefined;
    });
    expect(delivery!.event_type).toBe('user.updated');
    // (It got the event of its own creation, made while it was enabled; nothing since.)
    expect((await deliveriesOf(t, everything.id)).map((d) => d.event_type)).toEqual([
      'webhook_endpoint.created',
    ]);

    // A receiver that never answers: the attempt ends at the timeout, and is retried.
    const silent = net.createServer((socket) => socket.resume()); // reads, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const slow = await localEndpoint(
        t,
        `http://receiver.test:${(silent.address() as net.AddressInfo).port}/`,
      );
      await createUser(t);
      const [timedOut] = await until(
        () => dispatch({ timeoutMs: 200 }),
        async () => {
          const found = await deliveriesOf(t, slow.id);
          return found[0]?.attempt_count ? found : undefined;
        },
      );
      expect(timedOut).toMatchObject({
        status: 'pending',
        last_status_code: null,
        last_error: 'timed out after 200 ms',
      });
      expect(timedOut!.attempts[0]!.duration_ms).toBeGreaterThanOrEqual(190);
      await t.api.delete(`/api/v1/webhook-endpoints/${slow.id}`).expect(204);
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
    await t.api.delete(`/api/v1/webhook-endpoints/${users.id}`).expect(204);
    await t.api.delete(`/api/v1/webhook-endpoints/${everything.id}`).expect(204);
  });

  it('signs with both secrets during a rotation grace period, then with the new one only', async () => {
    const receiver = await startReceiver();
    const endpoint = await localEndpoint(t, receiver.url);
    const rotated = await t.api
      .post(`/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`)
      .set('If-Match', '"1"')
      .send({ grace_period_seconds: 3600 });
    expect(rotated.status, rotated.text).toBe(200);
    const withNew = rotated.body as EndpointWithSecret;
    expect(withNew.secret).not.toBe(endpoint.secret);
    expect(rotated.headers.etag).toBe('"2"');
    expect(Date.parse(withNew.previous_secret_expires_at!) - Date.now()).toBeGreaterThan(3590_000);
    expect((await t.api.get(`/api/v1/webhook-endpoints/${endpoint.id}`)).text).not.toContain('whsec_');

    await createUser(t);
    await until(dispatch, () => (receiver.received.length === 1 ? true : undefined));
    const during = receiver.received[0]!;
    const signature = during.headers['subscriptions-signature'] as string;
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifySignature(signature, during.body, endpoint.secret)).toBe(true);
    expect(verifySignature(signature, during.body, withNew.secret)).toBe(true);
    // Each v1 is one secret's: the newest first.
    const [, newest, oldest] = signature.split(',');
    expect(
      verifySignature(`t=${signature.split(',')[0]!.slice(2)},${newest}`, during.body, withNew.secret),
    ).toBe(true);
    expect(
      verifySignature(`t=${signature.split(',')[0]!.slice(2)},${oldest}`, during.body, endpoint.secret),
    ).toBe(true);

    // No body: the default grace period of a day. Then 0: the older secret stops at once.
    const byDefault = await t.api.post(`/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(byDefault.status, byDefault.text).toBe(200);
    expect(Date.parse((byDefault.body as Endpoint).previous_secret_expires_at!) - Date.now()).toBeGreaterThan(
      86_390_000,
    );
    const now = await t.api
      .post(`/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`)
      .send({ grace_period_seconds: 0 });
    const latest = now.body as EndpointWithSecret;
    expect(latest.previous_secret_expires_at).toBeNull();
    await createUser(t);
    await until(dispatch, () => (receiver.received.length === 2 ? true : undefined));
    const after = receiver.received[1]!;
    const single = after.headers['subscriptions-signature'] as string;
    expect(single).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(single, after.body, latest.secret)).toBe(true);
    expect(verifySignature(single, after.body, withNew.secret)).toBe(false);

    const rotations = await eventsOf(t, `resource_id=${endpoint.id}&type=webhook_endpoint.secret_rotated`);
    expect(rotations).toHaveLength(3);
    expect(JSON.stringify(rotations)).not.toContain('whsec_');
    expectProblem(
      await t.api.post(`/api/v1/webhook-endpoints/${endpoint.id}/rotate-secret`).set('If-Match', '"1"'),
      412,
      'precondition-failed',
    );
    expectProblem(
      await t.api.post(`/api/v1/webhook-endpoints/${randomUUID()}/rotate-secret`).send({}),
      404,
      'not-found',
    );
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });

  it('disables an endpoint only with the attempt that ends its delivery, however late an answer comes', async () => {
    // An attempt begun 350 ms ago, within the delivery's limit of 300 ms from it, answered only now:
    // the delivery waits for its try at the limit, so the endpoint must stay enabled to get it.
    // (Measured to the answer, the endpoint was disabled here, and the delivery left pending.)
    const receiver = await startReceiver([500]);
    const endpoint = await localEndpoint(t, receiver.url);
    await createUser(t);
    const [delivery] = await deliveriesOf(t, endpoint.id);
    const { rows } = await sql<{ lease_token: string }>`
      update webhook_deliveries set lease_token = gen_random_uuid(), leased_until = now() + interval '10 seconds'
      where id = ${delivery!.id} returning lease_token`.execute(ctx.db);
    const settings = { retryBaseMs: 20, retryForMs: 300, random: () => 1 };
    const recorded = await recordAttempt(
      { db: ctx.appDb, ownerDb: ctx.db },
      { id: delivery!.id, tenant_id: t.id, lease_token: rows[0]!.lease_token },
      { attempts: 0, firstAttemptedAt: null },
      { attemptedAt: new Date(Date.now() - 350), durationMs: 350, statusCode: 500, error: null },
      settings,
    );
    expect(recorded).toEqual({ kind: 'recorded', status: 'pending', endpointDisabled: false });
    expect(((await t.api.get(`/api/v1/webhook-endpoints/${endpoint.id}`)).body as Endpoint).status).toBe(
      'enabled',
    );
    // Its try at the limit is due at once, fails the delivery, and disables the endpoint with it.
    const failed = await until(
      () => dispatch(settings),
      async () => {
        const [found] = await deliveriesOf(t, endpoint.id);
        return found?.status === 'failed' ? found : undefined;
      },
    );
    expect(failed.attempt_count).toBe(2);
    expect(((await t.api.get(`/api/v1/webhook-endpoints/${endpoint.id}`)).body as Endpoint).status).toBe(
      'disabled',
    );
  });

  it('sends a delivery again on request: one more attempt after its retries, not to a disabled endpoint', async () => {
    const statuses = [500];
    const receiver = await startReceiver(statuses);
    const endpoint = await localEndpoint(t, receiver.url);
    await createUser(t);
    const limits = { retryBaseMs: 20, retryForMs: 400 };
    const failedWith = async (status: Delivery['status'], attempts?: number) =>
      until(
        () => dispatch(limits),
        async () => {
          const [found] = await deliveriesOf(t, endpoint.id);
          return found?.status === status && (attempts === undefined || found.attempt_count === attempts)
            ? found
            : undefined;
        },
      );
    const failed = await failedWith('failed');
    const path = `/api/v1/webhook-deliveries/${failed.id}/retry`;
    // Its failures disabled the endpoint too: nothing is sent there.
    const refused = await t.api.post(path);
    expect([refused.status, (refused.body as Schemas['Problem']).detail]).toEqual([
      409,
      "The delivery's endpoint is disabled: enable it (PATCH status: enabled) first.",
    ]);
    await t.api.patch(`/api/v1/webhook-endpoints/${endpoint.id}`).send({ status: 'enabled' }).expect(200);
    statuses.push(200); // the receiver is back

    const retried = await t.api.post(path);
    expect(retried.status, retried.text).toBe(202);
    expect(retried.body).toMatchObject({
      id: failed.id,
      status: 'pending',
      attempt_count: failed.attempt_count,
    });
    const sent = await failedWith('succeeded', failed.attempt_count + 1);
    expect(sent.attempts.at(-1)).toMatchObject({ number: failed.attempt_count + 1, status_code: 200 });
    expect(receiver.received.at(-1)!.headers['subscriptions-delivery-id']).toBe(failed.id);

    // A delivered one is sent again too, as the same delivery (receivers deduplicate by its id).
    const delivered = await t.api.post(path);
    expect(delivered.status, delivered.text).toBe(202);
    await failedWith('succeeded', failed.attempt_count + 2);
    expect(receiver.received).toHaveLength(failed.attempt_count + 2);
    // Sent again and refused, it stays succeeded (its event was delivered), also while that
    // attempt waits (retest15 #4), with the failed attempt recorded, and is not retried on the
    // schedule (webhooks1 #3); nor does the endpoint back off for it (retest15 #3).
    statuses[1] = 500;
    const resent = await t.api.post(path);
    expect(resent.status, resent.text).toBe(202);
    expect(resent.body).toMatchObject({ status: 'succeeded' });
    const listed = (await t.api.get(`/api/v1/webhook-endpoints/${endpoint.id}/deliveries?status=pending`))
      .body as Schemas['WebhookDeliveryList'];
    expect(listed.data).toEqual([]);
    const again = await failedWith('succeeded', failed.attempt_count + 3);
    expect(again.attempts.at(-1)).toMatchObject({ number: failed.attempt_count + 3, status_code: 500 });
    const { rows } = await sql<{ consecutive_failures: number; retry_at: Date | null }>`
      select consecutive_failures, retry_at from webhook_endpoints where id = ${endpoint.id}`.execute(ctx.db);
    expect(rows).toEqual([{ consecutive_failures: 0, retry_at: null }]);
    await dispatch(limits);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await dispatch(limits);
    expect(receiver.received).toHaveLength(failed.attempt_count + 3);
    const unknown = await t.api.post(`/api/v1/webhook-deliveries/${endpoint.id}/retry`);
    expect(unknown.status).toBe(404);
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });

  it('disables an endpoint whose every attempt failed for the retry limit, with an event, and re-enables it', async () => {
    const receiver = await startReceiver([500]);
    const endpoint = await localEndpoint(t, receiver.url);
    await createUser(t);
    const limits = { retryBaseMs: 20, retryForMs: 400 };
    const failed = await until(
      () => dispatch(limits),
      async () => {
        const [found] = await deliveriesOf(t, endpoint.id);
        return found?.status === 'failed' ? found : undefined;
      },
    );
    expect(failed.next_attempt_at).toBeNull();
    // Retried until the limit, and the last try falls on it: every attempt but the last began
    // within 400 ms of the first, the last at or after it. (How many fit depends on the machine's
    // load, so their number is not asserted beyond the first and the last.)
    expect(failed.attempt_count).toBeGreaterThanOrEqual(2);
    const began = failed.attempts.map(
      (a) => Date.parse(a.attempted_at) - Date.parse(failed.attempts[0]!.attempted_at),
    );
    expect(
      began.slice(0, -1).every((ms) => ms < 400),
      began.join(),
    ).toBe(true);
    expect(began.at(-1)).toBeGreaterThanOrEqual(400);

    const disabled = (await t.api.get(`/api/v1/webhook-endpoints/${endpoint.id}`)).body as Endpoint;
    expect(disabled).toMatchObject({
      status: 'disabled',
      disabled_reason: 'Every delivery attempt failed for 400 ms (last: HTTP 500).',
    });
    const [event] = await eventsOf(t, `resource_id=${endpoint.id}&type=webhook_endpoint.disabled`);
    expect(event).toMatchObject({
      actor: { type: 'system', id: null },
      data: { id: endpoint.id, status: 'disabled' },
      previous: { status: 'enabled', disabled_reason: null },
    });
    // Disabled: new events are not queued for it.
    await createUser(t);
    await dispatch(limits);
    expect(await deliveriesOf(t, endpoint.id)).toHaveLength(1);

    const enabled = await t.api.patch(`/api/v1/webhook-endpoints/${endpoint.id}`).send({ status: 'enabled' });
    expect(enabled.body).toMatchObject({ status: 'enabled', disabled_reason: null });
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });

  it('never sends one attempt twice from concurrent dispatchers, and retries a crashed one after its lease', async () => {
    const receiver = await startReceiver();
    const endpoint = await localEndpoint(t, receiver.url);
    for (let i = 0; i < 6; i++) await createUser(t);
    await until(
      () => Promise.all([dispatch({ batchSize: 2 }), dispatch({ batchSize: 2 }), dispatch({ batchSize: 3 })]),
      async () => ((await deliveriesOf(t, endpoint.id, '?status=succeeded')).length === 6 ? true : undefined),
    );
    const ids = receiver.received.map((r) => r.headers['subscriptions-delivery-id']);
    expect(new Set(ids).size).toBe(6);
    expect(ids).toHaveLength(6);

    // A dispatcher claims and dies: nobody else takes it until its lease ends, then it is sent.
    await createUser(t);
    await until(
      async () => {},
      async () => ((await deliveriesOf(t, endpoint.id, '?status=pending')).length === 1 ? true : undefined),
    );
    const crashed = await claimDueDeliveries({ db: ctx.appDb, ownerDb: ctx.db }, 10, 300);
    expect(crashed.length).toBeGreaterThanOrEqual(1);
    expect((await dispatch()).attempted).toBe(0);
    expect(receiver.received).toHaveLength(6);
    await sleep(350);
    await until(dispatch, () => (receiver.received.length === 7 ? true : undefined));
    const [retried] = await deliveriesOf(t, endpoint.id);
    expect(retried).toMatchObject({ status: 'succeeded', attempt_count: 1 });
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });

  it('wakes on the trigger notification: a running dispatcher sends at once, without waiting for its poll', async () => {
    const receiver = await startReceiver();
    const endpoint = await localEndpoint(t, receiver.url);
    const dispatcher = await startWebhookDispatcher({
      ownerUrl: ctx.url,
      ownerDb: ctx.db,
      appDb: ctx.appDb,
      logger: silentLogger(),
      allowPrivate: true,
      lookup: deliveryDns,
      retryBaseMs: 40,
      retryForMs: 60_000,
      pollMs: 60_000,
    });
    try {
      await sleep(100); // its first round, with nothing due (other endpoints are gone or failing)
      const before = receiver.received.length;
      const started = Date.now();
      await createUser(t);
      await until(
        () => sleep(10),
        () => (receiver.received.length > before ? true : undefined),
      );
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await dispatcher.stop();
    }
    await t.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`).expect(204);
  });

  it('keeps tenants apart: deliveries of one tenant never reach another tenant’s endpoints', async () => {
    const other = await ctx.newTenant();
    const ours = await startReceiver();
    const theirs = await startReceiver();
    const ourEndpoint = await localEndpoint(t, ours.url, ['*']);
    const theirEndpoint = await localEndpoint(other, theirs.url, ['*']);
    const ourUser = await createUser(t);
    const theirUser = await createUser(other);
    await until(dispatch, async () => {
      const a = await deliveriesOf(t, ourEndpoint.id, '?status=succeeded');
      const b = await deliveriesOf(other, theirEndpoint.id, '?status=succeeded');
      return a.length >= 1 && b.length >= 1 ? true : undefined;
    });
    const resourceIds = (r: Received[]) => r.map((x) => (JSON.parse(x.body) as Schemas['Event']).resource_id);
    expect(resourceIds(ours.received)).toContain(ourUser.id);
    expect(resourceIds(ours.received)).not.toContain(theirUser.id);
    expect(resourceIds(theirs.received)).toContain(theirUser.id);
    expect(resourceIds(theirs.received)).not.toContain(ourUser.id);

    // Another tenant's endpoint and deliveries answer 404, like ids that do not exist.
    const [theirDelivery] = await deliveriesOf(other, theirEndpoint.id);
    expectProblem(await t.api.get(`/api/v1/webhook-endpoints/${theirEndpoint.id}`), 404, 'not-found');
    expectProblem(
      await t.api.get(`/api/v1/webhook-endpoints/${theirEndpoint.id}/deliveries`),
      404,
      'not-found',
    );
    expectProblem(await t.api.get(`/api/v1/webhook-deliveries/${theirDelivery!.id}`), 404, 'not-found');
    expectProblem(
      await t.api.patch(`/api/v1/webhook-endpoints/${theirEndpoint.id}`).send({ status: 'disabled' }),
      404,
      'not-found',
    );
    const ourList = (await t.api.get('/api/v1/webhook-endpoints')).body as Schemas['WebhookEndpointList'];
    expect(ourList.data.map((e) => e.id)).not.toContain(theirEndpoint.id);
    await t.api.delete(`/api/v1/webhook-endpoints/${ourEndpoint.id}`).expect(204);
    await other.api.delete(`/api/v1/webhook-endpoints/${theirEndpoint.id}`).expect(204);
  });

  it('computes retry delays with exponential backoff and full jitter, capped at 6 hours', () => {
    const settings = { retryBaseMs: 30_000, retryForMs: 259_200_000 };
    expect([1, 2, 3, 11].map((n) => retryDelayMs(n, { ...settings, random: () => 0.999999 }))).toEqual([
      29_999,
      59_999,
      119_999,
      6 * 3600 * 1000 - 22,
    ]);
    expect(retryDelayMs(5, { ...settings, random: () => 0 })).toBe(0);
  });
});

describe('the webhooks migration', () => {
  it('goes down, leaving events writable without the trigger, and up again', async () => {
    const serverUrl = testServerUrl();
    const name = `webhooks_${randomUUID().replaceAll('-', '')}`;
    await ensureDatabase(serverUrl, name);
    const db = createDb(databaseUrl(serverUrl, name), { poolSize: 1 });
    try {
      const migrator = createMigrator(db);
      const names = Object.keys(migrations);
      const before = names[names.indexOf('202611240006_webhooks') - 1] ?? NO_MIGRATIONS;
      unwrap(await migrator.migrateToLatest());
      const down = unwrap(await migrator.migrateTo(before));
      expect(down).toContain('down 202611240006_webhooks');
      const left = await sql<{ name: string }>`
        select relname as name from pg_class where relname like 'webhook%'
        union all select tgname from pg_trigger where tgname like '%webhook%'
        union all select proname from pg_proc where proname like '%webhook%'`.execute(db);
      expect(left.rows).toEqual([]);
      await sql`insert into tenants (id, name) values ('01900000-0000-7000-8000-000000000001', 'x')`.execute(
        db,
      );
      await sql`insert into events (tenant_id, type, resource_type, resource_id, actor, data)
        values ('01900000-0000-7000-8000-000000000001', 'user.created', 'user', gen_random_uuid(), 'system', '{}')`.execute(
        db,
      );
      expect(unwrap(await migrator.migrateToLatest())).toContain('up 202611240006_webhooks');
    } finally {
      await db.destroy();
      await dropDatabase(serverUrl, name);
    }
  });
});
