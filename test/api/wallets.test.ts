// Prepaid credits through the API: wallets, grants, holds captured or released, expiries, and the
// ledger; and 50 concurrent clients that never take a wallet below zero, with a ledger that adds up.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { simulatedGateway } from '../../src/billing/gateway.js';
import { startWalletExpiry } from '../../src/jobs/wallet-expiry.js';
import { inTenant } from '../../src/services/context.js';
import { performDueWork } from '../../src/services/due-work.js';
import { invoiceForPeriod } from '../../src/services/invoices.js';
import { silentLogger } from '../../src/logger.js';
import { sweepWallet } from '../../src/services/wallets.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { holdLocks, pause, waitForLockWaiters } from '../helpers/locks.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

beforeAll(async () => {
  t = await ctx.newTenant();
});

type Wallet = Schemas['Wallet'];
type Hold = Schemas['Hold'];
type Entry = Schemas['LedgerEntry'];

async function walletOf(userId: string, body: Record<string, unknown>): Promise<Wallet> {
  const res = await t.api.post('/api/v1/wallets').send({ user_id: userId, ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as Wallet;
}

async function wallet(rate?: string): Promise<Wallet> {
  const user = await createUser(t);
  return walletOf(user.id, { name: 'AI credits', rate });
}

async function grant(w: Wallet, body: Record<string, unknown>) {
  const res = await t.api.post(`/api/v1/wallets/${w.id}/grants`).send(body);
  expect(res.status, res.text).toBe(201);
  const made = res.body as Schemas['Grant'];
  expect(res.headers.location).toBe(`/api/v1/grants/${made.id}`);
  return made;
}

const get = async (w: Wallet) => (await t.api.get(`/api/v1/wallets/${w.id}`)).body as Wallet;
const hold = (w: Wallet, credits: string, expires_in = 300) =>
  t.api.post(`/api/v1/wallets/${w.id}/holds`).send({ credits, expires_in });
const capture = (h: Hold, credits: string) => t.api.post(`/api/v1/holds/${h.id}/capture`).send({ credits });
const release = (h: Hold) => t.api.post(`/api/v1/holds/${h.id}/release`);

async function ledger(w: Wallet): Promise<Entry[]> {
  const all: Entry[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.api
      .get(`/api/v1/wallets/${w.id}/transactions`)
      .query({ limit: 100, ...(cursor ? { cursor } : {}) });
    expect(res.status, res.text).toBe(200);
    const page = res.body as Schemas['LedgerPage'];
    all.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return all.reverse(); // oldest first
}

/** Millionths, for exact sums (an overdrawn balance is below zero). */
const m = (credits: string): bigint => {
  if (credits.startsWith('-')) return -m(credits.slice(1));
  const [whole, fraction = ''] = credits.split('.');
  return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
};

/**
 * Each entry's balances follow from the one before by what it moved; the last equal the wallet's.
 * The available balance never goes below minus the overdraft (none by default).
 */
function expectLedgerAddsUp(entries: Entry[], now: Wallet, overdraft = '0') {
  let available = 0n;
  let held = 0n;
  const moves: Record<Entry['type'], (c: bigint, e: Entry) => void> = {
    grant: (c) => (available += c),
    hold: (c) => ((available -= c), (held += c)),
    release: (c) => ((available += c), (held -= c)),
    expiry: (c) => (available -= c),
    usage: (c) => (available -= c),
    refund: (c) => (available += c),
    // A capture consumes from the hold (held) and any excess from available: its total drops by c.
    capture: (c, e) => {
      const fromHeld = held - m(e.held_after);
      expect(fromHeld >= 0n && fromHeld <= c).toBe(true);
      held -= fromHeld;
      available -= c - fromHeld;
    },
  };
  for (const e of entries) {
    moves[e.type](m(e.credits), e);
    expect([available, held], `${e.type} ${e.credits}`).toEqual([m(e.available_after), m(e.held_after)]);
    expect(available >= -m(overdraft) && held >= 0n).toBe(true);
  }
  expect([available, held]).toEqual([m(now.available), m(now.held)]);
  expect(m(now.total)).toBe(available + held);
}

describe('wallets and grants', () => {
  it('creates a wallet, grants credits, and shows exact balances and a ledger', async () => {
    const w = await wallet('100');
    expect(w).toMatchObject({ rate: '100', available: '0', held: '0', total: '0', version: 1 });
    await grant(w, { credits: '2500' });
    await grant(w, { credits: '0.5', priority: 5 });
    expect(await get(w)).toMatchObject({ available: '2500.5', held: '0', total: '2500.5' });
    const listed = (await t.api.get('/api/v1/wallets').query({ user_id: w.user_id }))
      .body as Schemas['WalletList'];
    expect(listed.data.map((x) => [x.id, x.available])).toEqual([[w.id, '2500.5']]);
    const entries = await ledger(w);
    expect(entries.map((e) => [e.type, e.credits, e.actor.type])).toEqual([
      ['grant', '2500', 'api_key'],
      ['grant', '0.5', 'api_key'],
    ]);
    expectLedgerAddsUp(entries, await get(w));
  });

  it('replays a grant with the same Idempotency-Key as it answered it: 201, once', async () => {
    const w = await wallet();
    const key = `grant-${w.id}`;
    const first = await t.api
      .post(`/api/v1/wallets/${w.id}/grants`)
      .set('Idempotency-Key', key)
      .send({ credits: '5' });
    const again = await t.api
      .post(`/api/v1/wallets/${w.id}/grants`)
      .set('Idempotency-Key', key)
      .send({ credits: '5' });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect((await get(w)).available).toBe('5');
  });

  it("refuses a ledger cursor of another wallet's ledger (400), not read as a position in it", async () => {
    const [a, b] = [await wallet(), await wallet()];
    for (const w of [a, b]) for (const credits of ['1', '2', '3']) await grant(w, { credits });
    const page = await t.api.get(`/api/v1/wallets/${a.id}/transactions`).query({ limit: 2 });
    const cursor = (page.body as Schemas['LedgerPage']).next_cursor!;
    expect(cursor).toEqual(expect.any(String));
    const next = await t.api.get(`/api/v1/wallets/${a.id}/transactions`).query({ limit: 2, cursor });
    expect((next.body as Schemas['LedgerPage']).data.map((e) => e.credits)).toEqual(['1']);
    expectProblem(
      await t.api.get(`/api/v1/wallets/${b.id}/transactions`).query({ limit: 2, cursor }),
      400,
      'invalid-cursor',
    );
  });

  it('refuses bad grants with 422 and an unknown customer, writing nothing', async () => {
    const w = await wallet();
    const before = await fingerprint(ctx.db);
    for (const body of [{ credits: '0' }, { credits: '10', expires_at: '2020-01-01T00:00:00Z' }]) {
      expectProblem(await t.api.post(`/api/v1/wallets/${w.id}/grants`).send(body), 422, 'unprocessable');
    }
    expectProblem(
      await t.api
        .post('/api/v1/wallets')
        .send({ user_id: '0193a6a2-0000-7000-8000-000000000000', name: 'x' }),
      422,
      'unprocessable',
    );
    expect(await fingerprint(ctx.db)).toEqual(before);
  });
});

describe('holds', () => {
  it('reserves, captures (releasing the rest), takes an excess from available, and refuses what is not there', async () => {
    const w = await wallet();
    await grant(w, { credits: '100' });
    const refused = expectProblem(await hold(w, '100.000001'), 409, 'insufficient-credits');
    expect(refused.detail).toContain('100');
    const held = await hold(w, '60');
    const h = held.body as Hold;
    expect(held.headers.location).toBe(`/api/v1/holds/${h.id}`);
    expect(h).toMatchObject({ status: 'pending', credits: '60', captured: null });
    // It expires expires_in seconds after it was made, to the millisecond (usage7 #2).
    expect(Date.parse(h.expires_at) - Date.parse(h.created_at)).toBe(300_000);
    // The answers are made before COMMIT, from what is written: the hold reads back the same.
    const readBack = async (id: string) => (await t.api.get(`/api/v1/holds/${id}`).expect(200)).text;
    expect(await readBack(h.id)).toBe(JSON.stringify(h));
    expect(await get(w)).toMatchObject({ available: '40', held: '60', total: '100' });
    const captured = await capture(h, '45.500000');
    expect(captured.status, captured.text).toBe(200);
    expect(captured.body).toMatchObject({ status: 'captured', captured: '45.5' });
    expect(await readBack(h.id)).toBe(captured.text);
    expect(await get(w)).toMatchObject({ available: '54.5', held: '0', total: '54.5' });
    expectProblem(await capture(h, '1'), 409, 'conflict');

    // Over the hold: the excess comes from available, or nothing happens.
    const small = (await hold(w, '10')).body as Hold;
    const before = await get(w);
    expectProblem(await capture(small, '60'), 409, 'insufficient-credits');
    expect(await get(w)).toEqual(before);
    expect((await capture(small, '30')).body).toMatchObject({ captured: '30' });
    expect(await get(w)).toMatchObject({ available: '24.5', held: '0' });
    // Ids in the path in any case, as everywhere (holds answered 404 to one in upper case).
    const upper = await t.api
      .post(`/api/v1/wallets/${w.id.toUpperCase()}/holds`)
      .send({ credits: '1', expires_in: 60 });
    expect(upper.status, upper.text).toBe(201);
    const freed = await t.api.post(`/api/v1/holds/${(upper.body as Hold).id.toUpperCase()}/release`);
    expect(freed.status, freed.text).toBe(200);
    expect(await get(w)).toMatchObject({ available: '24.5', held: '0' });

    const r = (await hold(w, '20')).body as Hold;
    const released = await release(r);
    expect(released.body).toMatchObject({ status: 'released' });
    expect(await readBack(r.id)).toBe(released.text);
    expectProblem(await release(r), 409, 'conflict');
    expect(await get(w)).toMatchObject({ available: '24.5', held: '0' });
    expectLedgerAddsUp(await ledger(w), await get(w));
  });

  it('replays a capture with the same Idempotency-Key: same answer, consumed once', async () => {
    const w = await wallet();
    await grant(w, { credits: '10' });
    const h = (await hold(w, '5')).body as Hold;
    const first = await t.api
      .post(`/api/v1/holds/${h.id}/capture`)
      .set('Idempotency-Key', 'cap-1')
      .send({ credits: '4' });
    const again = await t.api
      .post(`/api/v1/holds/${h.id}/capture`)
      .set('Idempotency-Key', 'cap-1')
      .send({ credits: '4' });
    expect(again.status).toBe(first.status);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await get(w)).toMatchObject({ available: '6', total: '6' });
  });

  it('takes from the highest priority, then the soonest to expire', async () => {
    const w = await wallet();
    const later = new Date(Date.now() + 86_400_000 * 30).toISOString();
    const sooner = new Date(Date.now() + 86_400_000).toISOString();
    const low = await grant(w, { credits: '100' });
    const soon = await grant(w, { credits: '10', expires_at: sooner, priority: 1 });
    const late = await grant(w, { credits: '10', expires_at: later, priority: 1 });
    const high = await grant(w, { credits: '5', priority: 9 });
    const h = (await hold(w, '18')).body as Hold;
    expect((await capture(h, '18')).status).toBe(200);
    const { rows } = await sql<{ id: string; remaining: string }>`
      select id, trim_scale(remaining)::text as remaining from wallet_grants where wallet_id = ${w.id}`.execute(
      ctx.db,
    );
    const remaining = new Map(rows.map((r) => [r.id, r.remaining]));
    expect([high, soon, late, low].map((g) => remaining.get(g.id))).toEqual(['0', '0', '7', '100']);
  });
});

describe('expiry', () => {
  it('releases a hold and removes the rest of a grant past their expiry, as ledger entries', async () => {
    const w = await wallet();
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const g = await grant(w, { credits: '50', expires_at: expiresAt });
    await grant(w, { credits: '5' });
    const h = (await hold(w, '20', 1)).body as Hold;
    // Wait for the time to pass (reads count what is due as done, before any sweep).
    for (let i = 0; i < 100 && (await get(w)).available !== '5'; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await get(w)).toMatchObject({ available: '5', held: '0', total: '5' });
    expect((await t.api.get(`/api/v1/holds/${h.id}`)).body).toMatchObject({ status: 'expired' });
    await sweepWallet({ db: ctx.appDb }, t.id, w.id);
    // Settled when it expired, before the sweep and after it alike.
    const swept = (await t.api.get(`/api/v1/holds/${h.id}`)).body as Hold;
    expect(swept).toMatchObject({ status: 'expired', settled_at: h.expires_at });
    const entries = await ledger(w);
    expect(entries.slice(-2).map((e) => [e.type, e.credits, e.actor.type, e.grant_id ?? e.hold_id])).toEqual([
      ['release', '20', 'system', h.id],
      ['expiry', '50', 'system', g.id],
    ]);
    expectLedgerAddsUp(entries, await get(w));
    expectProblem(await capture(h, '1'), 409, 'conflict');
  });

  it("is the system's in the ledger when a request's own sweep writes it", async () => {
    const w = await wallet();
    const g = await grant(w, { credits: '50', expires_at: new Date(Date.now() + 1500).toISOString() });
    const h = (await hold(w, '20', 1)).body as Hold;
    await new Promise((r) => setTimeout(r, 1600));
    await grant(w, { credits: '5' }); // sweeps the wallet first, as every operation does
    const entries = await ledger(w);
    expect(entries.slice(-3).map((e) => [e.type, e.credits, e.actor.type, e.grant_id ?? e.hold_id])).toEqual([
      ['release', '20', 'system', h.id],
      ['expiry', '50', 'system', g.id],
      ['grant', '5', 'api_key', expect.any(String)],
    ]);
    expectLedgerAddsUp(entries, await get(w));
  });
});

describe('reading grants', () => {
  it('lists them newest first, each with what is left as of now, the same before the sweep and after', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'grants', frozen_time: '2034-05-01T10:00:00Z' })
    ).body as Schemas['TestClock'];
    const w = await walletOf((await createUser(t)).id, { name: 'clock', test_clock_id: clock.id });
    const a = await grant(w, { credits: '50', expires_at: '2034-05-01T11:00:00Z' });
    const b = await grant(w, { credits: '5' });
    expect((await hold(w, '20', 3 * 3600)).status).toBe(201); // outlives a: keeps 20 of it
    expect((await hold(w, '10', 60)).status).toBe(201); // expires before a: gives its 10 back
    // Two hours on, without the worker: a is past its expiry, but the first hold still has 20 of it.
    await sql`update test_clocks set frozen_time = '2034-05-01T12:00:00Z' where id = ${clock.id}`.execute(
      ctx.db,
    );
    const read = async () => {
      const page = (await t.api.get(`/api/v1/wallets/${w.id}/grants`)).body as Schemas['GrantList'];
      return page.data.map((g) => [g.id, g.remaining, g.status]);
    };
    const expected = [
      [b.id, '5', 'available'],
      [a.id, '20', 'available'],
    ];
    expect(await read()).toEqual(expected);
    expect((await t.api.get(`/api/v1/grants/${a.id}`)).body).toMatchObject({
      remaining: '20',
      credits: '50',
      expired_at: null,
    });
    expect(await get(w)).toMatchObject({ available: '5', held: '20' });
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    expect(await read()).toEqual(expected);
    expect((await t.api.get(`/api/v1/grants/${a.id}`)).body).toMatchObject({
      remaining: '20',
      expired_at: '2034-05-01T11:00:00.000Z',
    });
    // Pages of one, by cursor; unknown ids are 404.
    // (A cursor names the wallet, whatever case its id was sent in.)
    const first = (await t.api.get(`/api/v1/wallets/${w.id.toUpperCase()}/grants?limit=1`))
      .body as Schemas['GrantList'];
    const second = (await t.api.get(`/api/v1/wallets/${w.id}/grants?limit=1&cursor=${first.next_cursor}`))
      .body as Schemas['GrantList'];
    expect([...first.data, ...second.data].map((g) => g.id)).toEqual([b.id, a.id]);
    expect(second.next_cursor).toBeNull();
    expectProblem(await t.api.get(`/api/v1/grants/${w.id}`), 404, 'not-found');
    expectProblem(await t.api.get(`/api/v1/wallets/${a.id}/grants`), 404, 'not-found');
  });
});

