// The event log: every change recorded with who, when, what; immutable for everyone; and a feed
// that a poller reads gap-free even when transactions commit out of order.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { withTenant } from '../../src/database/connection.js';
import { exemptFromFeedHorizon } from '../../src/queries/events.js';
import { inTenant } from '../../src/services/context.js';
import { useTestApp } from '../helpers/app.js';
import { createFeature, createSubscription, createUser } from '../helpers/factories.js';
import { holdLocks, pause, waitForLockWaiters } from '../helpers/locks.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
type Api = typeof ctx.api;

/** Reads the feed from `cursor` to its current end. */
async function readFeed(
  api: Api,
  cursor: string | null,
  query = '',
): Promise<{ events: Schemas['Event'][]; cursor: string | null }> {
  const events: Schemas['Event'][] = [];
  for (;;) {
    const res = await api.get(`/api/v1/events?limit=100${cursor ? `&cursor=${cursor}` : ''}${query}`);
    expect(res.status, res.text).toBe(200);
    const page = res.body as Schemas['EventList'];
    events.push(...page.data);
    if (page.data.length === 0) return { events, cursor: page.next_cursor };
    cursor = page.next_cursor;
  }
}

describe('every change is an event', () => {
  it('records creates, updates with previous values, links, cancellations and deletes, with actor and request id', async () => {
    const t = await ctx.newTenant();
    const keys = (await t.api.get('/api/v1/api-keys')).body as Schemas['ApiKeyCollection'];
    const keyId = keys.data[0]!.id;
    const user = await createUser(t);
    const feature = await createFeature(t);
    // Starting next year: nothing is invoiced (a renewal due now would be performed by the cancel,
    // and an invoiced subscription cannot be deleted).
    const nextYear = `${new Date().getUTCFullYear() + 1}-01-01`;
    const subscription = await createSubscription(t, {
      user_id: user.id,
      plan_cost: '10.00',
      start_date: nextYear,
    });
    const requestId = `req-${randomUUID()}`;
    await t.api
      .patch(`/api/v1/subscriptions/${subscription.id}`)
      .set('X-Request-Id', requestId)
      .send({ plan_cost: '12.00' })
      .expect(200);
    await t.api.put(`/api/v1/subscriptions/${subscription.id}/features/${feature.id}`).expect(201);
    await t.api
      .post(`/api/v1/subscriptions/${subscription.id}/cancel`)
      .send({ at: 'now', reason: 'too expensive' })
      .expect(200);
    await t.api.delete(`/api/v1/subscriptions/${subscription.id}`).expect(204);

    const { events } = await readFeed(t.api, null);
    expect(events.map((e) => e.type)).toEqual([
      'tenant.created',
      'api_key.created',
      'user.created',
      'feature.created',
      'subscription.created',
      'subscription.updated',
      'subscription_feature.linked',
      'subscription.canceled',
      'subscription_feature.unlinked',
      'subscription.deleted',
    ]);
    const updated = events.find((e) => e.type === 'subscription.updated')!;
    expect(updated).toMatchObject({
      resource_type: 'subscription',
      resource_id: subscription.id,
      actor: { type: 'api_key', id: keyId },
      request_id: requestId,
      previous: { plan_cost: '10.00' },
      data: { id: subscription.id, plan_cost: '12.00', version: 2 },
    });
    expect(events.find((e) => e.type === 'subscription.canceled')).toMatchObject({
      previous: { status: 'active', canceled_at: null, cancel_reason: null },
      data: { status: 'canceled', cancel_reason: 'too expensive' },
    });
    expect(events[0]).toMatchObject({ actor: { type: 'system', id: null }, request_id: null });
    // The key's secret is never in an event.
    expect(JSON.stringify(events)).not.toContain(t.key);

    // The subscription's history outlives it, in order.
    const history = await t.api.get(`/api/v1/subscriptions/${subscription.id}/events`);
    expect(history.status).toBe(200);
    expect((history.body as Schemas['EventList']).data.map((e) => e.type)).toEqual([
      'subscription.created',
      'subscription.updated',
      'subscription_feature.linked',
      'subscription.canceled',
      'subscription_feature.unlinked',
      'subscription.deleted',
    ]);
    expectProblem(await t.api.get(`/api/v1/subscriptions/${randomUUID()}/events`), 404, 'not-found');
  });

  it('says what a deleted subscription took with it: each feature link and pending item', async () => {
    const t = await ctx.newTenant();
    const user = await createUser(t);
    const [a, b] = [await createFeature(t), await createFeature(t)];
    const nextYear = `${new Date().getUTCFullYear() + 1}-01-01`;
    const subscription = await createSubscription(t, {
      user_id: user.id,
      plan_cost: '10.00',
      start_date: nextYear,
    });
    for (const feature of [a, b])
      await t.api.put(`/api/v1/subscriptions/${subscription.id}/features/${feature.id}`).expect(201);
    const item = await t.api
      .post(`/api/v1/subscriptions/${subscription.id}/invoice-items`)
      .send({ description: 'Setup fee', amount: '99.00' });
    expect(item.status, item.text).toBe(201);
    const { cursor } = await readFeed(t.api, null);
    await t.api.delete(`/api/v1/subscriptions/${subscription.id}`).expect(204);

    const { events } = await readFeed(t.api, cursor);
    expect(events.map((e) => [e.type, e.resource_id])).toEqual([
      ['subscription_feature.unlinked', subscription.id],
      ['subscription_feature.unlinked', subscription.id],
      ['invoice_item.deleted', (item.body as Schemas['InvoiceItem']).id],
      ['subscription.deleted', subscription.id],
    ]);
    expect(
      events
        .slice(0, 2)
        .map((e) => (e.data as unknown as { feature: { id: string } }).feature.id)
        .sort(),
    ).toEqual([a.id, b.id].sort());
    expect(events[2]!.data).toEqual(item.body);
  });

  it("announces only the links it removed: not one a feature's delete took while it waited", async () => {
    const t = await ctx.newTenant();
    const feature = await createFeature(t);
    const nextYear = `${new Date().getUTCFullYear() + 1}-01-01`;
    const subscription = await createSubscription(t, { plan_cost: '10.00', start_date: nextYear });
    await t.api.put(`/api/v1/subscriptions/${subscription.id}/features/${feature.id}`).expect(201);
    const { cursor } = await readFeed(t.api, null);
    // Another transaction removes the link first (as DELETE /features does for a canceled one's).
    const other = await holdLocks(
      ctx.db,
      sql`delete from subscription_features where subscription_id = ${subscription.id}`,
    );
    const deleting = t.api.delete(`/api/v1/subscriptions/${subscription.id}`).then((r) => r);
    await waitForLockWaiters(ctx.db, 1);
    await other.release();
    expect((await deleting).status).toBe(204);
    const { events } = await readFeed(t.api, cursor);
    expect(events.map((e) => e.type)).toEqual(['subscription.deleted']);
  });

  it("answers a subscription's history only for a subscription id: another resource's id is 404", async () => {
    const t = await ctx.newTenant();
    const user = await createUser(t);
    const feature = await createFeature(t);
    const plan = await t.api
      .post('/api/v1/plans')
      .send({ code: 'p', name: 'P', interval: 'month', price: { model: 'flat', amount: '5' } });
    expect(plan.status, plan.text).toBe(201);
    const subscription = await createSubscription(t, { user_id: user.id });
    const ids = { user: user.id, feature: feature.id, plan: (plan.body as Schemas['Plan']).id, tenant: t.id };
    for (const [kind, id] of Object.entries(ids)) {
      // Each has events of its own in the feed...
      expect((await readFeed(t.api, null, `&resource_id=${id}`)).events.length, kind).toBeGreaterThan(0);
      // ...but is no subscription.
      const res = await t.api.get(`/api/v1/subscriptions/${id}/events`);
      expect([kind, res.status]).toEqual([kind, 404]);
      expectProblem(res, 404, 'not-found');
    }
    const history = await t.api.get(`/api/v1/subscriptions/${subscription.id}/events`);
    expect((history.body as Schemas['EventList']).data.map((e) => e.resource_type)).toEqual(['subscription']);
  });

  it('filters by type (repeated), resource and time', async () => {
    const t = await ctx.newTenant();
    // Events are shown to the millisecond and before=T leaves out one shown at T: the tenant's
    // events can share the millisecond `start` is read in, so let that millisecond pass first.
    await new Promise((resolve) => setTimeout(resolve, 3));
    const start = new Date().toISOString();
    const a = await createUser(t);
    await createUser(t);
    await t.api.patch(`/api/v1/users/${a.id}`).send({ name: 'Renamed' }).expect(200);
    const byType = await readFeed(t.api, null, '&type=user.updated&type=user.deleted');
    expect(byType.events.map((e) => e.type)).toEqual(['user.updated']);
    const byResource = await readFeed(t.api, null, `&resource_id=${a.id}`);
    expect(byResource.events.map((e) => e.type)).toEqual(['user.created', 'user.updated']);
    const before = await readFeed(t.api, null, `&before=${encodeURIComponent(start)}`);
    expect(before.events.map((e) => e.type)).toEqual(['tenant.created', 'api_key.created']);
    const after = await readFeed(t.api, null, `&after=${encodeURIComponent(start)}&type=user.created`);
    expect(after.events).toHaveLength(2);
    expectProblem(await t.api.get('/api/v1/events?cursor=bm9wZQ'), 400, 'invalid-cursor');
  });

  it('agrees with the millisecond it shows: after=T leaves out an event shown at T, as before=T does, on the feed and a history', async () => {
    const t = await ctx.newTenant();
    const subscription = randomUUID();
    // Stored to the microsecond, shown to the millisecond (truncated): two events shown at .319.
    const stored = ['00.318700', '00.319400', '00.319900', '00.320100'];
    for (const [i, at] of stored.entries()) {
      await sql`insert into events (tenant_id, type, resource_type, resource_id, actor, data, occurred_at)
        values (${t.id}, 'subscription.updated', 'subscription', ${subscription}, 'system',
          ${JSON.stringify({ n: i })}::jsonb, ${`2026-03-01T10:00:${at}Z`}::timestamptz)`.execute(ctx.db);
    }
    const shown = async (path: string, query: string) => {
      const res = await t.api.get(`${path}?limit=100&type=subscription.updated&${query}`);
      expect(res.status, res.text).toBe(200);
      return (res.body as Schemas['EventList']).data.map((e) => e.occurred_at.slice(17, 23));
    };
    for (const path of ['/api/v1/events', `/api/v1/subscriptions/${subscription}/events`]) {
      const at = (time: string) => encodeURIComponent(`2026-03-01T10:00:${time}Z`);
      expect(await shown(path, '')).toEqual(['00.318', '00.319', '00.319', '00.320']);
      // A poller resuming after the last occurred_at it saw gets nothing twice.
      expect(await shown(path, `after=${at('00.319')}`), path).toEqual(['00.320']);
      expect(await shown(path, `before=${at('00.319')}`), path).toEqual(['00.318']);
      expect(await shown(path, `after=${at('00.318')}&before=${at('00.320')}`)).toEqual(['00.319', '00.319']);
      // An instant finer than a millisecond: .3195 is after what is shown as .319, before .320.
      expect(await shown(path, `after=${at('00.3195')}`)).toEqual(['00.320']);
      expect(await shown(path, `before=${at('00.3195')}`)).toEqual(['00.318', '00.319', '00.319']);
      // Another spelling of the same instant: an offset.
      expect(await shown(path, `after=${encodeURIComponent('2026-03-01T11:00:00.319+01:00')}`)).toEqual([
        '00.320',
      ]);
    }
  });

  it('leaves a filtered reader that found nothing at a cursor from which only newer events come', async () => {
    const t = await ctx.newTenant();
    const first = await t.api.get('/api/v1/events?type=user.updated');
    expect(first.status, first.text).toBe(200);
    const empty = first.body as Schemas['EventList'];
    expect(empty.data).toEqual([]);
    expect(empty.next_cursor).toEqual(expect.any(String));
    const a = await createUser(t);
    await t.api.patch(`/api/v1/users/${a.id}`).send({ name: 'Renamed' }).expect(200);
    const polled = await readFeed(t.api, empty.next_cursor, '&type=user.updated');
    expect(polled.events.map((e) => [e.type, e.resource_id])).toEqual([['user.updated', a.id]]);
    // Unfiltered from the same cursor: the user's creation too, and nothing from before it.
    const all = await readFeed(t.api, empty.next_cursor);
    expect(all.events.map((e) => e.type)).toEqual(['user.created', 'user.updated']);
  });

  it("refuses a subscription history's cursor on the feed and on another subscription's history", async () => {
    const [s1, s2] = [await createSubscription(ctx), await createSubscription(ctx)];
    const page = await ctx.api.get(`/api/v1/subscriptions/${s1.id}/events?limit=1`);
    const cursor = (page.body as Schemas['EventList']).next_cursor!;
    expect((await ctx.api.get(`/api/v1/subscriptions/${s1.id}/events?cursor=${cursor}`)).status).toBe(200);
    expectProblem(
      await ctx.api.get(`/api/v1/subscriptions/${s2.id}/events?cursor=${cursor}`),
      400,
      'invalid-cursor',
    );
    expectProblem(await ctx.api.get(`/api/v1/events?cursor=${cursor}`), 400, 'invalid-cursor');
    const feed = (await ctx.api.get('/api/v1/events?limit=1')).body as Schemas['EventList'];
    expectProblem(
      await ctx.api.get(`/api/v1/subscriptions/${s1.id}/events?cursor=${feed.next_cursor}`),
      400,
      'invalid-cursor',
    );
  });

  it("refuses another tenant's cursors, of the feed and of every list", async () => {
    const [a, b] = [await ctx.newTenant(), await ctx.newTenant()];
    for (const t of [a, b]) for (let i = 0; i < 2; i++) await createUser(t);
    const feed = (await b.api.get('/api/v1/events?limit=1')).body as Schemas['EventList'];
    const users = (await b.api.get('/api/v1/users?limit=1')).body as Schemas['UserList'];
    for (const [path, cursor] of [
      ['/api/v1/events', feed.next_cursor],
      ['/api/v1/users', users.next_cursor],
    ] as const) {
      expect((await b.api.get(path).query({ cursor })).status).toBe(200);
      expectProblem(await a.api.get(path).query({ cursor }), 400, 'invalid-cursor');
      // Edited by hand (its last digit, or another tenant's seal put in): not one it issued.
      const text = Buffer.from(cursor!, 'base64url').toString('utf8');
      const last = text.at(-1)!;
      const edited = `${text.slice(0, -1)}${last === '0' ? '1' : '0'}`;
      expectProblem(
        await b.api.get(path).query({ cursor: Buffer.from(edited).toString('base64url') }),
        400,
        'invalid-cursor',
      );
      // Other spellings of the same text are edits too: padded, standard base64, a character
      // more that the decoder would drop (input5 #1).
      const standard = Buffer.from(text).toString('base64');
      for (const spelling of [
        `${cursor}==`,
        `${cursor}=`,
        `${cursor}A`,
        standard.replace(/=+$/, '') + '==',
      ]) {
        if (spelling === cursor) continue;
        expectProblem(await b.api.get(path).query({ cursor: spelling }), 400, 'invalid-cursor');
      }
    }
  });

  it('keeps its order when transaction ids gain a digit (999 before 1000)', async () => {
    const t = await ctx.newTenant();
    const before = await createUser(t);
    // Spend transaction ids up to the next power of ten, so the next write's xid has one more
    // digit than the last one's: sorted as text, it would come first.
    const { rows } = await sql<{ xid: string }>`select pg_current_xact_id()::text as xid`.execute(ctx.db);
    const next = 10n ** BigInt(rows[0]!.xid.length);
    await sql
      .raw(
        `do $$ begin for i in 1..${next - BigInt(rows[0]!.xid) + 1n} loop perform pg_current_xact_id(); commit; end loop; end $$`,
      )
      .execute(ctx.db);
    const after = await createUser(t);
    const { events } = await readFeed(t.api, null, '&type=user.created');
    expect(events.map((e) => e.resource_id)).toEqual([before.id, after.id]);
    // Paging one at a time meets both, in the same order.
    const first = await t.api.get('/api/v1/events?type=user.created&limit=1');
    const second = await t.api.get(
      `/api/v1/events?type=user.created&limit=1&cursor=${(first.body as Schemas['EventList']).next_cursor}`,
    );
    expect([first, second].map((r) => (r.body as Schemas['EventList']).data[0]?.resource_id)).toEqual([
      before.id,
      after.id,
    ]);
  });
});

