// The typed SDK (clients/typescript) against the real server on a real port: pagination, the
// Idempotency-Key it adds and reuses across its retries, Retry-After, problem errors, and
// webhook verification against the API's own signatures; and its types, as a partner's strict
// TypeScript project sees them (the README's example included).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  createClient,
  pages,
  paginate,
  ProblemError,
  recordUsage,
  UsageBatchError,
  retryAfterMs,
  verifyWebhook,
  WebhookSignatureError,
} from '../../clients/typescript/src/index.js';
import { signatureHeader } from '../../src/webhooks/sign.js';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();

/** A fetch that records what it sends and answers the first `failures` attempts itself. */
function flaky(failures: Array<'network' | Response>) {
  const sent: Request[] = [];
  return {
    sent,
    fetch: async (request: Request) => {
      sent.push(request.clone());
      const failure = failures.shift();
      if (failure === 'network') throw new TypeError('fetch failed: connection reset');
      if (failure) return failure;
      return fetch(request);
    },
  };
}

/** A fetch that answers every request itself (the server never sees it), recording it. */
function answering(answer: () => Response) {
  const sent: Request[] = [];
  return {
    sent,
    fetch: (request: Request) => {
      sent.push(request.clone());
      return request.signal.aborted
        ? Promise.reject(request.signal.reason as Error)
        : Promise.resolve(answer());
    },
  };
}

const unavailable = (retryAfter = '0') =>
  new Response(
    JSON.stringify({ type: '/problems/service-unavailable', title: 'Service unavailable', status: 503 }),
    {
      status: 503,
      headers: { 'content-type': 'application/problem+json', 'retry-after': retryAfter },
    },
  );