describe('the worker', () => {
  it('sweeps expired grants into the ledger by itself', async () => {
    const w = await wallet();
    // Far enough ahead that a slow request still creates it before then.
    const g = await grant(w, { credits: '7', expires_at: new Date(Date.now() + 2000).toISOString() });
    const job = startWalletExpiry({ db: ctx.appDb, ownerDb: ctx.db }, silentLogger(), 50);
    try {
      let entries = await ledger(w);
      for (let i = 0; i < 100 && entries.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        entries = await ledger(w);
      }
      expect(entries.map((e) => [e.type, e.credits, e.actor.type, e.grant_id])).toEqual([
        ['grant', '7', 'api_key', g.id],
        ['expiry', '7', 'system', g.id],
      ]);
    } finally {
      await job.stop();
    }
  });
});

describe('settlements waiting on a wallet', () => {
  // A settlement reads the hold and the grants in the same round trip as the wallet's lock, sent
  // behind it: they must be read once the lock is held, never before. Two keys' requests go in
  // transactions of their own (one key's wait in the server for its next transaction).
  it('read the hold after the lock: of a capture and a release queued on it, one settles it', async () => {
    const w = await wallet();
    await grant(w, { credits: '100' });
    const h = (await hold(w, '60')).body as Hold;
    const other = await t.api.post('/api/v1/api-keys').send({ name: 'second writer', role: 'admin' });
    expect(other.status, other.text).toBe(201);
    const otherKey = ctx.withKey((other.body as Schemas['ApiKeyWithSecret']).key);
    const held = await holdLocks(ctx.db, sql`select 1 from wallets where id = ${w.id} for update`);
    const captured = capture(h, '60').then((res) => res);
    const released = otherKey.post(`/api/v1/holds/${h.id}/release`).then((res) => res);
    await waitForLockWaiters(ctx.db, 2);
    await held.release();
    const outcomes = await Promise.all([captured, released]);
    expect(outcomes.map((res) => res.status).sort()).toEqual([200, 409]);
    const after = await get(w);
    const won = outcomes.find((res) => res.status === 200)!.body as Hold;
    expect(after.available).toBe(won.status === 'captured' ? '40' : '100');
    expect(after.held).toBe('0');
    expectLedgerAddsUp(await ledger(w), after);
  });

  it('of one key, wait in the server and go together in one transaction, each decided in order', async () => {
    const w = await walletOf((await createUser(t)).id, { name: 'AI credits', low_balance_threshold: '50' });
    await grant(w, { credits: '100' });
    const first = (await hold(w, '30')).body as Hold; // 70 available
    const held = await holdLocks(ctx.db, sql`select 1 from wallets where id = ${w.id} for update`);
    // The first request waits on the lock in the database; the others arrive meanwhile and wait
    // in the server for the key's next transaction, which they share.
    const leading = hold(w, '1').then((res) => res);
    await waitForLockWaiters(ctx.db, 1);
    const queued = [
      hold(w, '30').then((res) => res),
      release(first).then((res) => res),
      capture(first, '5').then((res) => res),
      hold(w, '30').then((res) => res),
      hold(w, '45').then((res) => res),
      hold(w, '0').then((res) => res),
    ];
    await pause(300);
    await held.release();
    const [lead, ...rest] = await Promise.all([leading, ...queued]);
    expect(lead.status).toBe(201);
    // Whatever their order of arrival, each got the answer it would have got alone, in that order.
    const statuses = rest.map((res) => res.status);
    expect(statuses[5]).toBe(422);
    expect(statuses.slice(1, 3).sort()).toEqual([200, 409]); // the hold settles once
    const after = await get(w);
    const entries = await ledger(w);
    expectLedgerAddsUp(entries, after);
    // The grant, the first hold, the leading hold, then one transaction for all the queued ones.
    const { rows } = await sql<{ transactions: number }>`
      select count(distinct xmin::text)::int as transactions from wallet_ledger
      where wallet_id = ${w.id}`.execute(ctx.db);
    expect(rows[0]!.transactions).toBe(4);
    // A balance event for each downward crossing of 50 the ledger shows, in its order.
    let crossings = 0;
    let before = m('100');
    for (const e of entries) {
      const now = m(e.available_after);
      if (before >= m('50') && now < m('50')) crossings++;
      before = now;
    }
    expect(crossings).toBeGreaterThan(0);
    const low = (await eventsOf(w.id)).filter((e) => e.type === 'wallet.balance_low');
    expect(low).toHaveLength(crossings);
  });

  it('with Idempotency-Keys share a transaction too: each key claimed and its reply stored in it', async () => {
    const w = await wallet();
    await grant(w, { credits: '100' });
    const [h1, h2] = [(await hold(w, '10')).body as Hold, (await hold(w, '20')).body as Hold];
    const keyed = (h: Hold, key: string, credits: string) =>
      t.api.post(`/api/v1/holds/${h.id}/capture`).set('Idempotency-Key', key).send({ credits });
    const held = await holdLocks(ctx.db, sql`select 1 from wallets where id = ${w.id} for update`);
    const leading = hold(w, '1').then((res) => res);
    await waitForLockWaiters(ctx.db, 1);
    const k1 = `k1-${h1.id}`;
    const k2 = `k2-${h2.id}`;
    const queued = [
      keyed(h1, k1, '7'),
      keyed(h2, k2, '20'),
      keyed(h1, k1, '7'), // the same request again: the next transaction replays the first's answer
      keyed(h2, k2, '19'), // the same key, another body: refused
    ].map((r) => r.then((res) => res));
    await pause(300);
    await held.release();
    const [lead, first, second, again, reused] = (await Promise.all([leading, ...queued])).map((res) => res);
    expect([lead!.status, first!.status, second!.status]).toEqual([201, 200, 200]);
    expect([again!.status, again!.text]).toEqual([200, first!.text]);
    expectProblem(reused!, 422, 'idempotency-key-reused');
    // The two captures in one transaction; one capture entry per hold.
    const { rows } = await sql<{ transactions: number }>`
      select count(distinct xmin::text)::int as transactions from wallet_holds
      where id in (${h1.id}::uuid, ${h2.id}::uuid)`.execute(ctx.db);
    expect(rows[0]!.transactions).toBe(1);
    const entries = await ledger(w);
    expect(entries.filter((e) => e.type === 'capture').map((e) => e.credits)).toEqual(['7', '20']);
    expectLedgerAddsUp(entries, await get(w));
  });

  it('of one key on several wallets share one transaction too', async () => {
    const [a, b] = [await wallet(), await wallet()];
    await grant(a, { credits: '10' });
    await grant(b, { credits: '10' });
    const held = await holdLocks(ctx.db, sql`select 1 from wallets where id = ${a.id} for update`);
    const leading = hold(a, '1').then((res) => res);
    await waitForLockWaiters(ctx.db, 1);
    const queued = [hold(b, '4'), hold(a, '4'), hold(b, '7'), hold(a, '9')].map((r) => r.then((res) => res));
    await pause(300);
    await held.release();
    const [lead, ...rest] = await Promise.all([leading, ...queued]);
    expect([lead.status, ...rest.map((res) => res.status)]).toEqual([201, 201, 201, 409, 409]);
    const holds = rest.filter((res) => res.status === 201).map((res) => (res.body as Hold).id);
    const { rows } = await sql<{ transactions: number }>`
      select count(distinct xmin::text)::int as transactions from wallet_holds where id = any(${holds}::uuid[])`.execute(
      ctx.db,
    );
    expect(rows[0]!.transactions).toBe(1);
    expect([(await get(a)).available, (await get(b)).available]).toEqual(['5', '6']);
    expectLedgerAddsUp(await ledger(a), await get(a));
    expectLedgerAddsUp(await ledger(b), await get(b));
  });
});