describe('the feed, read with a key of fewer scopes (keys8 #1)', () => {
  it("leaves out the events of webhook endpoints (admin) and API keys (keys) that the key's role may not read", async () => {
    const t = await ctx.newTenant();
    const endpoint = await t.api
      .post('/api/v1/webhook-endpoints')
      .send({ url: 'https://hooks.example.com/in?token=secret-token', enabled_events: ['user.created'] });
    expect(endpoint.status, endpoint.text).toBe(201);
    const keyOf = async (role: string) => {
      const res = await t.api.post('/api/v1/api-keys').send({ name: role, role });
      expect(res.status, res.text).toBe(201);
      return ctx.withKey((res.body as Schemas['ApiKeyWithSecret']).key);
    };
    await createUser(t);
    const typesFor = async (api: Api) =>
      new Set((await readFeed(api, null)).events.map((e) => e.resource_type));
    const all = await typesFor(t.api);
    // An admin key reads them all.
    expect([all.has('webhook_endpoint'), all.has('api_key'), all.has('user')]).toEqual([true, true, true]);
    for (const role of ['viewer', 'editor', 'analyst']) {
      const api = await keyOf(role);
      const seen = await typesFor(api);
      expect([role, seen.has('webhook_endpoint'), seen.has('api_key'), seen.has('user')]).toEqual([
        role,
        false,
        false,
        true,
      ]);
      // Asked for by id or type, they are not there either.
      const byId = await api
        .get('/api/v1/events')
        .query({ resource_id: (endpoint.body as { id: string }).id });
      expect((byId.body as Schemas['EventList']).data).toEqual([]);
      const byType = await api.get('/api/v1/events').query({ type: 'api_key.created' });
      expect((byType.body as Schemas['EventList']).data).toEqual([]);
    }
  });
});