describe('the SDK', () => {
  it('pages through a whole list, and the event feed to its newest event', async () => {
    const t = await ctx.newTenant();
    const api = await ctx.sdk(t.key);
    const created: string[] = [];
    for (let i = 0; i < 23; i++) {
      const { data, response } = await api.POST('/api/v1/users', {
        body: { name: `User ${i}`, email: `u${i}@example.com` },
      });
      created.push(data!.id);
      // The answer keeps the address it came from (partner2: it was "").
      if (i === 0) expect(new URL(response.url).pathname).toBe('/api/v1/users');
    }
    const seen: string[] = [];
    for await (const user of paginate(api, '/api/v1/users', { params: { query: { limit: 5 } } }))
      seen.push(user.id);
    expect(seen).toEqual([...created].reverse()); // newest first, every one once
    const events: string[] = [];
    for await (const event of paginate(api, '/api/v1/events', { params: { query: { limit: 10 } } }))
      events.push(event.type);
    expect(events.filter((type) => type === 'user.created')).toHaveLength(23);
    // pages() keeps each page's cursor: a walk resumed from one goes on where it was (sdk6 #4).
    const walked: Array<{ ids: string[]; next: string | null }> = [];
    for await (const page of pages(api, '/api/v1/users', { params: { query: { limit: 10 } } }))
      walked.push({ ids: page.data.map((u) => u.id), next: page.next_cursor });
    expect(walked.map((p) => p.ids.length)).toEqual([10, 10, 3]);
    const resumed: string[] = [];
    for await (const user of paginate(api, '/api/v1/users', {
      params: { query: { limit: 10, cursor: walked[0]!.next! } },
    }))
      resumed.push(user.id);
    expect(resumed).toEqual(seen.slice(10));
  });

  it('retries a read whose connection is lost while its body arrives (sdk6 #1)', async () => {
    const t = await ctx.newTenant();
    const cut = () =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"data": [{"id"'));
            controller.error(new TypeError('terminated'));
          },
        }),
        { status: 200, headers: { 'content-type': 'application/json' } },
      );
    const { sent, fetch } = flaky([cut()]);
    const api = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, retryBaseMs: 1, fetch });
    const { data } = await api.GET('/api/v1/users');
    expect(data).toEqual({ data: [], next_cursor: null });
    expect(sent).toHaveLength(2);
  });

  it('titles a problem without a body or a status text by its status (sdk6 #5)', async () => {
    const { fetch } = answering(
      () =>
        new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }),
    );
    const api = createClient({ baseUrl: 'http://api.test', apiKey: 'sk_x', maxRetries: 0, fetch });
    const error = await api.GET('/api/v1/users').then(
      () => undefined,
      (e: unknown) => e as ProblemError,
    );
    expect(error).toBeInstanceOf(ProblemError);
    expect([error!.title, error!.message]).toEqual(['HTTP 502', '502 HTTP 502']);
    expect(error!.instance).toBeUndefined();
  });

  it("gives a problem's instance, the path it is about (sdk1 #5)", async () => {
    const t = await ctx.newTenant();
    const api = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, maxRetries: 0 });
    const id = '01900000-0000-7000-8000-000000000001';
    const error = await api.GET('/api/v1/users/{userId}', { params: { path: { userId: id } } }).then(
      () => undefined,
      (e: unknown) => e as ProblemError,
    );
    expect(error).toMatchObject({ status: 404, instance: `/api/v1/users/${id}` });
  });

  it('adds one Idempotency-Key to a write and keeps it across retries: the write happens once', async () => {
    const t = await ctx.newTenant();
    const network = flaky(['network', unavailable()]);
    const api = createClient({
      baseUrl: await ctx.baseUrl(),
      apiKey: t.key,
      fetch: network.fetch,
      retryBaseMs: 1,
    });
    const { data: user } = await api.POST('/api/v1/users', {
      body: { name: 'Ada', email: 'ada@example.com' },
    });
    expect(network.sent).toHaveLength(3);
    const keys = network.sent.map((r) => r.headers.get('idempotency-key'));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from users where tenant_id = ${t.id} and email = 'ada@example.com'`.execute(
      ctx.db,
    );
    expect(rows[0]!.n).toBe(1);
    // Sent again with that key, the API replays the first answer.
    const again = await api.POST('/api/v1/users', {
      params: { header: { 'Idempotency-Key': keys[0]! } },
      body: { name: 'Ada', email: 'ada@example.com' },
    });
    expect(again.data!.id).toBe(user!.id);
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
  });

  it('tells the key of a write that failed for good, so that retrying after a timeout writes once', async () => {
    const t = await ctx.newTenant();
    const baseUrl = await ctx.baseUrl();
    // The API performs the write, and its answer comes later than the caller's timeout.
    const slow = createClient({
      baseUrl,
      apiKey: t.key,
      fetch: async (request) => {
        const response = await fetch(new Request(request, { signal: null }));
        await new Promise((resolve) => setTimeout(resolve, 300));
        request.signal.throwIfAborted();
        return response;
      },
    });
    const body = { name: 'Ada', email: 'ada-timeout@example.com' };
    const error = await slow.POST('/api/v1/users', { body, signal: AbortSignal.timeout(100) }).then(
      () => undefined,
      (e: unknown) => e as Error & { idempotencyKey?: string },
    );
    expect(error).toMatchObject({
      name: 'TimeoutError',
      idempotencyKey: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const api = createClient({ baseUrl, apiKey: t.key });
    const again = await api.POST('/api/v1/users', {
      params: { header: { 'Idempotency-Key': error!.idempotencyKey! } },
      body,
    });
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from users where tenant_id = ${t.id} and email = ${body.email}`.execute(
      ctx.db,
    );
    expect(rows[0]!.n).toBe(1);

    // Two writes sharing one signal each get their own key.
    const shared = AbortSignal.timeout(100);
    const [a, b] = await Promise.all(
      [1, 2].map((n) =>
        slow
          .POST('/api/v1/users', {
            body: { name: 'Ada', email: `ada-shared-${n}@example.com` },
            signal: shared,
          })
          .then(
            () => undefined,
            (e: unknown) => e as Error & { idempotencyKey?: string },
          ),
      ),
    );
    expect(a!.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(b!.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(a!.idempotencyKey).not.toBe(b!.idempotencyKey);
    expect(a).toMatchObject({ name: 'TimeoutError' });

    // Timed out while the answer's body arrives (its headers came in time): the key too.
    const lateBody = createClient({
      baseUrl,
      apiKey: t.key,
      fetch: async (request) => {
        const response = await fetch(new Request(request, { signal: null }));
        const text = await response.text();
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            const timer = setTimeout(() => {
              controller.enqueue(new TextEncoder().encode(text));
              controller.close();
            }, 300);
            request.signal.addEventListener('abort', () => {
              clearTimeout(timer);
              controller.error(request.signal.reason);
            });
          },
        });
        return new Response(body, { status: response.status, headers: response.headers });
      },
    });
    const late = { name: 'Ada', email: 'ada-late-body@example.com' };
    const midBody = await lateBody
      .POST('/api/v1/users', { body: late, signal: AbortSignal.timeout(100) })
      .then(
        () => undefined,
        (e: unknown) => e as Error & { idempotencyKey?: string },
      );
    expect(midBody).toMatchObject({
      name: 'TimeoutError',
      idempotencyKey: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const replayed = await api.POST('/api/v1/users', {
      params: { header: { 'Idempotency-Key': midBody!.idempotencyKey! } },
      body: late,
    });
    expect(replayed.response.headers.get('idempotent-replayed')).toBe('true');

    // A problem answer carries it too: the key given, or the one the client added.
    const refused = await api
      .POST('/api/v1/users', {
        params: { header: { 'Idempotency-Key': 'mine-1' } },
        body: { ...body, email: 'x' },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).toBeInstanceOf(ProblemError);
    expect(refused).toMatchObject({ status: 400, idempotencyKey: 'mine-1' });
    const generated = await api.POST('/api/v1/users', { body }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(generated).toMatchObject({
      status: 409,
      idempotencyKey: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    // A read has none.
    const missing = await api
      .GET('/api/v1/users/{userId}', { params: { path: { userId: randomUUID() } } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(missing).toMatchObject({ status: 404, idempotencyKey: undefined });
  });

  it('sends no Idempotency-Key where the API refuses one, and does not repeat such a write after a lost answer', async () => {
    const t = await ctx.newTenant();
    const network = flaky(['network']);
    const api = createClient({
      baseUrl: await ctx.baseUrl(),
      apiKey: t.key,
      fetch: network.fetch,
      retryBaseMs: 1,
    });
    const lost = await api.POST('/api/v1/api-keys', { body: { name: 'reporting', role: 'viewer' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(lost).toBeInstanceOf(Error);
    expect(network.sent).toHaveLength(1); // creating a key twice would leave one nobody holds
    const { data: key } = await api.POST('/api/v1/api-keys', { body: { name: 'reporting', role: 'viewer' } });
    expect(key!.key).toMatch(/^sk_/);
    expect(network.sent.map((r) => r.headers.get('idempotency-key'))).toEqual([null, null]);
  });

  it('records usage in batches of 1,000 and resends a batch after a lost answer: each event counted once', async () => {
    const t = await ctx.newTenant();
    const admin = await ctx.sdk(t.key);
    const { data: metric } = await admin.POST('/api/v1/billable-metrics', {
      body: { code: 'calls', name: 'API calls', aggregation: 'count' },
    });
    const { data: plan } = await admin.POST('/api/v1/plans', {
      body: {
        code: 'metered',
        name: 'Metered',
        interval: 'month',
        interval_count: 1,
        price: { model: 'flat', amount: '0' },
        usage_charges: [{ metric: metric!.code, model: 'per_unit', amount: '0.001' }],
      },
    });
    const { data: user } = await admin.POST('/api/v1/users', {
      body: { name: 'Ada', email: 'ada@example.com' },
    });
    const { data: sub } = await admin.POST('/api/v1/subscriptions', {
      body: { user_id: user!.id, plan_id: plan!.id, status: 'active', start_date: '2026-01-01' },
    });
    // The second batch's answer is lost after the server recorded it: the SDK sends it again.
    let posts = 0;
    const api = createClient({
      baseUrl: await ctx.baseUrl(),
      apiKey: t.key,
      retryBaseMs: 1,
      fetch: async (request) => {
        const response = await fetch(request);
        if (request.method === 'POST' && ++posts === 2) throw new TypeError('fetch failed: socket hang up');
        return response;
      },
    });
    const events = Array.from({ length: 2500 }, (_, i) => ({
      event_id: `call-${i % 2400}`, // the last 100 repeat earlier ids
      user_id: user!.id,
      metric: 'calls',
    }));
    const result = await recordUsage(api, events);
    expect(posts).toBe(4); // three batches, the second sent twice
    expect(result).toMatchObject({ created: 1400, duplicates: 1100 }); // the resent batch: 1,000 duplicates
    expect(result.data.map((d) => d.index)).toEqual(events.map((_, i) => i));
    const { data: usage } = await admin.GET('/api/v1/subscriptions/{subscriptionId}/usage', {
      params: { path: { subscriptionId: sub!.id } },
    });
    expect(usage!.charges[0]).toMatchObject({ quantity: '2400', amount: '2.40' });
    await expect(recordUsage(api, events, { batchSize: 1001 })).rejects.toThrow(RangeError);

    // 1,000 events of over a kilobyte each make more than the API's 1 MB: sent in two batches.
    const large = Array.from({ length: 1000 }, (_, i) => ({
      event_id: `large-${i}`,
      user_id: user!.id,
      metric: 'calls',
      properties: { note: 'x'.repeat(1000) },
    }));
    expect(Buffer.byteLength(JSON.stringify({ events: large }))).toBeGreaterThan(1_048_576);
    const sent: number[] = [];
    const counting = createClient({
      baseUrl: await ctx.baseUrl(),
      apiKey: t.key,
      fetch: async (request) => {
        sent.push(Buffer.byteLength(await request.clone().text()));
        return fetch(request);
      },
    });
    expect(await recordUsage(counting, large)).toMatchObject({ created: 1000, duplicates: 0 });
    expect(sent).toHaveLength(2);
    expect(Math.max(...sent)).toBeLessThanOrEqual(1_048_576);

    // A refused batch says where it starts and what the batches before it recorded (sdk6 #3).
    const mixed = Array.from({ length: 5 }, (_, i) => ({
      event_id: `mixed-${i}`,
      user_id: user!.id,
      metric: i === 3 ? 'nope' : 'calls',
    }));
    const refused = await recordUsage(api, mixed, { batchSize: 2 }).then(
      () => undefined,
      (e: unknown) => e as UsageBatchError,
    );
    expect(refused).toBeInstanceOf(UsageBatchError);
    expect(refused).toBeInstanceOf(ProblemError);
    expect(refused).toMatchObject({ status: 422, batchStart: 2, recorded: { created: 2, duplicates: 0 } });
    expect(refused!.errors.map((e) => e.field)).toEqual([expect.stringMatching(/^\/events\/1(\/|$)/)]);
    // The same with throwOnError: false, where openapi-fetch returns the problem (partner3 #1).
    const quiet = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, throwOnError: false });
    const again = mixed.map((e) => ({ ...e, event_id: `quiet-${e.event_id}` }));
    const quietly = await recordUsage(quiet, again, { batchSize: 2 }).then(
      () => undefined,
      (e: unknown) => e as UsageBatchError,
    );
    expect(quietly).toBeInstanceOf(UsageBatchError);
    expect(quietly).toMatchObject({ status: 422, batchStart: 2, recorded: { created: 2, duplicates: 0 } });
    expect(quietly!.errors.map((e) => e.field)).toEqual([expect.stringMatching(/^\/events\/1(\/|$)/)]);
    expect(quietly!.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('waits as long as Retry-After says, retries a 429, and never retries a 4xx that will not change', async () => {
    const t = await ctx.newTenant();
    const limited = new Response(
      JSON.stringify({ type: '/problems/too-many-requests', title: 'Too many', status: 429 }),
      {
        status: 429,
        headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
      },
    );
    const network = flaky([limited]);
    const api = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, fetch: network.fetch });
    const started = Date.now();
    await api.GET('/api/v1/users');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(network.sent).toHaveLength(2);

    const strict = flaky([]);
    const client = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, fetch: strict.fetch });
    const refused = await client.POST('/api/v1/users', { body: { name: 'No email' } as never }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(strict.sent).toHaveLength(1);
    expect(refused).toBeInstanceOf(ProblemError);
    expect(refused).toMatchObject({ status: 400, type: '/problems/validation-error' });
    expect((refused as ProblemError).errors.length).toBeGreaterThan(0);
  });

  it('gives up after maxRetries with the last answer, as a ProblemError', async () => {
    const t = await ctx.newTenant();
    const network = flaky([unavailable(), unavailable(), unavailable()]);
    const api = createClient({
      baseUrl: await ctx.baseUrl(),
      apiKey: t.key,
      fetch: network.fetch,
      maxRetries: 2,
      retryBaseMs: 1,
    });
    const error = await api.GET('/api/v1/users').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ status: 503, type: '/problems/service-unavailable' });
    expect(network.sent).toHaveLength(3);
  });

  it('throws problems as typed errors, with the request id; or returns them when asked', async () => {
    const t = await ctx.newTenant();
    const api = await ctx.sdk(t.key);
    const missing = randomUUID();
    const error = await api.GET('/api/v1/users/{userId}', { params: { path: { userId: missing } } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ status: 404, type: '/problems/not-found', title: 'Not found' });
    expect((error as ProblemError).requestId).toMatch(/.+/);
    const quiet = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, throwOnError: false });
    const answer = await quiet.GET('/api/v1/users/{userId}', { params: { path: { userId: missing } } });
    expect(answer.response.status).toBe(404);
    expect(answer.error).toMatchObject({ type: '/problems/not-found' });
  });

  it('ends a retry wait as soon as the request is aborted, with the signal’s reason', async () => {
    const network = answering(() => unavailable('5')); // 5 s before the next attempt
    const api = createClient({ baseUrl: 'http://127.0.0.1:9', apiKey: 'sk_x_y', fetch: network.fetch });
    const started = Date.now();
    const error = await api.GET('/api/v1/users', { signal: AbortSignal.timeout(100) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error).toMatchObject({ name: 'TimeoutError' });
    expect(network.sent).toHaveLength(1);

    // Aborted while waiting after a network failure, too.
    const controller = new AbortController();
    const lost = createClient({
      baseUrl: 'http://127.0.0.1:9',
      apiKey: 'sk_x_y',
      retryBaseMs: 5000,
      fetch: () => {
        setTimeout(() => controller.abort(new Error('gave up')), 50);
        return Promise.reject(new TypeError('fetch failed: connection reset'));
      },
    });
    const aborted = Date.now();
    await expect(lost.GET('/api/v1/users', { signal: controller.signal })).rejects.toThrow('gave up');
    expect(Date.now() - aborted).toBeLessThan(1000);
  });

  it('retries a coupon’s DELETE, a quote and a preview (no key: idempotent or read-only), never a key’s creation after a 503', async () => {
    const network = answering(() =>
      network.sent.length === 1
        ? unavailable()
        : new Response(JSON.stringify({}), { headers: { 'content-type': 'application/json' } }),
    );
    const api = createClient({ baseUrl: 'http://127.0.0.1:9', apiKey: 'sk_x_y', fetch: network.fetch });
    const id = randomUUID();
    const calls = [
      () => api.DELETE('/api/v1/coupons/{couponId}', { params: { path: { couponId: id } } }),
      () =>
        api.POST('/api/v1/plans/{planId}/quote', {
          params: { path: { planId: id } },
          body: {} as never,
        }),
      () =>
        api.POST('/api/v1/subscriptions/{subscriptionId}/preview-change', {
          params: { path: { subscriptionId: id } },
          body: {} as never,
        }),
    ];
    for (const call of calls) {
      network.sent.length = 0;
      const { response } = await call();
      expect(response.status).toBe(200);
      expect(network.sent).toHaveLength(2);
      expect(network.sent.map((r) => r.headers.get('idempotency-key'))).toEqual([null, null]);
    }
    network.sent.length = 0;
    await expect(
      api.POST('/api/v1/api-keys', { body: { name: 'reporting', role: 'viewer' } }),
    ).rejects.toMatchObject({ status: 503 });
    expect(network.sent).toHaveLength(1);
  });

  it('pages with throwOnError: false and throws a failed page as a ProblemError', async () => {
    const t = await ctx.newTenant();
    const quiet = createClient({ baseUrl: await ctx.baseUrl(), apiKey: `${t.key}x`, throwOnError: false });
    const pages = async () => {
      for await (const user of paginate(quiet, '/api/v1/users')) expect(user).toBeUndefined();
    };
    const error = await pages().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ status: 401, type: '/problems/unauthorized' });
    expect((error as ProblemError).requestId).toMatch(/.+/);
    const ok = createClient({ baseUrl: await ctx.baseUrl(), apiKey: t.key, throwOnError: false });
    const seen: string[] = [];
    for await (const user of paginate(ok, '/api/v1/users')) seen.push(user.id);
    expect(seen).toEqual([]);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or a date, and backs off with full jitter under a cap', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
    expect(backoffMs(3, 500, 30_000, () => 0.999)).toBe(3996);
    expect(backoffMs(20, 500, 30_000, () => 0.999)).toBe(29_970);
    expect(backoffMs(0, 500, 30_000, () => 0)).toBe(0);
  });
});

describe('verifyWebhook', () => {
  const secret = `whsec_${'a'.repeat(43)}`;
  const body = JSON.stringify({ id: randomUUID(), type: 'invoice.paid' });

  it('accepts the API’s own signature and returns the event; refuses a changed body, an old one, another secret', async () => {
    const now = new Date();
    const header = signatureHeader(body, [secret], now);
    expect(await verifyWebhook(body, header, secret, { now })).toMatchObject({ type: 'invoice.paid' });
    expect(await verifyWebhook(new TextEncoder().encode(body), header, secret, { now })).toMatchObject({
      type: 'invoice.paid',
    });
    await expect(verifyWebhook(body.replace('paid', 'void'), header, secret, { now })).rejects.toThrow(
      WebhookSignatureError,
    );
    await expect(
      verifyWebhook(body, header, secret, { now: new Date(now.getTime() + 301_000) }),
    ).rejects.toThrow(/tolerance/);
    await expect(verifyWebhook(body, header, `whsec_${'b'.repeat(43)}`, { now })).rejects.toThrow(
      WebhookSignatureError,
    );
    await expect(verifyWebhook(body, undefined, secret)).rejects.toThrow(/timestamp/);
  });

  it('accepts either secret during a rotation (two v1 signatures)', async () => {
    const old = `whsec_${'c'.repeat(43)}`;
    const now = new Date();
    const header = signatureHeader(body, [secret, old], now);
    for (const key of [secret, old]) expect(await verifyWebhook(body, header, key, { now })).toBeTruthy();
  });
});

describe('the SDK’s types, as a partner’s strict project compiles them', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const readme = `${root}clients/typescript/README.md`;
  const readmeExample = `${root}test/sdk/readme-example.mts`; // not on disk: the README's ts block
  const fixture = `${root}test/sdk/types.fixture.ts`;
  let program: ts.Program | undefined;

  /** The type errors of one file, a program holding both compiled once (the types are large). */
  function typeErrors(file: string): string[] {
    program ??= (() => {
      const options: ts.CompilerOptions = {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        // The package by its name, as a partner imports it: its source rather than a build.
        paths: { '@subscriptions-api/sdk': [`${root}clients/typescript/src/index.ts`] },
      };
      const blocks = [...readFileSync(readme, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)];
      expect(blocks).toHaveLength(1);
      const example = blocks[0]![1]!;
      const base = ts.createCompilerHost(options);
      const host: ts.CompilerHost = {
        ...base,
        fileExists: (name) => name === readmeExample || base.fileExists(name),
        readFile: (name) => (name === readmeExample ? example : base.readFile(name)),
        getSourceFile: (name, language, ...rest) =>
          name === readmeExample
            ? ts.createSourceFile(name, example, language)
            : base.getSourceFile(name, language, ...rest),
      };
      return ts.createProgram([readmeExample, fixture], options, host);
    })();
    const source = program.getSourceFile(file)!;
    const diagnostics = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ];
    return diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }

  it('lets a request body leave out what has a default, keeps answers’ fields required, and types paginate() by its path', () => {
    expect(typeErrors(fixture)).toEqual([]);
  });

  it('compiles the README’s example as it stands, imports and all', () => {
    expect(typeErrors(readmeExample)).toEqual([]);
  });
});