describe('a group of requests with a wallet on a test clock', () => {
  it('runs each request alone, so that each event occurs in its own wallet time', async () => {
    const clock = await t.api
      .post('/api/v1/test-clocks')
      .send({ name: 'wallet group', frozen_time: '2026-03-01T00:00:00Z' });
    expect(clock.status, clock.text).toBe(201);
    const clockId = (clock.body as Schemas['TestClock']).id;
    const onClock = await walletOf((await createUser(t)).id, { name: 'clock', test_clock_id: clockId });
    const [lead, real] = [await wallet(), await wallet()];
    for (const w of [onClock, lead, real]) await grant(w, { credits: '5' });
    const held = await holdLocks(ctx.db, sql`select 1 from wallets where id = ${lead.id} for update`);
    const leading = hold(lead, '1').then((res) => res);
    await waitForLockWaiters(ctx.db, 1);
    // Each empties its wallet: wallet.depleted, at the clock's time and at now.
    const queued = [hold(onClock, '5'), hold(real, '5')].map((r) => r.then((res) => res));
    await pause(300);
    await held.release();
    const outcomes = await Promise.all([leading, ...queued]);
    expect(outcomes.map((res) => res.status)).toEqual([201, 201, 201]);
    const depleted = async (w: Wallet) =>
      (await eventsOf(w.id)).find((e) => e.type === 'wallet.depleted')!.occurred_at;
    expect(await depleted(onClock)).toBe('2026-03-01T00:00:00.000Z');
    expect(Date.parse(await depleted(real))).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('50 concurrent clients holding, capturing and releasing at random', () => {
  it('never take the wallet below zero, and its ledger adds up exactly', async () => {
    const w = await wallet();
    await grant(w, { credits: '500' });
    let seed = 20261203;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648);
    const outcomes: Record<string, number> = {};
    const count = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let i = 0; i < 6; i++) {
          const res = await hold(w, String(1 + Math.floor(random() * 40)));
          count(`hold ${res.status}`);
          if (res.status !== 201) continue;
          const h = res.body as Hold;
          const r = random();
          const done =
            r < 0.6 ? await capture(h, (random() * 50).toFixed(2)) : r < 0.9 ? await release(h) : undefined;
          if (done) count(`${r < 0.6 ? 'capture' : 'release'} ${done.status}`);
        }
      }),
    );
    // Every answer was a decision: success or insufficient credits, never an error.
    expect(
      Object.keys(outcomes).every((k) => /^(hold (201|409)|capture (200|409)|release 200)$/.test(k)),
    ).toBe(true);
    expect(outcomes['hold 201']).toBeGreaterThan(10);
    const now = await get(w);
    expectLedgerAddsUp(await ledger(w), now);
    const { rows } = await sql<{ negative: number }>`
      select count(*)::int as negative from wallet_grants where wallet_id = ${w.id} and (remaining < 0 or reserved < 0)`.execute(
      ctx.db,
    );
    expect(rows[0]!.negative).toBe(0);
  }, 120_000);
});

const eventsOf = async (resourceId: string) => {
  const res = await t.api.get('/api/v1/events').query({ resource_id: resourceId, limit: 100 });
  expect(res.status, res.text).toBe(200);
  return (res.body as Schemas['EventList']).data; // oldest first
};

describe('overdrafts', () => {
  it('are set or raised by admin keys only (they give credit, as grants do), writing nothing otherwise', async () => {
    const key = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    expect(key.status, key.text).toBe(201);
    const editor = ctx.withKey((key.body as Schemas['ApiKeyWithSecret']).key);
    const user = await createUser(t);
    const before = await fingerprint(ctx.db);
    const made = await editor
      .post('/api/v1/wallets')
      .send({ user_id: user.id, name: 'W', pays_usage: true, overdraft_limit: '1000' });
    expectProblem(made, 403, 'forbidden');
    expect(await fingerprint(ctx.db)).toEqual(before);
    // Without an overdraft (0 is none) an editor makes it, and may lower an overdraft but not raise it.
    const plain = await editor
      .post('/api/v1/wallets')
      .send({ user_id: user.id, name: 'W', overdraft_limit: '0' });
    expect(plain.status, plain.text).toBe(201);
    const w = plain.body as Wallet;
    expectProblem(
      await editor.patch(`/api/v1/wallets/${w.id}`).send({ overdraft_limit: '0.000001' }),
      403,
      'forbidden',
    );
    const raised = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ overdraft_limit: '50' });
    expect(raised.status, raised.text).toBe(200);
    const lowered = await editor.patch(`/api/v1/wallets/${w.id}`).send({ overdraft_limit: '20' });
    expect(lowered.status, lowered.text).toBe(200);
    expect((await get(w)).overdraft_limit).toBe('20');
    expectProblem(
      await editor.patch(`/api/v1/wallets/${w.id}`).send({ overdraft_limit: '21' }),
      403,
      'forbidden',
    );
  });

  it("have a rate other than 1 set by admin keys only: it prices the customer's credits", async () => {
    const key = await t.api.post('/api/v1/api-keys').send({ name: 'editor', role: 'editor' });
    const editor = ctx.withKey((key.body as Schemas['ApiKeyWithSecret']).key);
    const user = await createUser(t);
    const before = await fingerprint(ctx.db);
    for (const rate of ['0.001', '1000']) {
      const made = await editor.post('/api/v1/wallets').send({ user_id: user.id, name: 'W', rate });
      expect(expectProblem(made, 403, 'forbidden').detail).toMatch(/rate/);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    for (const rate of [undefined, '1', '1.000000']) {
      const made = await editor.post('/api/v1/wallets').send({ user_id: user.id, name: 'W', rate });
      expect(made.status, made.text).toBe(201);
    }
    const admin = await t.api.post('/api/v1/wallets').send({ user_id: user.id, name: 'W', rate: '100' });
    expect(admin.status, admin.text).toBe(201);
  });

  it('let holds and captures take the balance below zero down to the limit; credits added repay it first', async () => {
    const w = await walletOf((await createUser(t)).id, { name: 'AI credits', overdraft_limit: '50' });
    expect(w.overdraft_limit).toBe('50');
    await grant(w, { credits: '100' });
    const first = await hold(w, '120');
    expect(first.status, first.text).toBe(201);
    expect(await get(w)).toMatchObject({
      available: '-20',
      held: '120',
      total: '100',
      overdraft_limit: '50',
    });
    const over = await hold(w, '30.000001');
    expectProblem(over, 409, 'insufficient-credits');
    expect((over.body as { detail: string }).detail).toBe(
      'The wallet has 30 credits available, counting what is left of its overdraft, fewer than 30.000001.',
    );
    const second = (await hold(w, '30')).body as Hold;
    expect((await get(w)).available).toBe('-50');
    // Beyond the hold, a capture takes its excess from what is left: nothing is.
    expectProblem(await capture(first.body as Hold, '120.5'), 409, 'insufficient-credits');
    expect((await release(second)).status).toBe(200);
    expect((await capture(first.body as Hold, '125')).status).toBe(200);
    expect(await get(w)).toMatchObject({ available: '-25', held: '0', total: '-25' });
    // The overdraft cannot shrink below what it lends.
    const shrink = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ overdraft_limit: '24.9' });
    expectProblem(shrink, 409, 'conflict');
    // Credits added repay what is overdrawn first: the grant keeps the rest.
    expect((await grant(w, { credits: '10' })).remaining).toBe('0');
    expect((await get(w)).available).toBe('-15');
    expect((await grant(w, { credits: '100' })).remaining).toBe('85');
    expect((await get(w)).available).toBe('85');
    const patched = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ overdraft_limit: '0' });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ available: '85', overdraft_limit: '0' });
    expectProblem(await hold(w, '85.01'), 409, 'insufficient-credits');
    expectLedgerAddsUp(await ledger(w), await get(w), '50');
    // From 100 to -20: depleted once, not again further down.
    const events = (await eventsOf(w.id)).map((e) => e.type).filter((type) => type !== 'wallet.updated');
    expect(events).toEqual(['wallet.created', 'wallet.depleted']);
  });

  it('is repaid by the credits a hold gives back, before their grant expires', async () => {
    const w = await walletOf((await createUser(t)).id, { name: 'AI credits', overdraft_limit: '50' });
    const g = await grant(w, { credits: '100', expires_at: new Date(Date.now() + 3000).toISOString() });
    const all = (await hold(w, '100')).body as Hold; // every credit of the grant held
    const more = (await hold(w, '30')).body as Hold; // from the overdraft
    expect((await capture(more, '30')).status).toBe(200);
    expect((await get(w)).available).toBe('-30');
    expect((await release(all)).status).toBe(200); // the grant's 100 back: 30 repay the overdraft
    expect((await get(w)).available).toBe('70');
    // Past its expiry, what is left of the grant (70, not 100) goes: the overdraft stays repaid.
    for (let i = 0; i < 100 && (await get(w)).available !== '0'; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect((await get(w)).available).toBe('0');
    await sweepWallet({ db: ctx.appDb }, t.id, w.id);
    const entries = await ledger(w);
    expect(entries.at(-1)).toMatchObject({ type: 'expiry', credits: '70', grant_id: g.id });
    expectLedgerAddsUp(entries, await get(w), '50');
  });

  it('refuses a hold that would make held reach 10^18 with 422 on /credits, writing nothing; captures above their hold fit', async () => {
    const MAX = '999999999999999999.999999';
    const w = await walletOf((await createUser(t)).id, { name: 'AI credits', overdraft_limit: MAX });
    await grant(w, { credits: MAX });
    const a = await hold(w, MAX);
    expect(a.status, a.text).toBe(201);
    // The overdraft has MAX left to reserve, but held would pass what a wallet holds.
    const before = await fingerprint(ctx.db);
    for (const credits of [MAX, '0.000001']) {
      const refused = expectProblem(await hold(w, credits), 422, 'unprocessable');
      expect(refused.errors).toEqual([
        {
          location: 'body',
          field: '/credits',
          message: `would take the wallet's held credits to 10^18 or more (held now: ${MAX})`,
        },
      ]);
    }
    expect(await fingerprint(ctx.db)).toEqual(before);
    expect(await get(w)).toMatchObject({ available: '0', held: MAX, total: MAX });

    // Up to the last millionth: held reaches MAX exactly.
    expect((await release(a.body as Hold)).status).toBe(200);
    const big = (await hold(w, '999999999999999999.999998')).body as Hold;
    const small = await hold(w, '0.000001');
    expect(small.status, small.text).toBe(201);
    expect((await get(w)).held).toBe(MAX);
    // Captures above their hold take the excess from the overdraft; held only goes down.
    const first = await capture(small.body as Hold, MAX);
    expect(first.status, first.text).toBe(200);
    expect(await get(w)).toMatchObject({ available: '-999999999999999999.999998', held: big.credits });
    const second = await capture(big, MAX);
    expect(second.status, second.text).toBe(200);
    const now = await get(w);
    expect(now).toMatchObject({ available: `-${MAX}`, held: '0', total: `-${MAX}` });
    expectProblem(await hold(w, '0.000001'), 409, 'insufficient-credits'); // the overdraft is used up
    expectLedgerAddsUp(await ledger(w), now, MAX);
  });

  it('is never exceeded by 30 concurrent clients, and the ledger adds up', async () => {
    const w = await walletOf((await createUser(t)).id, { name: 'AI credits', overdraft_limit: '100' });
    await grant(w, { credits: '200' });
    let seed = 20261205;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648);
    const statuses = new Set<string>();
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        for (let i = 0; i < 5; i++) {
          const res = await hold(w, String(1 + Math.floor(random() * 30)));
          statuses.add(`hold ${res.status}`);
          if (res.status !== 201) continue;
          const done = await capture(res.body as Hold, (random() * 40).toFixed(2));
          statuses.add(`capture ${done.status}`);
        }
      }),
    );
    expect([...statuses].every((k) => /^(hold (201|409)|capture (200|409))$/.test(k))).toBe(true);
    expect(statuses.has('hold 409')).toBe(true); // the overdraft ran out
    const now = await get(w);
    expect(m(now.available) >= m('-100')).toBe(true);
    expectLedgerAddsUp(await ledger(w), now, '100');
  });
});