describe('events are immutable', () => {
  it('refuses update, delete and truncate to the app role and to the owner', async () => {
    await createUser(ctx);
    const attempts = [
      sql`update events set type = 'user.forged'`,
      sql`delete from events`,
      // Plain truncate is refused earlier, for the webhook deliveries that reference events.
      sql`truncate events cascade`,
    ];
    for (const attempt of attempts) {
      await expect(
        withTenant(ctx.appDb, { tenantId: ctx.tenant.id }, (trx) => attempt.execute(trx)),
      ).rejects.toThrow(/permission denied|immutable/);
      await expect(attempt.execute(ctx.db)).rejects.toThrow(/immutable/);
    }
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from events where type = 'user.forged'`.execute(ctx.db);
    expect(rows[0]?.n).toBe(0);
  });

  it('go only with their tenant', async () => {
    const t = await ctx.newTenant();
    await createUser(t);
    await ctx.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('users').where('tenant_id', '=', t.id).execute();
      await trx.deleteFrom('tenants').where('id', '=', t.id).execute();
    });
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from events where tenant_id = ${t.id}`.execute(ctx.db);
    expect(rows[0]?.n).toBe(0);
  });
});

describe('the feed, polled while transactions commit out of order', () => {
  it('hands a poller every event exactly once when a slow writer commits after a fast one', async () => {
    const t = await ctx.newTenant();
    let { cursor } = await readFeed(t.api, null);
    const seen: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const page = await readFeed(t.api, cursor);
        seen.push(...page.events.map((e) => e.id));
        cursor = page.cursor;
        await pause(10);
      }
    })();

    // The slow writer: its event is written (its sequence number taken) first, its commit comes last.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const isWritten = new Promise<void>((resolve) => (written = resolve));
    const slow = withTenant(ctx.appDb, { tenantId: t.id }, async (trx) => {
      await sql`insert into events (type, resource_type, resource_id, actor, data)
        values ('user.created', 'user', ${randomUUID()}, 'system', '{"slow": true}')`.execute(trx);
      written();
      await gate;
    });
    await isWritten;
    // The fast writer commits while the slow one is open, and the poller keeps reading.
    const fast = await createUser(t);
    await pause(200);
    release();
    await slow;
    await pause(200);
    polling = false;
    await poller;
    const final = await readFeed(t.api, cursor);
    seen.push(...final.events.map((e) => e.id));

    const all = await sql<{ id: string; data: unknown }>`
      select id, data from events where tenant_id = ${t.id} and type = 'user.created'`.execute(ctx.db);
    expect(all.rows).toHaveLength(2);
    for (const { id } of all.rows) expect(seen.filter((s) => s === id)).toHaveLength(1);
    expect(all.rows.map((r) => r.data)).toContainEqual(expect.objectContaining({ id: fast.id }));
  });

  it("goes on past another tenant's long transaction that records no event (a rebuild), whose events it refuses", async () => {
    const busy = await ctx.newTenant();
    const t = await ctx.newTenant();
    const { cursor } = await readFeed(t.api, null);
    const created = async () => (await readFeed(t.api, cursor, '&type=user.created')).events.length;
    /** A transaction of the busy tenant holding an id, open until `end`; exempt when asked. */
    const hold = (exempt: boolean) => {
      let end!: () => void;
      const gate = new Promise<void>((resolve) => (end = resolve));
      let opened!: () => void;
      const isOpen = new Promise<void>((resolve) => (opened = resolve));
      let refused: unknown;
      const done = withTenant(ctx.appDb, { tenantId: busy.id }, async (trx) => {
        await sql`select pg_current_xact_id()`.execute(trx);
        const release = exempt ? await exemptFromFeedHorizon(ctx.appDb, trx, 'test') : undefined;
        opened();
        await gate;
        if (exempt) {
          await sql`savepoint try_event`.execute(trx);
          refused = await sql`insert into events (type) select 'user.created' where false`
            .execute(trx)
            .catch((error: unknown) => error);
          await sql`rollback to savepoint try_event`.execute(trx);
        }
        await release?.();
      });
      return { isOpen, end: async () => (end(), await done, refused) };
    };
    // Any other long transaction holds every tenant's feed back (it might still record events).
    const plain = hold(false);
    await plain.isOpen;
    await createUser(t);
    await pause(100);
    expect(await created()).toBe(0);
    await plain.end();
    expect(await created()).toBe(1);
    // One registered as recording none does not.
    const exempt = hold(true);
    await exempt.isOpen;
    await createUser(t);
    expect(await created()).toBe(2);
    expect(String(await exempt.end())).toMatch(/may not record events/);
    expect((await sql`select * from feed_exempt_transactions`.execute(ctx.db)).rows).toEqual([]);
  });

  it('dates an event at its write, not at its transaction start: a change that waited reads as later', async () => {
    const t = await ctx.newTenant();
    const resource = randomUUID();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let begun!: () => void;
    const isBegun = new Promise<void>((resolve) => (begun = resolve));
    // Begins first (as a request waiting for a row lock another request holds), writes last.
    const waiting = inTenant({ db: ctx.appDb }, { tenantId: t.id, keyId: 'system' }, async (tx) => {
      await sql`select 1`.execute(tx.db);
      begun();
      await gate;
      tx.emit({ type: 'user.updated', resource_type: 'user', resource_id: resource, data: { n: 2 } });
    });
    await isBegun;
    await pause(50);
    await inTenant({ db: ctx.appDb }, { tenantId: t.id, keyId: 'system' }, (tx) => {
      tx.emit({ type: 'user.updated', resource_type: 'user', resource_id: resource, data: { n: 1 } });
      return Promise.resolve();
    });
    release();
    await waiting;
    const { rows } = await sql<{ n: number }>`
      select (data->>'n')::int as n from events where tenant_id = ${t.id} and resource_id = ${resource}
      order by occurred_at`.execute(ctx.db);
    expect(rows.map((r) => r.n)).toEqual([1, 2]);
  });

  it('agrees with the tables after a random concurrent workload, read by a poller throughout', async () => {
    const t = await ctx.newTenant();
    let { cursor } = await readFeed(t.api, null);
    const seen: Schemas['Event'][] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const page = await readFeed(t.api, cursor);
        seen.push(...page.events);
        cursor = page.cursor;
        await pause(5);
      }
    })();
    const worker = async (w: number) => {
      for (let i = 0; i < 12; i++) {
        const user = await createUser(t);
        if ((i + w) % 3 === 0)
          await t.api
            .patch(`/api/v1/users/${user.id}`)
            .send({ name: `W${w} ${i}` })
            .expect(200);
        if ((i + w) % 4 === 0) await t.api.delete(`/api/v1/users/${user.id}`).expect(204);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    polling = false;
    await poller;
    seen.push(...(await readFeed(t.api, cursor)).events);

    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length); // nothing twice
    const stored = await sql<{
      n: number;
    }>`select count(*)::int as n from events where tenant_id = ${t.id}`.execute(ctx.db);
    expect(seen.length + 2).toBe(stored.rows[0]!.n); // + tenant.created and api_key.created, read before
    const created = new Set(seen.filter((e) => e.type === 'user.created').map((e) => e.resource_id));
    const deleted = new Set(seen.filter((e) => e.type === 'user.deleted').map((e) => e.resource_id));
    const users = await ctx.db.selectFrom('users').select('id').where('tenant_id', '=', t.id).execute();
    expect(new Set(users.map((u) => u.id))).toEqual(new Set([...created].filter((id) => !deleted.has(id))));
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
