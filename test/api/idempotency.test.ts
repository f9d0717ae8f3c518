// Idempotency-Key: a retried write runs once, replays byte for byte, and a crash in the middle
// leaves nothing behind.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { createDb } from '../../src/database/connection.js';
import { rejectRepeatedHeaders } from '../../src/http/repeated-headers.js';
import { spec } from '../../src/spec.js';
import { PLATFORM_KEY, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { createSubscription, createUser } from '../helpers/factories.js';
import { waitForLockWaiters } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

const count = async (table: 'users' | 'events' | 'idempotency_keys', where: string) => {
  const { rows } = await sql<{
    n: number;
  }>`select count(*)::int as n from ${sql.table(table)} where ${sql.raw(where)}`.execute(ctx.db);
  return rows[0]!.n;
};
const usersWithEmail = (email: string) => count('users', `email = '${email}'`);
const eventsOfEmail = (email: string) =>
  count('events', `type = 'user.created' and data->>'email' = '${email}'`);

describe('Idempotency-Key on writes', () => {
  it('runs a POST once and replays its answer byte for byte, marked Idempotent-Replayed', async () => {
    const key = randomUUID();
    const email = `once-${key}@example.com`;
    const send = () =>
      ctx.api.post('/api/v1/users').set('Idempotency-Key', key).send({ name: 'Once', email });
    const first = await send();
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await send();
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await usersWithEmail(email)).toBe(1);
    expect(await eventsOfEmail(email)).toBe(1);
  });

  it('takes no body and {} as the same request (catalog7 #7)', async () => {
    const s = await createSubscription(ctx, {
      status: 'active',
      start_date: '2026-01-01',
      plan_cost: '10.00',
    });
    const key = randomUUID();
    const first = await ctx.api
      .post(`/api/v1/subscriptions/${s.id}/invoices`)
      .set('Idempotency-Key', key)
      .set('Content-Type', 'application/json')
      .send('{}');
    expect(first.status, first.text).toBe(201);
    const again = await ctx.api.post(`/api/v1/subscriptions/${s.id}/invoices`).set('Idempotency-Key', key);
    expect(again.status, again.text).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.text).toBe(first.text);
  });

  it('refuses the same key with another body or path (422), and writes nothing', async () => {
    const key = randomUUID();
    const email = `reuse-${key}@example.com`;
    expect(
      (await ctx.api.post('/api/v1/users').set('Idempotency-Key', key).send({ name: 'A', email })).status,
    ).toBe(201);
    const otherBody = await ctx.api
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ name: 'B', email });
    expectProblem(otherBody, 422, 'idempotency-key-reused');
    const otherPath = await ctx.api
      .post('/api/v1/features')
      .set('Idempotency-Key', key)
      .send({ name: `f-${key}` });
    expectProblem(otherPath, 422, 'idempotency-key-reused');
    expect(await usersWithEmail(email)).toBe(1);
    // The same body with keys in another order is the same request.
    const reordered = await ctx.api
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ email, name: 'A' });
    expect(reordered.headers['idempotent-replayed']).toBe('true');
  });

  it('executes exactly once for 50 concurrent requests with one key: the rest replay or get 409', async () => {
    const key = randomUUID();
    const email = `race-${key}@example.com`;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        ctx.api
          .post('/api/v1/users')
          .set('Idempotency-Key', key)
          .send({ name: 'Race', email })
          .then((r) => r),
      ),
    );
    const created = responses.filter((r) => r.status === 201);
    const busy = responses.filter((r) => r.status === 409);
    expect(created.length + busy.length).toBe(50);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => r.text)).size).toBe(1);
    expect(created.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
    for (const r of busy) {
      expectProblem(r, 409, 'idempotency-in-progress');
      expect(r.headers['retry-after']).toBe('1');
    }
    expect(await usersWithEmail(email)).toBe(1);
    expect(await eventsOfEmail(email)).toBe(1);
  });

  it('stores no failure: after a 409 or a 400 the corrected retry with the same key runs', async () => {
    const taken = await createUser(ctx);
    const key = randomUUID();
    const conflict = await ctx.api
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ name: 'Dup', email: taken.email });
    expectProblem(conflict, 409, 'conflict');
    const invalid = await ctx.api.post('/api/v1/users').set('Idempotency-Key', key).send({ name: 'Dup' });
    expectProblem(invalid, 400, 'validation-error');
    expect(await count('idempotency_keys', `key = '${key}'`)).toBe(0);
    const fixed = await ctx.api
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ name: 'Dup', email: `fixed-${key}@example.com` });
    expect(fixed.status).toBe(201);
  });

  it('keeps keys per API key: another key may use the same value for its own request', async () => {
    const other = await ctx.api.post('/api/v1/api-keys').send({ name: 'second', role: 'editor' });
    const secondKey = (other.body as Schemas['ApiKeyWithSecret']).key;
    const key = randomUUID();
    const a = await ctx.api
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ name: 'A', email: `a-${key}@example.com` });
    const b = await ctx
      .withKey(secondKey)
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ name: 'B', email: `b-${key}@example.com` });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
  });

  it('replays after a restart, and makes PATCH and DELETE safe to retry too', async () => {
    const user = await createUser(ctx);
    const key = randomUUID();
    const patch = () =>
      ctx.api.patch(`/api/v1/users/${user.id}`).set('Idempotency-Key', key).send({ name: 'Renamed once' });
    const first = await patch();
    expect(first.status).toBe(200);
    // A new app on the same database: nothing in memory, the answer comes from PostgreSQL.
    const restarted = ctx.appWith({});
    const replay = await restarted
      .patch(`/api/v1/users/${user.id}`)
      .set('Authorization', `Bearer ${ctx.tenant.key}`)
      .set('Idempotency-Key', key)
      .send({ name: 'Renamed once' });
    expect(replay.text).toBe(first.text);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(await count('events', `type = 'user.updated' and resource_id = '${user.id}'`)).toBe(1);

    const subscription = await createSubscription(ctx);
    const deleteKey = randomUUID();
    const del = () =>
      ctx.api.delete(`/api/v1/subscriptions/${subscription.id}`).set('Idempotency-Key', deleteKey);
    expect((await del()).status).toBe(204);
    const again = await del();
    expect(again.status).toBe(204); // not 404: the first answer, replayed
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  it('refuses keys it cannot honour: too long, not ASCII, or on operations whose answer holds a secret', async () => {
    expectProblem(
      await ctx.api
        .post('/api/v1/users')
        .set('Idempotency-Key', 'k'.repeat(256))
        .send({ name: 'X', email: 'x@example.com' }),
      400,
      'validation-error',
    );
    expectProblem(
      await ctx.api
        .post('/api/v1/api-keys')
        .set('Idempotency-Key', randomUUID())
        .send({ name: 'k', role: 'viewer' }),
      400,
      'validation-error',
    );
    // The contract's pattern accepts exactly the keys the server honours (idem1 #1: it let `""`,
    // an empty quoted key, through to a 400).
    const { pattern } = (
      spec as unknown as { components: { parameters: { IdempotencyKey: { schema: { pattern: string } } } } }
    ).components.parameters.IdempotencyKey.schema;
    for (const key of [
      '""',
      '"',
      '""x',
      'a',
      '"b"',
      'cd',
      '"ef',
      'i j',
      '" k "',
      `"${'g'.repeat(255)}"`,
      'h'.repeat(255),
    ]) {
      const res = await ctx.api
        .post('/api/v1/features')
        .set('Idempotency-Key', `${key}`)
        .send({ name: `edge-${randomUUID()}` });
      expect([key, res.status === 201], res.text).toEqual([key, new RegExp(pattern, 'u').test(key)]);
      expect([key, res.status]).toEqual([key, key === '""' ? 400 : 201]);
    }
    // Spaces around a bare key are not part of it (HTTP trims them): the pattern leaves them out.
    for (const key of [' ', '   ', ' l', 'm ']) {
      expect([key, new RegExp(pattern, 'u').test(key)]).toEqual([key, false]);
    }
    const quoted = await ctx.api
      .post('/api/v1/features')
      .set('Idempotency-Key', `"${randomUUID()}"`)
      .send({ name: `quoted-${randomUUID()}` });
    expect(quoted.status).toBe(201);
  });

  it('refuses a key sent twice (400), writing nothing, as an API key or a content type sent twice', async () => {
    const email = `twice-${randomUUID()}@example.com`;
    const twice = expectProblem(
      await ctx.api
        .post('/api/v1/users')
        .set('Idempotency-Key', [randomUUID(), randomUUID()] as unknown as string)
        .send({ name: 'Twice', email }),
      400,
      'validation-error',
    );
    expect(twice.errors).toEqual([
      { location: 'headers', field: 'idempotency-key', message: 'is sent more than once: send it once' },
    ]);
    expect(await usersWithEmail(email)).toBe(0);
    // Sent twice through fetch (or a browser), the two arrive joined into one line: refused too,
    // not read as a third key (partner2).
    const joined = expectProblem(
      await ctx.api
        .post('/api/v1/users')
        .set('Idempotency-Key', `${randomUUID()}, ${randomUUID()}`)
        .send({ name: 'Joined', email }),
      400,
      'validation-error',
    );
    expect(joined.errors).toEqual([
      {
        location: 'headers',
        field: 'idempotency-key',
        message: expect.stringMatching(/^must be 1 to 255 printable ASCII characters without a comma/),
      },
    ]);
    expect(await usersWithEmail(email)).toBe(0);
    // Authorization and Content-Type too (Node would keep the first of each).
    for (const name of ['Authorization', 'content-type']) {
      let refused: unknown;
      const req = { rawHeaders: ['Host', 'x', name, 'a', 'Accept', '*/*', name, 'b'] } as unknown as Request;
      rejectRepeatedHeaders(req, {} as Response, (error?: unknown) => (refused = error));
      expect(refused).toMatchObject({ status: 400 });
    }
    let passed: unknown = 'not called';
    rejectRepeatedHeaders(
      { rawHeaders: ['Authorization', 'a', 'If-Match', '"1"', 'If-Match', '"2"'] } as unknown as Request,
      {} as Response,
      (error?: unknown) => (passed = error),
    );
    expect(passed).toBeUndefined();
  });

  it('refuses a key on the operations whose answer holds a key: POST /api-keys and POST /tenants', async () => {
    const before = await fingerprint(ctx.db);
    for (const request of [
      ctx.api.post('/api/v1/api-keys').send({ name: 'k', role: 'viewer' }),
      ctx.withKey(PLATFORM_KEY).post('/api/v1/tenants').send({ name: 'Keyed' }),
    ]) {
      const problem = expectProblem(
        await request.set('Idempotency-Key', randomUUID()),
        400,
        'validation-error',
      );
      expect(problem.errors).toEqual([
        { location: 'headers', field: 'idempotency-key', message: expect.stringContaining('secret') },
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('treats a key older than 24 hours as new, and the purge deletes it', async () => {
    const key = randomUUID();
    const body = { name: 'Old', email: `old-${key}@example.com` };
    expect((await ctx.api.post('/api/v1/users').set('Idempotency-Key', key).send(body)).status).toBe(201);
    await sql`update idempotency_keys set created_at = now() - interval '25 hours' where key = ${key}`.execute(
      ctx.db,
    );
    // Runs again (and finds the email taken: a new execution, not a replay).
    expectProblem(
      await ctx.api.post('/api/v1/users').set('Idempotency-Key', key).send(body),
      409,
      'conflict',
    );
    const { purgeExpiredIdempotencyKeys } = await import('../../src/services/maintenance.js');
    expect(await purgeExpiredIdempotencyKeys({ db: ctx.appDb })).toBeGreaterThanOrEqual(1);
    expect(await count('idempotency_keys', `key = '${key}'`)).toBe(0);
  });
});

describe('a fault between the write and the key record', () => {
  it('leaves nothing of either, and the retry runs', async () => {
    const faulty = ctx.appWith({
      faults: {
        beforeCommit: () => {
          throw new Error('injected fault');
        },
      },
    });
    const key = randomUUID();
    const email = `fault-${key}@example.com`;
    const res = await faulty
      .post('/api/v1/users')
      .set('Authorization', `Bearer ${ctx.tenant.key}`)
      .set('Idempotency-Key', key)
      .send({ name: 'Fault', email });
    expect(res.status).toBe(500);
    expect(await usersWithEmail(email)).toBe(0);
    expect(await eventsOfEmail(email)).toBe(0);
    expect(await count('idempotency_keys', `key = '${key}'`)).toBe(0);
    ctx.unexpectedErrors.length = 0; // the injected fault was logged, as any 500 is

    const retry = await ctx.api
      .post('/api/v1/users')
      .set('Idempotency-Key', key)
      .send({ name: 'Fault', email });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await usersWithEmail(email)).toBe(1);
  });
});

describe('the same key sent again while its first request is about to commit (catalog7 #1)', () => {
  // The second request's write waits on the first's row (the same plan code, the same email); the
  // first then commits. Its claim must have been answered before that write: in-progress, never a
  // 500 because the claim went out behind a write that failed.
  it.each([
    [
      'POST /plans',
      '/api/v1/plans',
      () => ({
        code: `race-${randomUUID()}`,
        name: 'Race',
        interval: 'month',
        price: { model: 'flat', amount: '10.00' },
      }),
    ],
    ['POST /users', '/api/v1/users', () => ({ name: 'Race', email: `race-${randomUUID()}@example.com` })],
  ])('%s answers 409 idempotency-in-progress or the replay', async (_what, path, makeBody) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const atCommit = new Promise<void>((resolve) => (entered = resolve));
    const held = ctx.appWith({
      faults: {
        beforeCommit: async () => {
          entered();
          await gate;
        },
      },
    });
    const key = randomUUID();
    const body = makeBody();
    const first = held
      .post(path)
      .set('Authorization', `Bearer ${ctx.tenant.key}`)
      .set('Idempotency-Key', key)
      .send(body);
    const firstDone = first.then((res) => res);
    await atCommit;
    // On a connection of its own that never ran a query: a fresh connection is where the write
    // once went out ahead of the claim.
    const fresh = createDb(ctx.url, { poolSize: 1, asAppRole: true });
    const second = ctx
      .appWith({ db: fresh })
      .post(path)
      .set('Authorization', `Bearer ${ctx.tenant.key}`)
      .set('Idempotency-Key', key)
      .send(body)
      .then((res) => res)
      .finally(() => fresh.destroy());
    await waitForLockWaiters(ctx.db);
    release();
    expect((await firstDone).status).toBe(201);
    const res = await second;
    if (res.status === 409) expectProblem(res, 409, 'idempotency-in-progress');
    else {
      expect(res.status, res.text).toBe(201);
      expect(res.headers['idempotent-replayed']).toBe('true');
    }
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});

describe('a deadlock or serialization failure', () => {
  it.each([
    ['40P01', 'deadlock detected'],
    ['40001', 'could not serialize access due to concurrent update'],
  ])('(%s) is retried: the client gets the one outcome, written once', async (code, message) => {
    let failures = 2;
    const conflicted = ctx.appWith({
      faults: {
        beforeCommit: () => {
          if (failures-- <= 0) return;
          const error = new pg.DatabaseError(message, 0, 'error');
          error.code = code;
          throw error;
        },
      },
    });
    const key = randomUUID();
    const email = `retried-${key}@example.com`;
    const res = await conflicted
      .post('/api/v1/users')
      .set('Authorization', `Bearer ${ctx.tenant.key}`)
      .set('Idempotency-Key', key)
      .send({ name: 'Retried', email });
    expect(res.status, res.text).toBe(201);
    expect(failures).toBe(-1); // failed twice, then committed on the third run
    expect(await usersWithEmail(email)).toBe(1);
    expect(await eventsOfEmail(email)).toBe(1);
    expect(await count('idempotency_keys', `key = '${key}'`)).toBe(1);
  });

  it('that keeps happening ends as a 500 after a bounded number of runs', async () => {
    let runs = 0;
    const stuck = ctx.appWith({
      faults: {
        beforeCommit: () => {
          runs++;
          const error = new pg.DatabaseError('deadlock detected', 0, 'error');
          error.code = '40P01';
          throw error;
        },
      },
    });
    const email = `stuck-${randomUUID()}@example.com`;
    const res = await stuck
      .post('/api/v1/users')
      .set('Authorization', `Bearer ${ctx.tenant.key}`)
      .send({ name: 'Stuck', email });
    expect(res.status).toBe(500);
    expect(runs).toBe(5);
    expect(await usersWithEmail(email)).toBe(0);
    ctx.unexpectedErrors.length = 0; // logged, as any 500 is
  });
});

describe('Idempotency-Key on answers that carry a webhook secret', () => {
  type Endpoint = Schemas['WebhookEndpointWithSecret'];
  const create = (key: string) =>
    ctx.api
      .post('/api/v1/webhook-endpoints')
      .set('Idempotency-Key', key)
      .send({ url: 'https://hooks.example.com/replays', enabled_events: ['user.created'] });
  const rotate = (id: string, key?: string) => {
    const req = ctx.api.post(`/api/v1/webhook-endpoints/${id}/rotate-secret`);
    return (key ? req.set('Idempotency-Key', key) : req).send({ grace_period_seconds: 3600 });
  };
  const stored = async (key: string) => {
    const { rows } = await sql<{
      body: string;
    }>`select body from idempotency_keys where key = ${key}`.execute(ctx.db);
    return rows[0]!.body;
  };

  it('replays a creation byte for byte while its secret is current, and keeps no secret in the record', async () => {
    const key = randomUUID();
    const first = await create(key);
    expect(first.status, first.text).toBe(201);
    const { secret } = first.body as Endpoint;
    const again = await create(key);
    expect([again.status, again.headers['idempotent-replayed']]).toEqual([201, 'true']);
    expect(again.text).toBe(first.text);
    expect(again.headers.location).toBe(first.headers.location);
    const record = await stored(key);
    expect(record).not.toContain(secret);
    expect(record).not.toContain('whsec_');
  });

  it('never hands a rotated-out secret out again: the replay of its creation is 409, and writes nothing', async () => {
    const key = randomUUID();
    const first = await create(key);
    const endpoint = first.body as Endpoint;
    expect((await rotate(endpoint.id)).status).toBe(200);
    const before = await fingerprint(ctx.db);
    const replay = await create(key);
    const problem = expectProblem(replay, 409, 'idempotency-replay-withheld');
    expect(problem.detail).toContain('rotated');
    expect(replay.text).not.toContain(endpoint.secret);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('replays a rotation while its secret is current, and withholds it once rotated again', async () => {
    const endpoint = (await create(randomUUID())).body as Endpoint;
    const key = randomUUID();
    const rotated = await rotate(endpoint.id, key);
    expect(rotated.status, rotated.text).toBe(200);
    const secret = (rotated.body as Endpoint).secret;
    const again = await rotate(endpoint.id, key);
    expect([again.status, again.headers['idempotent-replayed'], again.text]).toEqual([
      200,
      'true',
      rotated.text,
    ]);
    expect(await stored(key)).not.toContain(secret);

    expect((await rotate(endpoint.id)).status).toBe(200);
    const withheld = await rotate(endpoint.id, key);
    expectProblem(withheld, 409, 'idempotency-replay-withheld');
    expect(withheld.text).not.toContain(secret);
  });

  it("withholds a creation's replay once the endpoint is deleted", async () => {
    const key = randomUUID();
    const endpoint = (await create(key)).body as Endpoint;
    expect((await ctx.api.delete(`/api/v1/webhook-endpoints/${endpoint.id}`)).status).toBe(204);
    const replay = await create(key);
    expectProblem(replay, 409, 'idempotency-replay-withheld');
    expect(replay.text).not.toContain(endpoint.secret);
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