describe('settings and balance events', () => {
  it('answers a new wallet with its ETag, which a PATCH can name at once', async () => {
    const user = await createUser(t);
    const made = await t.api.post('/api/v1/wallets').send({ user_id: user.id, name: 'Paid', rate: '10' });
    expect(made.status, made.text).toBe(201);
    expect(made.headers.etag).toBe('"1"');
    const patched = await t.api
      .patch(`/api/v1/wallets/${(made.body as Wallet).id}`)
      .set('If-Match', made.headers.etag!)
      .send({ name: 'Paid credits' });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.headers.etag).toBe('"2"');
  });

  it('never answers 304: its ETag is the version of the settings, and balances move without it', async () => {
    const user = await createUser(t);
    const made = await t.api.post('/api/v1/wallets').send({ user_id: user.id, name: 'Paid', rate: '10' });
    const id = (made.body as Wallet).id;
    const granted = await t.api.post(`/api/v1/wallets/${id}/grants`).send({ credits: '5' });
    expect(granted.status, granted.text).toBe(201);
    const read = await t.api.get(`/api/v1/wallets/${id}`).set('If-None-Match', made.headers.etag!);
    expect(read.status, read.text).toBe(200);
    expect(read.headers.etag).toBe(made.headers.etag);
    expect(read.body).toMatchObject({ available: '5' });
  });

  it('changes the name and settings with PATCH under If-Match; a PATCH that changes nothing writes nothing', async () => {
    const w = await wallet();
    const read = await t.api.get(`/api/v1/wallets/${w.id}`);
    expect(read.headers.etag).toBe('"1"');
    expect(read.body).toMatchObject({ low_balance_threshold: null, pays_usage: false });
    const patched = await t.api
      .patch(`/api/v1/wallets/${w.id}`)
      .set('If-Match', '"1"')
      .send({ name: 'Promo', low_balance_threshold: '12.50', pays_usage: true });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({
      name: 'Promo',
      low_balance_threshold: '12.5',
      pays_usage: true,
      version: 2,
    });
    expectProblem(
      await t.api.patch(`/api/v1/wallets/${w.id}`).set('If-Match', '"1"').send({ name: 'Late' }),
      412,
      'precondition-failed',
    );
    const before = await fingerprint(ctx.db);
    const same = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ pays_usage: true });
    expect(same.body).toMatchObject({ version: 2 });
    expect(await fingerprint(ctx.db)).toEqual(before);
    for (const body of [{}, { pays_usage: 'yes' }, { rate: '2' }])
      expectProblem(await t.api.patch(`/api/v1/wallets/${w.id}`).send(body), 400, 'validation-error');
    const zero = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ low_balance_threshold: '0' });
    expect(expectProblem(zero, 422, 'unprocessable').errors!.map((e) => e.field)).toEqual([
      '/low_balance_threshold',
    ]);
    const created = await t.api
      .post('/api/v1/wallets')
      .send({ user_id: w.user_id, name: 'Zero', rate: '0.000', low_balance_threshold: '0' });
    expect(expectProblem(created, 422, 'unprocessable').errors!.map((e) => e.field)).toEqual([
      '/rate',
      '/low_balance_threshold',
    ]);
    const cleared = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ low_balance_threshold: null });
    expect(cleared.body).toMatchObject({ low_balance_threshold: null, version: 3 });
    const events = await eventsOf(w.id);
    expect(events.map((e) => e.type)).toEqual(['wallet.created', 'wallet.updated', 'wallet.updated']);
    expect(events[1]!.previous).toEqual({
      name: 'AI credits',
      low_balance_threshold: null,
      pays_usage: false,
    });
  });

  it('sends wallet.balance_low once per downward crossing of the threshold, and wallet.depleted at zero', async () => {
    const user = await createUser(t);
    const w = await walletOf(user.id, { name: 'Low', low_balance_threshold: '100' });
    await grant(w, { credits: '300' });
    const big = (await hold(w, '250')).body as Hold; // 300 → 50: crossed
    const small = (await hold(w, '10')).body as Hold; // 50 → 40: still below, nothing
    expect((await release(big)).status).toBe(200); // 40 → 290: back above
    const again = (await hold(w, '200')).body as Hold; // 290 → 90: crossed again
    expect((await capture(small, '10')).status).toBe(200); // held credits consumed: available stays 90
    expect((await hold(w, '90')).status).toBe(201); // 90 → 0: depleted (already low)
    expect((await release(again)).status).toBe(200); // 0 → 200
    expect((await capture(again, '1')).status).toBe(409);
    const events = (await eventsOf(w.id)).filter((e) => e.type !== 'wallet.created');
    expect(events.map((e) => [e.type, e.previous, (e.data as unknown as Wallet).available])).toEqual([
      ['wallet.balance_low', { available: '300' }, '50'],
      ['wallet.balance_low', { available: '290' }, '90'],
      ['wallet.depleted', { available: '90' }, '0'],
    ]);
  });

  it('sends wallet.grant_expired once per grant, also when holds give back what they reserved of it later', async () => {
    const w = await wallet();
    const g = await grant(w, { credits: '10', expires_at: new Date(Date.now() + 2000).toISOString() });
    const h = (await hold(w, '4', 600)).body as Hold;
    while (Date.now() <= Date.parse(g.expires_at!)) await new Promise((r) => setTimeout(r, 50));
    await sweepWallet({ db: ctx.appDb }, t.id, w.id);
    expect((await release(h)).status).toBe(200);
    const entries = await ledger(w);
    expect(entries.filter((e) => e.grant_id === g.id && e.type === 'expiry').map((e) => e.credits)).toEqual([
      '6',
      '4',
    ]);
    const events = await eventsOf(g.id);
    expect(events.map((e) => e.type)).toEqual(['wallet.grant_expired']);
    const data = events[0]!.data as unknown as Schemas['Grant'];
    expect(data.expired_at).toEqual(expect.any(String));
    expect(data.remaining).toBe('4'); // still reserved by the hold then
    expectLedgerAddsUp(entries, await get(w));
  });

  it('sends wallet.grant_expired with the grant when the worker removes its rest', async () => {
    const w = await wallet();
    // Far enough ahead that a slow request still creates it before then; swept once it is past.
    const g = await grant(w, { credits: '3', expires_at: new Date(Date.now() + 2000).toISOString() });
    while (Date.now() <= Date.parse(g.expires_at!)) await new Promise((r) => setTimeout(r, 50));
    await sweepWallet({ db: ctx.appDb }, t.id, w.id);
    const events = await eventsOf(g.id);
    expect(
      events.map((e) => [
        e.type,
        e.resource_type,
        e.actor.type,
        (e.data as unknown as Schemas['Grant']).remaining,
      ]),
    ).toEqual([['wallet.grant_expired', 'wallet_grant', 'system', '0']]);
    // And the wallet, from 3 to 0: depleted, by the system.
    expect((await eventsOf(w.id)).map((e) => [e.type, e.actor.type])).toEqual([
      ['wallet.created', 'api_key'],
      ['wallet.depleted', 'system'],
    ]);
  });
});

describe('usage paid from wallets', () => {
  const tag = () => Math.random().toString(36).slice(2, 10);

  async function usageCustomer(unitAmount: string, price = '10.00') {
    const code = `calls-${tag()}`;
    const metric = await t.api
      .post('/api/v1/billable-metrics')
      .send({ code, name: 'API calls', aggregation: 'count' });
    expect(metric.status, metric.text).toBe(201);
    const plan = await t.api.post('/api/v1/plans').send({
      code: `p-${tag()}`,
      name: 'Usage plan',
      interval: 'month',
      price: { model: 'flat', amount: price },
      usage_charges: [{ metric: code, model: 'per_unit', amount: unitAmount }],
    });
    expect(plan.status, plan.text).toBe(201);
    const user = await createUser(t);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: (plan.body as Schemas['Plan']).id,
      start_date: '2026-01-01',
    });
    expect(sub.status, sub.text).toBe(201);
    // Started 2026-01-01 in real time, two or more periods back: no renewal bills January's
    // usage, so it is closed at creation (and refused). These tests bill it by invoicing February
    // by hand, as a subscription made before that rule could: reopened here.
    await sql`update subscriptions set usage_invoiced_until = null
      where id = ${(sub.body as Schemas['Subscription']).id}::uuid`.execute(ctx.db);
    const events = Array.from({ length: 7 }, (_, i) => ({
      event_id: `w-${tag()}-${i}`,
      user_id: user.id,
      metric: code,
      timestamp: `2026-01-0${i + 1}T12:00:00Z`,
    }));
    const recorded = await t.api.post('/api/v1/usage-events/batch').send({ events });
    expect(recorded.status, recorded.text).toBe(200);
    return { user, subscription: sub.body as Schemas['Subscription'], metric: code };
  }

  const invoiceFebruary = async (subscriptionId: string) => {
    const res = await t.api
      .post(`/api/v1/subscriptions/${subscriptionId}/invoices`)
      .send({ date: '2026-02-01' });
    expect(res.status, res.text).toBe(201);
    return res.body as Schemas['Invoice'];
  };

  it('pays usage lines from credits at each wallet rate, oldest wallet first, and bills only the rest', async () => {
    // 7 calls at 1.43 = 10.01 of usage. Wallet A (rate 3): 12 credits pay 4.00 (12 credits);
    // wallet B (rate 0.5): 2.5 credits pay 5.00 (2.5 credits); 1.01 is billed.
    const { user, subscription } = await usageCustomer('1.43');
    const a = await walletOf(user.id, { name: 'A', rate: '3', pays_usage: true });
    const b = await walletOf(user.id, { name: 'B', rate: '0.5', pays_usage: true });
    const other = await walletOf(user.id, { name: 'not for usage' });
    await grant(a, { credits: '12.000001' });
    await grant(b, { credits: '2.5' });
    await grant(other, { credits: '1000' });
    const invoice = await invoiceFebruary(subscription.id);
    const usage = invoice.lines.find((l) => l.type === 'usage')!;
    expect(usage.amount).toBe('1.01');
    expect(usage.credits_applied).toEqual({
      amount: '9.00',
      wallets: [
        { wallet_id: a.id, credits: '12', amount: '4.00' },
        { wallet_id: b.id, credits: '2.5', amount: '5.00' },
      ],
    });
    expect(invoice.subtotal).toBe('11.01'); // the plan's 10.00 and the rest of the usage
    expect(await get(a)).toMatchObject({ available: '0.000001' });
    expect(await get(b)).toMatchObject({ available: '0' });
    expect(await get(other)).toMatchObject({ available: '1000' });
    for (const w of [a, b]) {
      const entries = await ledger(w);
      expect(entries.at(-1)).toMatchObject({
        type: 'usage',
        invoice_id: invoice.id,
        actor: { type: 'system', id: null },
      });
      expectLedgerAddsUp(entries, await get(w));
    }
    // The same invoice again: nothing consumed twice.
    const again = await t.api
      .post(`/api/v1/subscriptions/${subscription.id}/invoices`)
      .send({ date: '2026-02-01' });
    expect(again.status).toBe(200);
    expect((await ledger(a)).filter((e) => e.type === 'usage')).toHaveLength(1);

    // Voided, the invoice gives the credits back: a refund grant and entry naming it, per wallet.
    expect((await t.api.post(`/api/v1/invoices/${invoice.id}/void`)).status).toBe(200);
    expect(await get(a)).toMatchObject({ available: '12.000001' });
    expect(await get(b)).toMatchObject({ available: '2.5' });
    for (const [w, credits] of [
      [a, '12'],
      [b, '2.5'],
    ] as const) {
      const entries = await ledger(w);
      expect(entries.at(-1)).toMatchObject({ type: 'refund', credits, invoice_id: invoice.id });
      expectLedgerAddsUp(entries, await get(w));
    }
  });

  it('pays usage after the coupon: what the discount leaves of it, never what the coupon forgave', async () => {
    // 7 calls at 1.00 and the plan's 10.00: 17.00 charged, of which the usage is 7.00.
    const cases = [
      // 10% off: 1.70, 0.70 of it the usage's share; credits pay the other 6.30 of it.
      [{ percent_off: '10' }, '6.30', '0.70', '-1.70', '9.00'],
      // 100% off: nothing is left to pay, and no credit is spent.
      [{ percent_off: '100' }, null, '7.00', '-17.00', '0.00'],
      // 8.50 off: half of each line; 3.50 of the usage is left for the credits.
      [{ amount_off: '8.50' }, '3.50', '3.50', '-8.50', '5.00'],
    ] as const;
    for (const [terms, paid, billed, discount, subtotal] of cases) {
      const { user, subscription } = await usageCustomer('1.00');
      const w = await walletOf(user.id, { name: 'W', rate: '1', pays_usage: true });
      await grant(w, { credits: '100' });
      const coupon = await t.api
        .post('/api/v1/coupons')
        .send({ name: `Usage coupon ${tag()}`, duration: 'forever', ...terms });
      expect(coupon.status, coupon.text).toBe(201);
      const applied = await t.api
        .post(`/api/v1/subscriptions/${subscription.id}/discount`)
        .send({ coupon_id: (coupon.body as Schemas['Coupon']).id });
      expect(applied.status, applied.text).toBe(200);
      const invoice = await invoiceFebruary(subscription.id);
      const usage = invoice.lines.find((l) => l.type === 'usage')!;
      expect([usage.credits_applied?.amount ?? null, usage.amount]).toEqual([paid, billed]);
      expect(invoice.lines.find((l) => l.type === 'discount')!.amount).toBe(discount);
      expect(invoice.subtotal).toBe(subtotal);
      expect(await get(w)).toMatchObject({ available: paid === null ? '100' : String(100 - Number(paid)) });
      if (subtotal === '0.00') continue;
      // Forgiven whole by amount: the credits come back, and the margin report keeps no revenue of
      // the usage (the note's share of it is of the subtotal, after the discount).
      expect((await t.api.post(`/api/v1/invoices/${invoice.id}/finalize`)).status).toBe(200);
      const note = await t.api
        .post(`/api/v1/invoices/${invoice.id}/credit-notes`)
        .send({ reason: 'forgiven', amount: subtotal });
      expect(note.status, note.text).toBe(201);
      expect(await get(w)).toMatchObject({ available: '100' });
      const margin = (
        await t.api
          .get('/api/v1/reports/usage-margin')
          .query({ from: '2026-01-01', to: '2026-02-01', group_by: 'user' })
      ).body as Schemas['UsageMarginReport'];
      expect(margin.rows.find((r) => 'user' in r && r.user.id === user.id)?.revenue).toBe('0.0000');
    }
  });

  it('gives the credits back when a credit note credits what is left of the invoice, as a void does', async () => {
    // 7.00 of usage, 5.00 of it paid by credits; 2.00 billed with the price: 12.00.
    const { user, subscription } = await usageCustomer('1.00');
    const w = await walletOf(user.id, { name: 'W', rate: '1', pays_usage: true });
    await grant(w, { credits: '5' });
    const draft = await invoiceFebruary(subscription.id);
    const finalized = await t.api.post(`/api/v1/invoices/${draft.id}/finalize`);
    expect(finalized.status, finalized.text).toBe(200);
    expect(finalized.body).toMatchObject({ status: 'open', subtotal: '12.00' });
    expect(await get(w)).toMatchObject({ available: '0' });
    const note = (body: Record<string, unknown>) =>
      t.api.post(`/api/v1/invoices/${draft.id}/credit-notes`).send({ reason: 'miscount', ...body });
    // The usage margin's revenue: the whole charge, less what the notes gave back of it.
    const revenue = async () => {
      const res = await t.api
        .get('/api/v1/reports/usage-margin')
        .query({ from: '2026-01-01', to: '2026-02-01', group_by: 'user' });
      const rows = (res.body as Schemas['UsageMarginReport']).rows;
      return rows.find((r) => 'user' in r && r.user.id === user.id)?.revenue;
    };
    expect(await revenue()).toBe('7.0000');
    const usageLine = (finalized.body as Schemas['Invoice']).lines.findIndex((l) => l.type === 'usage');
    // A part of it: the credits stay spent. 1.00 of the usage line, then 1.00 of the whole
    // invoice, of which the usage line's share is 2.00 of 12.00: 0.1667.
    expect((await note({ lines: [{ line_index: usageLine, amount: '1.00' }] })).status).toBe(201);
    expect(await revenue()).toBe('6.0000');
    expect((await note({ amount: '1.00' })).status).toBe(201);
    expect(await revenue()).toBe('5.8333');
    expect(await get(w)).toMatchObject({ available: '0' });
    // The rest: credited whole, it gives them back, a refund grant and entry naming the invoice,
    // and no revenue is left of the usage.
    expect((await note({ amount: '10.00' })).status).toBe(201);
    expect(await get(w)).toMatchObject({ available: '5' });
    expect(await revenue()).toBe('0.0000');
    const entries = await ledger(w);
    expect(entries.at(-1)).toMatchObject({ type: 'refund', credits: '5', invoice_id: draft.id });
    expectLedgerAddsUp(entries, await get(w));
  });

  it('voids an invoice that credits alone paid, which gives them back', async () => {
    const { user, subscription } = await usageCustomer('1.00', '0.00');
    const w = await walletOf(user.id, { name: 'W', rate: '1', pays_usage: true });
    await grant(w, { credits: '100' });
    const draft = await invoiceFebruary(subscription.id);
    const finalized = await t.api.post(`/api/v1/invoices/${draft.id}/finalize`);
    expect(finalized.status, finalized.text).toBe(200);
    expect(finalized.body).toMatchObject({ status: 'paid', total: '0.00' });
    expect(await get(w)).toMatchObject({ available: '93' });
    const voided = await t.api.post(`/api/v1/invoices/${draft.id}/void`);
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body).toMatchObject({ status: 'void' });
    expect(await get(w)).toMatchObject({ available: '100' });
    expectLedgerAddsUp(await ledger(w), await get(w));

    // 0.00 by credits and a coupon together (half off: credits pay 3.50 of the 7.00): not credits
    // alone, and a paid invoice, so no void (409).
    const halved = await usageCustomer('1.00', '0.00');
    const half = await walletOf(halved.user.id, { name: 'W', rate: '1', pays_usage: true });
    await grant(half, { credits: '100' });
    const coupon = await t.api
      .post('/api/v1/coupons')
      .send({ name: `Half ${tag()}`, percent_off: '50', duration: 'forever' });
    expect(
      (
        await t.api
          .post(`/api/v1/subscriptions/${halved.subscription.id}/discount`)
          .send({ coupon_id: (coupon.body as Schemas['Coupon']).id })
      ).status,
    ).toBe(200);
    const other = await invoiceFebruary(halved.subscription.id);
    const issued = await t.api.post(`/api/v1/invoices/${other.id}/finalize`);
    expect(issued.body).toMatchObject({ status: 'paid', total: '0.00' });
    expect((issued.body as Schemas['Invoice']).lines.map((l) => [l.type, l.amount])).toEqual([
      ['subscription', '0.00'],
      ['usage', '3.50'],
      ['discount', '-3.50'],
    ]);
    expectProblem(await t.api.post(`/api/v1/invoices/${other.id}/void`), 409, 'conflict');
  });

  it('pays a whole line when the credits cover it, rounding the credits up to 6 decimals', async () => {
    // 7 calls at 0.1234 = 0.8638, billed 0.86; at a rate of 1.234567 credits per unit that is
    // 1.06172762 credits, consumed as 1.061728.
    const { user, subscription } = await usageCustomer('0.1234');
    const w = await walletOf(user.id, { name: 'W', rate: '1.234567', pays_usage: true });
    await grant(w, { credits: '5' });
    const invoice = await invoiceFebruary(subscription.id);
    const usage = invoice.lines.find((l) => l.type === 'usage')!;
    expect([usage.amount, usage.credits_applied]).toEqual([
      '0.00',
      { amount: '0.86', wallets: [{ wallet_id: w.id, credits: '1.061728', amount: '0.86' }] },
    ]);
    expect(await get(w)).toMatchObject({ available: '3.938272' });
  });

  it('refuses the usage of a customer whose wallet blocks it once the credits are used up', async () => {
    const { user, subscription, metric } = await usageCustomer('1');
    expectProblem(
      await t.api.post('/api/v1/wallets').send({ user_id: user.id, name: 'B', blocks_usage: true }),
      422,
      'unprocessable',
    );
    const w = await walletOf(user.id, { name: 'Blocking', pays_usage: true, blocks_usage: true });
    const event = (id: string) => ({
      event_id: `${id}-${subscription.id}`,
      user_id: user.id,
      metric,
      timestamp: new Date().toISOString(),
    });
    // Empty: refused, naming each event of the customer; nothing recorded.
    const refused = await t.api.post('/api/v1/usage-events/batch').send({ events: [event('a'), event('b')] });
    const problem = expectProblem(refused, 422, 'unprocessable');
    expect(problem.errors).toEqual([
      expect.objectContaining({ field: '/events/0/user_id', message: expect.stringContaining(w.id) }),
      expect.objectContaining({
        field: '/events/1/user_id',
        message: expect.stringContaining('blocks usage'),
      }),
    ]);
    await grant(w, { credits: '1' });
    // Less than a cent's worth available (0.005 credits at rate 1): it pays nothing, so it blocks.
    const most = (await hold(w, '0.995')).body as Hold;
    expect((await get(w)).available).toBe('0.005');
    expectProblem(await t.api.post('/api/v1/usage-events').send(event('d')), 422, 'unprocessable');
    expect((await release(most)).status).toBe(200);
    const held = (await hold(w, '1')).body as Hold; // all of it held: none available
    expectProblem(await t.api.post('/api/v1/usage-events').send(event('c')), 422, 'unprocessable');
    expect((await release(held)).status).toBe(200);
    const accepted = await t.api.post('/api/v1/usage-events/batch').send({ events: [event('a')] });
    expect(accepted.status, accepted.text).not.toBe(422);
    // No longer blocking: PATCH blocks_usage false.
    const patched = await t.api.patch(`/api/v1/wallets/${w.id}`).send({ pays_usage: false });
    expectProblem(patched, 422, 'unprocessable');
  });

  it('pays usage into an overdraft, down to its limit, and bills the rest', async () => {
    // 7 calls at 1.43 = 10.01; 3 credits and an overdraft of 5 at rate 1 pay 8.00; 2.01 is billed.
    const { user, subscription } = await usageCustomer('1.43');
    const w = await walletOf(user.id, { name: 'W', pays_usage: true, overdraft_limit: '5' });
    await grant(w, { credits: '3' });
    const invoice = await invoiceFebruary(subscription.id);
    const usage = invoice.lines.find((l) => l.type === 'usage')!;
    expect([usage.amount, usage.credits_applied]).toEqual([
      '2.01',
      { amount: '8.00', wallets: [{ wallet_id: w.id, credits: '8', amount: '8.00' }] },
    ]);
    expect(await get(w)).toMatchObject({ available: '-5', total: '-5' });
    expectLedgerAddsUp(await ledger(w), await get(w), '5');
    // Voided: the refund repays the overdraft.
    expect((await t.api.post(`/api/v1/invoices/${invoice.id}/void`)).status).toBe(200);
    expect(await get(w)).toMatchObject({ available: '3' });
    expectLedgerAddsUp(await ledger(w), await get(w), '5');
  });

  it('blocks usage only once the overdraft is used up too', async () => {
    const { user, subscription, metric } = await usageCustomer('1');
    const w = await walletOf(user.id, {
      name: 'Blocking',
      pays_usage: true,
      blocks_usage: true,
      overdraft_limit: '2',
    });
    const event = (id: string) => ({
      event_id: `${id}-${subscription.id}`,
      user_id: user.id,
      metric,
      timestamp: new Date().toISOString(),
    });
    // No credits, but 2 of overdraft: accepted.
    const accepted = await t.api.post('/api/v1/usage-events').send(event('a'));
    expect(accepted.status, accepted.text).not.toBe(422);
    const held = (await hold(w, '2')).body as Hold; // the overdraft all held: nothing left
    expect((await get(w)).available).toBe('-2');
    expectProblem(await t.api.post('/api/v1/usage-events').send(event('b')), 422, 'unprocessable');
    expect((await release(held)).status).toBe(200);
    expect((await t.api.post('/api/v1/usage-events').send(event('c'))).status).not.toBe(422);
  });

  it('bills usage in full when the customer has no wallet paying usage, or it is empty', async () => {
    const { user, subscription } = await usageCustomer('2');
    await walletOf(user.id, { name: 'Empty', pays_usage: true });
    const invoice = await invoiceFebruary(subscription.id);
    expect(invoice.lines.map((l) => [l.type, l.amount, l.credits_applied])).toEqual([
      ['subscription', '10.00', null],
      ['usage', '14.00', null],
    ]);
  });
});

describe('paid grants', () => {
  const dueCtx = () => ({
    db: ctx.appDb,
    ownerDb: ctx.db,
    gateway: simulatedGateway,
    settlementDelayScale: 0,
  });
  let planId: string;

  beforeAll(async () => {
    const res = await t.api.post('/api/v1/plans').send({
      code: `credits-${Math.random().toString(36).slice(2, 8)}`,
      name: 'Base',
      interval: 'month',
      price: { model: 'flat', amount: '5.00' },
    });
    expect(res.status, res.text).toBe(201);
    planId = (res.body as Schemas['Plan']).id;
  });

  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

  /** A customer with a subscription (paying with `payment_method`, if any) and a wallet at `rate`. */
  async function customer(rate: string, payment: Record<string, string> = {}) {
    const user = await createUser(t);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: planId,
      start_date: tomorrow, // no period invoice due yet: the purchases are the only ones
      ...payment,
    });
    expect(sub.status, sub.text).toBe(201);
    return {
      subscription: sub.body as Schemas['Subscription'],
      wallet: await walletOf(user.id, { name: 'Paid', rate }),
    };
  }

  const buy = (w: Wallet, body: Record<string, unknown>) =>
    t.api.post(`/api/v1/wallets/${w.id}/grants`).send({ kind: 'paid', ...body });
  const invoice = async (id: string) =>
    (await t.api.get(`/api/v1/invoices/${id}`)).body as Schemas['Invoice'];
  const settleAll = async () => {
    for (let i = 0; i < 3; i++) await performDueWork(dueCtx(), { tenantId: t.id });
  };

  it('bills a purchase invoice, collects it by card, and makes the credits available when it is paid', async () => {
    const { subscription, wallet: w } = await customer('100', {
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    const res = await buy(w, { amount: '20.00', subscription_id: subscription.id, priority: 5 });
    expect(res.status, res.text).toBe(201);
    const g = res.body as Schemas['Grant'];
    expect(g).toMatchObject({
      kind: 'paid',
      status: 'pending',
      credits: '2000',
      remaining: '0',
      amount: '20.00',
      available_at: null,
    });
    expect(await get(w)).toMatchObject({ available: '0', total: '0' });
    const bill = await invoice(g.invoice_id!);
    expect(bill).toMatchObject({
      kind: 'purchase',
      status: 'open',
      subscription_id: subscription.id,
      total: '20.00',
    });
    expect(bill.number).toBeGreaterThan(0);
    expect(bill.lines.map((l) => [l.type, l.amount, l.period_start, l.period_end])).toEqual([
      ['credits', '20.00', bill.period_start, bill.period_end],
    ]);
    expect((await ledger(w)).length).toBe(0); // nothing moved yet

    await settleAll();
    expect(await invoice(g.invoice_id!)).toMatchObject({ status: 'paid' });
    expect(await get(w)).toMatchObject({ available: '2000', total: '2000' });
    const entries = await ledger(w);
    expect(entries.map((e) => [e.type, e.credits, e.grant_id, e.invoice_id, e.actor.type])).toEqual([
      ['grant', '2000', g.id, g.invoice_id, 'system'],
    ]);
    const payments = (await t.api.get(`/api/v1/invoices/${g.invoice_id}/payments`))
      .body as Schemas['PaymentList'];
    expect(payments.data.map((p) => [p.initiated_by, p.status])).toEqual([['purchase', 'succeeded']]);
    // Purchases are not in the way of each other, nor of a period invoice starting on their day.
    expect((await buy(w, { amount: '0.01', subscription_id: subscription.id })).status).toBe(201);
    // The API invoices no period ahead of its start (its renewal does): the renewal's own code.
    const period = await inTenant({ db: ctx.appDb }, { tenantId: t.id, keyId: 'system' }, (tx) =>
      invoiceForPeriod(tx, subscription.id, bill.period_end),
    );
    expect(period.kind).toBe('created');
    expect(period.kind === 'created' && period.invoice.kind).toBe('period');
  });

  it('leaves the grant pending when the card is declined (no dunning), and cancels it when the invoice is voided', async () => {
    const { subscription, wallet: w } = await customer('1', {
      payment_method: 'pm_card_declined',
      payment_rail: 'card',
    });
    const g = (await buy(w, { amount: '7.50', subscription_id: subscription.id })).body as Schemas['Grant'];
    await settleAll();
    expect(await invoice(g.invoice_id!)).toMatchObject({ status: 'open', next_payment_attempt_at: null });
    const sub = (await t.api.get(`/api/v1/subscriptions/${subscription.id}`)).body as Schemas['Subscription'];
    expect(sub.status).toBe('active');
    expect((await t.api.post(`/api/v1/invoices/${g.invoice_id}/void`)).status).toBe(200);
    const grants = await sql<{
      status: string;
    }>`select canceled_at is not null as status from wallet_grants where id = ${g.id}`.execute(ctx.db);
    expect(grants.rows[0]!.status).toBe(true);
    expect(await get(w)).toMatchObject({ available: '0' });
    expect(await ledger(w)).toEqual([]);
  });

  it('is paid through the API when the subscription has no payment method; credits round down to 6 decimals', async () => {
    const { subscription, wallet: w } = await customer('0.333333');
    const g = (await buy(w, { amount: '10.01', subscription_id: subscription.id })).body as Schemas['Grant'];
    expect(g.credits).toBe('3.336663'); // 10.01 × 0.333333 = 3.33666333
    const pay = await t.api
      .post(`/api/v1/invoices/${g.invoice_id}/payments`)
      .send({ amount: '10.01', payment_method: 'pm_card_visa', rail: 'card' });
    expect(pay.status, pay.text).toBe(202);
    await settleAll();
    expect(await get(w)).toMatchObject({ available: '3.336663' });
  });

  it('lapses unpaid at its expires_at: no payment is taken any more, and the worker voids the invoice', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'lapse', frozen_time: '2033-01-10T12:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: planId,
      start_date: '2033-01-10',
      test_clock_id: clock.id,
    });
    expect(sub.status, sub.text).toBe(201);
    const w = await walletOf(user.id, { name: 'Paid', rate: '10', test_clock_id: clock.id });
    const g = (
      await buy(w, {
        amount: '5.00',
        subscription_id: (sub.body as Schemas['Subscription']).id,
        expires_at: '2033-01-20T00:00:00Z',
      })
    ).body as Schemas['Grant'];
    const pay = () =>
      t.api
        .post(`/api/v1/invoices/${g.invoice_id}/payments`)
        .send({ amount: '5.00', payment_method: 'pm_card_visa', rail: 'card' });
    // Moved past the expiry without the worker: the payment is refused already, writing nothing.
    await sql`update test_clocks set frozen_time = '2033-01-21T00:00:00Z' where id = ${clock.id}`.execute(
      ctx.db,
    );
    const refused = expectProblem(await pay(), 409, 'conflict');
    expect(refused.detail).toMatch(/expired at 2033-01-20T00:00:00.000Z, unpaid/);
    const payments = (await t.api.get(`/api/v1/invoices/${g.invoice_id}/payments`))
      .body as Schemas['PaymentList'];
    expect(payments.data).toEqual([]);
    // The worker's step, at the expiry on the clock: the invoice is voided and the grant canceled.
    await performDueWork(dueCtx(), { tenantId: t.id, clockId: clock.id });
    expect(await invoice(g.invoice_id!)).toMatchObject({
      status: 'void',
      voided_at: '2033-01-20T00:00:00.000Z',
    });
    const grants = (await t.api.get(`/api/v1/wallets/${w.id}/grants`)).body as Schemas['GrantList'];
    expect(grants.data.map((x) => [x.id, x.status])).toEqual([[g.id, 'canceled']]);
    expect(await get(w)).toMatchObject({ available: '0', total: '0' });
    expect(await ledger(w)).toEqual([]);
    expectProblem(await pay(), 409, 'conflict');
  });

  it('lapses when a payment in flight at the expiry fails, at the failure, not before it', async () => {
    const clock = (
      await t.api
        .post('/api/v1/test-clocks')
        .send({ name: 'lapse late', frozen_time: '2033-03-03T10:00:00Z' })
    ).body as Schemas['TestClock'];
    const user = await createUser(t);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      status: 'active',
      plan_id: planId,
      start_date: '2033-03-03',
      test_clock_id: clock.id,
    });
    expect(sub.status, sub.text).toBe(201);
    const w = await walletOf(user.id, { name: 'Paid', rate: '10', test_clock_id: clock.id });
    const g = (
      await buy(w, {
        amount: '5.00',
        subscription_id: (sub.body as Schemas['Subscription']).id,
        expires_at: '2033-03-03T12:00:00Z',
      })
    ).body as Schemas['Grant'];
    const pay = await t.api
      .post(`/api/v1/invoices/${g.invoice_id}/payments`)
      .send({ amount: '5.00', payment_method: 'pm_insufficient_funds', rail: 'ach_standard' });
    expect(pay.status, pay.text).toBe(202);
    expect(
      (
        await t.api
          .post(`/api/v1/test-clocks/${clock.id}/advance`)
          .send({ frozen_time: '2033-03-20T00:00:00Z' })
      ).status,
    ).toBe(202);
    await performDueWork({ ...dueCtx(), settlementDelayScale: 1 }, { tenantId: t.id, clockId: clock.id });
    const [payment] = (
      (await t.api.get(`/api/v1/invoices/${g.invoice_id}/payments`)).body as Schemas['PaymentList']
    ).data;
    expect(payment).toMatchObject({ status: 'failed' });
    expect(payment!.settled_at! > '2033-03-03T12:00:00.000Z').toBe(true);
    expect(await invoice(g.invoice_id!)).toMatchObject({ status: 'void', voided_at: payment!.settled_at });
  });

  it('does not lapse while a payment is in flight, nor once paid', async () => {
    const { subscription, wallet: w } = await customer('10');
    const soon = new Date(Date.now() + 1500).toISOString();
    const g = (await buy(w, { amount: '3.00', subscription_id: subscription.id, expires_at: soon }))
      .body as Schemas['Grant'];
    const pay = await t.api
      .post(`/api/v1/invoices/${g.invoice_id}/payments`)
      .send({ amount: '3.00', payment_method: 'pm_card_visa', rail: 'card' });
    expect(pay.status, pay.text).toBe(202);
    await new Promise((r) => setTimeout(r, 1600));
    // The payment was in flight at the expiry: it decides. It succeeds, and the credits granted
    // expire at once, each step in the ledger.
    await settleAll();
    expect(await invoice(g.invoice_id!)).toMatchObject({ status: 'paid' });
    await sweepWallet({ db: ctx.appDb }, t.id, w.id);
    expect((await ledger(w)).map((e) => [e.type, e.credits])).toEqual([
      ['grant', '30'],
      ['expiry', '30'],
    ]);
  });

  it('takes no credit note, open or paid: the money would go back and the credits stay', async () => {
    const { subscription, wallet: w } = await customer('10', {
      payment_method: 'pm_card_visa',
      payment_rail: 'card',
    });
    const g = (await buy(w, { amount: '5.00', subscription_id: subscription.id })).body as Schemas['Grant'];
    const credit = (body: Record<string, unknown>) =>
      t.api.post(`/api/v1/invoices/${g.invoice_id}/credit-notes`).send({ reason: 'refund', ...body });
    // Open: a partial credit would lower what is paid for the same credits.
    const open = expectProblem(await credit({ amount: '4.00' }), 409, 'conflict');
    expect(open.detail).toMatch(/purchase of credits/);
    await settleAll();
    expect(await get(w)).toMatchObject({ available: '50' });
    // Paid: a refund would leave the 50 credits in the wallet.
    expectProblem(await credit({ amount: '5.00', refund_to: 'payment' }), 409, 'conflict');
    expectProblem(await credit({ amount: '5.00', refund_to: 'balance' }), 409, 'conflict');
    expect(await invoice(g.invoice_id!)).toMatchObject({ status: 'paid', amount_credited: '0.00' });
    const refunds = (await t.api.get(`/api/v1/invoices/${g.invoice_id}/refunds`))
      .body as Schemas['RefundList'];
    expect(refunds.data).toEqual([]);
    expect(await get(w)).toMatchObject({ available: '50' });
  });

  it('refuses bad purchases with 422, writing nothing', async () => {
    const { subscription, wallet: w } = await customer('1');
    const other = await customer('1');
    // A canceled subscription of the customer bills nothing more, credits neither (wallets10 #5).
    const ended = await t.api.post('/api/v1/subscriptions').send({
      user_id: subscription.user_id,
      status: 'active',
      plan_cost: '0.00',
      start_date: '2026-01-01',
    });
    expect(ended.status, ended.text).toBe(201);
    const canceled = ended.body as Schemas['Subscription'];
    await t.api.post(`/api/v1/subscriptions/${canceled.id}/cancel`).send({ at: 'now' }).expect(200);
    const before = await fingerprint(ctx.db);
    for (const [body, fields] of [
      [{}, ['/amount', '/subscription_id']],
      [{ amount: '0', subscription_id: subscription.id }, ['/amount']],
      [{ amount: '1.00', subscription_id: other.subscription.id }, ['/subscription_id']],
      [{ amount: '1.00', subscription_id: canceled.id }, ['/subscription_id']],
      [{ amount: '1.00', subscription_id: subscription.id, credits: '5' }, ['/credits']],
      [
        { amount: '1.00', subscription_id: subscription.id, expires_at: '2020-01-01T00:00:00Z' },
        ['/expires_at'],
      ],
    ] as const) {
      const problem = expectProblem(await buy(w, body), 422, 'unprocessable');
      expect(problem.errors!.map((e) => e.field)).toEqual(fields);
    }
    const free = await t.api.post(`/api/v1/wallets/${w.id}/grants`).send({ amount: '1.00' });
    expect(expectProblem(free, 422, 'unprocessable').errors!.map((e) => e.field)).toEqual([
      '/amount',
      '/credits',
    ]);
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('counts unpaid purchases against the 10^18 cap, so that paying one can never overflow the wallet', async () => {
    const { subscription, wallet: w } = await customer('1000000000000'); // 10^12 credits per 1.00
    const first = await buy(w, { amount: '600000.00', subscription_id: subscription.id }); // 6 × 10^17
    expect(first.status, first.text).toBe(201);
    const before = await fingerprint(ctx.db);
    const second = await buy(w, { amount: '500000.00', subscription_id: subscription.id });
    expect(expectProblem(second, 422, 'unprocessable').errors![0]!.message).toMatch(/unpaid purchases/);
    const free = await t.api.post(`/api/v1/wallets/${w.id}/grants`).send({ credits: '500000000000000000' });
    expect(expectProblem(free, 422, 'unprocessable').errors![0]!.message).toMatch(/unpaid purchases/);
    expect(await fingerprint(ctx.db)).toEqual(before);
    // What still fits with it is taken, and paying the first adds it whole.
    expect((await buy(w, { amount: '399999.99', subscription_id: subscription.id })).status).toBe(201);
    const pay = await t.api
      .post(`/api/v1/invoices/${(first.body as Schemas['Grant']).invoice_id}/payments`)
      .send({ amount: '600000.00', payment_method: 'pm_card_visa', rail: 'card' });
    expect(pay.status, pay.text).toBe(202);
    await settleAll();
    expect(await get(w)).toMatchObject({ available: '600000000000000000' });
  });

  it('stops counting a purchase against the cap once it is past its expiry unpaid (it can never be paid)', async () => {
    const { subscription, wallet: w } = await customer('1000000000000');
    const soon = new Date(Date.now() + 1500).toISOString();
    const lapsing = await buy(w, { amount: '600000.00', subscription_id: subscription.id, expires_at: soon });
    expect(lapsing.status, lapsing.text).toBe(201);
    await new Promise((r) => setTimeout(r, 1600));
    // Before the worker voids it, too.
    expect(
      (await t.api.post(`/api/v1/wallets/${w.id}/grants`).send({ credits: '500000000000000000' })).status,
    ).toBe(201);
  });
});

describe('credits captured in the usage margin report', () => {
  it('counts captured credits ÷ the rate as revenue: for the metric a capture names, else for the customer only', async () => {
    const code = `ai-${Math.random().toString(36).slice(2, 8)}`;
    expect(
      (
        await t.api
          .post('/api/v1/billable-metrics')
          .send({ code, name: 'AI', aggregation: 'count', group_by: 'model' })
      ).status,
    ).toBe(201);
    const ungrouped = `plain-${Math.random().toString(36).slice(2, 8)}`;
    expect(
      (
        await t.api
          .post('/api/v1/billable-metrics')
          .send({ code: ungrouped, name: 'Plain', aggregation: 'count' })
      ).status,
    ).toBe(201);
    const w = await wallet('3');
    await grant(w, { credits: '100' });
    const a = (await hold(w, '50')).body as Hold;
    const b = (await hold(w, '20')).body as Hold;
    const c = (await hold(w, '5')).body as Hold;
    expectProblem(
      await t.api.post(`/api/v1/holds/${a.id}/capture`).send({ credits: '1', metric: 'nope' }),
      422,
      'unprocessable',
    );
    expectProblem(
      await t.api.post(`/api/v1/holds/${a.id}/capture`).send({ credits: '1', dimension_value: 'x' }),
      422,
      'unprocessable',
    );
    // A dimension value only for a metric grouped by a property, as a plan's charge.
    const ungroupedCapture = await t.api
      .post(`/api/v1/holds/${a.id}/capture`)
      .send({ credits: '1', metric: ungrouped, dimension_value: 'x' });
    expect(expectProblem(ungroupedCapture, 422, 'unprocessable').errors![0]).toMatchObject({
      field: '/dimension_value',
    });
    const captured = await t.api
      .post(`/api/v1/holds/${a.id}/capture`)
      .send({ credits: '10', metric: code, dimension_value: 'gpt' });
    expect(captured.body).toMatchObject({ status: 'captured', captured: '10', dimension_value: 'gpt' });
    expect((await capture(b, '7')).status).toBe(200);
    expect((await release(c)).status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const report = async (group_by: string) => {
      const res = await t.api
        .get('/api/v1/reports/usage-margin')
        .query({ from: today, to: tomorrow, group_by });
      expect(res.status, res.text).toBe(200);
      return res.body as Schemas['UsageMarginReport'];
    };
    // 10 / 3 = 3.3333 for the metric; 7 / 3 = 2.3333 for the customer only.
    const byMetric = await report('metric');
    const row = byMetric.rows.find((r) => 'metric' in r && r.metric.code === code)!;
    expect(row).toMatchObject({ revenue: '3.3333', cost: '0.0000' });
    const byDimension = await report('dimension');
    expect(byDimension.rows.filter((r) => 'metric' in r && r.metric.code === code)).toEqual([
      expect.objectContaining({ dimension_value: 'gpt', revenue: '3.3333' }),
    ]);
    const byUser = await report('user');
    expect(byUser.rows.find((r) => 'user' in r && r.user.id === w.user_id)).toMatchObject({
      revenue: '5.6666',
    });
  });
});

describe('the ledger', () => {
  it('is append-only in the database', async () => {
    const w = await wallet();
    await grant(w, { credits: '1' });
    await expect(
      sql`update wallet_ledger set credits = 2 where wallet_id = ${w.id}`.execute(ctx.db),
    ).rejects.toThrow(/append-only/);
    await expect(sql`delete from wallet_ledger where wallet_id = ${w.id}`.execute(ctx.db)).rejects.toThrow(
      /append-only/,
    );
  });
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});

describe('a wallet on a test clock', () => {
  it("makes its grants and holds in the clock's time", async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'made at', frozen_time: '2031-03-01T10:00:00Z' })
    ).body as Schemas['TestClock'];
    const w = await walletOf((await createUser(t)).id, { name: 'clock', test_clock_id: clock.id });
    const g = await grant(w, { credits: '10', expires_at: '2031-04-01T00:00:00Z' });
    expect([g.created_at, g.available_at]).toEqual(['2031-03-01T10:00:00.000Z', '2031-03-01T10:00:00.000Z']);
    const h = (await hold(w, '4', 60)).body as Hold;
    expect([h.created_at, h.expires_at]).toEqual(['2031-03-01T10:00:00.000Z', '2031-03-01T10:01:00.000Z']);
    const entries = await ledger(w);
    expect(entries.map((e) => [e.type, e.created_at])).toEqual([
      ['grant', '2031-03-01T10:00:00.000Z'],
      ['hold', '2031-03-01T10:00:00.000Z'],
    ]);
  });
});

describe('a wallet on a test clock that is advancing', () => {
  it('refuses changes (409) until the clock is ready: they would be dated at its new time', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'advancing', frozen_time: '2035-01-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const w = await walletOf((await createUser(t)).id, { name: 'clock', test_clock_id: clock.id });
    await grant(w, { credits: '10', expires_at: '2035-01-05T00:00:00Z' });
    const h = (await hold(w, '8', 2 * 86_400)).body as Hold;
    // What an advance does before the worker's steps: the clock at its new time, advancing.
    await sql`update test_clocks set frozen_time = '2035-01-10T00:00:00Z', status = 'advancing'
      where id = ${clock.id}`.execute(ctx.db);
    const untouched = await fingerprint(ctx.db);
    const refused = expectProblem(
      await t.api.post(`/api/v1/wallets/${w.id}/grants`).send({ credits: '1' }),
      409,
      'conflict',
    );
    expect(refused.detail).toMatch(/test clock is advancing to 2035-01-10T00:00:00.000Z/);
    expectProblem(await hold(w, '1'), 409, 'conflict');
    expectProblem(await release(h), 409, 'conflict');
    // Its settings, and a wallet or a subscription joining the clock: paying usage from credits
    // (or an overdraft) reached the renewals on the way, and a subscription created at the new
    // time was billed by the steps on the way first, its invoice dated before its creation.
    for (const res of [
      await t.api.patch(`/api/v1/wallets/${w.id}`).send({ pays_usage: true }),
      await t.api
        .post('/api/v1/wallets')
        .send({ user_id: w.user_id, name: 'late', pays_usage: true, test_clock_id: clock.id }),
      await t.api.post('/api/v1/subscriptions').send({
        user_id: w.user_id,
        status: 'active',
        plan_cost: '1.00',
        start_date: '2035-01-01',
        test_clock_id: clock.id,
      }),
    ])
      expect(expectProblem(res, 409, 'conflict').detail).toMatch(/test clock is advancing/);
    expect(await fingerprint(ctx.db)).toEqual(untouched);
    // A purchase too, billed on a subscription on the clock.
    const basic = await t.api.post('/api/v1/plans').send({
      code: `advancing-${clock.id}`,
      name: 'Basic',
      interval: 'month',
      price: { model: 'flat', amount: '1.00' },
    });
    expect(basic.status, basic.text).toBe(201);
    await sql`update test_clocks set status = 'ready' where id = ${clock.id}`.execute(ctx.db);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: w.user_id,
      status: 'active',
      plan_id: (basic.body as Schemas['Plan']).id,
      start_date: '2035-01-10',
      test_clock_id: clock.id,
    });
    expect(sub.status, sub.text).toBe(201);
    await sql`update test_clocks set status = 'advancing' where id = ${clock.id}`.execute(ctx.db);
    const before = await fingerprint(ctx.db);
    const purchase = await t.api
      .post(`/api/v1/wallets/${w.id}/grants`)
      .send({ kind: 'paid', amount: '1.00', subscription_id: (sub.body as Schemas['Subscription']).id });
    expectProblem(purchase, 409, 'conflict');
    expect(await fingerprint(ctx.db)).toEqual(before);
    // The worker's steps, each at its time; then the clock is ready and changes are taken.
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    await sql`update test_clocks set status = 'ready' where id = ${clock.id}`.execute(ctx.db);
    expect((await t.api.post(`/api/v1/wallets/${w.id}/grants`).send({ credits: '1' })).status).toBe(201);
    const entries = await ledger(w);
    expect(
      entries.filter((e) => e.type === 'release' || e.type === 'expiry').map((e) => [e.type, e.created_at]),
    ).toEqual([
      ['release', '2035-01-03T00:00:00.000Z'],
      ['expiry', '2035-01-05T00:00:00.000Z'],
    ]);
  });
});

describe('usage of a subscription on a test clock', () => {
  it('is paid and blocked only by wallets on that clock: a simulation never spends real credits', async () => {
    const clock = (
      await t.api
        .post('/api/v1/test-clocks')
        .send({ name: 'simulation', frozen_time: '2030-01-10T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const other = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'another', frozen_time: '2029-06-01T00:00:00Z' })
    ).body as Schemas['TestClock'];
    const units = (
      await t.api
        .post('/api/v1/billable-metrics')
        .send({ code: `units-${clock.id}`, name: 'Units', aggregation: 'sum', field: 'n' })
    ).body as Schemas['BillableMetric'];
    const plan = (
      await t.api.post('/api/v1/plans').send({
        code: `usage-${clock.id}`,
        name: 'Usage',
        interval: 'month',
        price: { model: 'flat', amount: '0.00' },
        usage_charges: [{ metric: units.code, model: 'per_unit', amount: '1.00' }],
      })
    ).body as Schemas['Plan'];
    const user = await createUser(t);
    const sub = await t.api.post('/api/v1/subscriptions').send({
      user_id: user.id,
      plan_id: plan.id,
      status: 'active',
      start_date: '2030-01-01',
      test_clock_id: clock.id,
    });
    expect(sub.status, sub.text).toBe(201);
    // A real-time wallet with a live grant and a pending hold, and one on another clock: both
    // pay usage and block it when empty, but in their own timelines.
    const real = await walletOf(user.id, { name: 'real', pays_usage: true });
    await grant(real, { credits: '100', expires_at: new Date(Date.now() + 86_400_000).toISOString() });
    const held = (await hold(real, '20', 3600)).body as Hold;
    const elsewhere = await walletOf(user.id, {
      name: 'other clock',
      pays_usage: true,
      blocks_usage: true,
      test_clock_id: other.id,
    });
    const realBefore = { wallet: await get(real), ledger: await ledger(real) };
    const event = await t.api.post('/api/v1/usage-events').send({
      event_id: `sim-${clock.id}`,
      user_id: user.id,
      metric: units.code,
      timestamp: '2030-01-09T00:00:00Z',
      properties: { n: 30 },
    });
    expect(event.status, event.text).toBe(201);
    const advanced = await t.api
      .post(`/api/v1/test-clocks/${clock.id}/advance`)
      .send({ frozen_time: '2030-02-02T00:00:00Z' });
    expect(advanced.status, advanced.text).toBe(202);
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    const invoices = await t.api
      .get('/api/v1/invoices')
      .query({ subscription_id: (sub.body as Schemas['Subscription']).id });
    const february = (invoices.body as Schemas['InvoiceList']).data.find(
      (i) => i.period_start === '2030-02-01',
    )!;
    expect(
      february.lines.filter((l) => l.type === 'usage').map((l) => [l.amount, l.credits_applied]),
    ).toEqual([['30.00', null]]);
    expect({ wallet: await get(real), ledger: await ledger(real) }).toEqual(realBefore);
    expect((await t.api.get(`/api/v1/holds/${held.id}`)).body).toMatchObject({ status: 'pending' });
    expect((await ledger(elsewhere)).filter((e) => e.type !== 'grant')).toEqual([]);
    // A wallet on the subscription's clock pays it.
    const simulated = await walletOf(user.id, {
      name: 'simulated',
      pays_usage: true,
      test_clock_id: clock.id,
    });
    await grant(simulated, { credits: '100' });
    const more = await t.api.post('/api/v1/usage-events').send({
      event_id: `sim2-${clock.id}`,
      user_id: user.id,
      metric: units.code,
      timestamp: '2030-02-01T12:00:00Z',
      properties: { n: 5 },
    });
    expect(more.status, more.text).toBe(201);
    await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: '2030-03-02T00:00:00Z' });
    await performDueWork(
      { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
      { tenantId: t.id, clockId: clock.id },
    );
    expect((await get(simulated)).available).toBe('95');
    expect(await get(real)).toEqual(realBefore.wallet);
  });
});

describe('usage paid from credits at a renewal on a test clock', () => {
  it('is paid at the renewal time, however far the clock is advanced in one step', async () => {
    const outcomes: unknown[] = [];
    for (const steps of [['2032-06-20T00:00:00Z'], ['2032-05-02T00:00:00Z', '2032-06-20T00:00:00Z']]) {
      const clock = (
        await t.api
          .post('/api/v1/test-clocks')
          .send({ name: 'renewal time', frozen_time: '2032-04-20T00:00:00Z' })
      ).body as Schemas['TestClock'];
      const units = (
        await t.api
          .post('/api/v1/billable-metrics')
          .send({ code: `units-${clock.id}`, name: 'Units', aggregation: 'sum', field: 'n' })
      ).body as Schemas['BillableMetric'];
      const plan = await t.api.post('/api/v1/plans').send({
        code: `usage-${clock.id}`,
        name: 'Usage',
        interval: 'month',
        price: { model: 'flat', amount: '0.00' },
        usage_charges: [{ metric: units.code, model: 'per_unit', amount: '1.00' }],
      });
      expect(plan.status, plan.text).toBe(201);
      const user = await createUser(t);
      const sub = await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        plan_id: (plan.body as Schemas['Plan']).id,
        status: 'active',
        start_date: '2032-04-01',
        test_clock_id: clock.id,
      });
      expect(sub.status, sub.text).toBe(201);
      const w = await walletOf(user.id, { name: 'credits', pays_usage: true, test_clock_id: clock.id });
      await grant(w, { credits: '100', expires_at: '2032-05-15T00:00:00Z' });
      await grant(w, { credits: '100' });
      const event = await t.api.post('/api/v1/usage-events').send({
        event_id: `u-${clock.id}`,
        user_id: user.id,
        metric: units.code,
        timestamp: '2032-04-15T00:00:00Z',
        properties: { n: 30 },
      });
      expect(event.status, event.text).toBe(201);
      for (const to of steps) {
        const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
        expect(res.status, res.text).toBe(202);
        await performDueWork(
          { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
          { tenantId: t.id, clockId: clock.id },
        );
      }
      const entries = await ledger(w);
      expectLedgerAddsUp(entries, await get(w));
      outcomes.push({
        available: (await get(w)).available,
        entries: entries.filter((e) => e.type !== 'grant').map((e) => [e.type, e.credits, e.created_at]),
      });
    }
    // The 30 credits from the grant expiring first, at the renewal; its rest expires on its day.
    const expected = {
      available: '100',
      entries: [
        ['usage', '30', '2032-05-01T00:00:00.000Z'],
        ['expiry', '70', '2032-05-15T00:00:00.000Z'],
      ],
    };
    expect(outcomes).toEqual([expected, expected]);
  });
});
