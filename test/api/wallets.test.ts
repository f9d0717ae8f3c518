// Prepaid credits through the API: wallets, grants, holds captured or released, expiries, and the
// ledger; and 50 concurrent clients that never take a wallet below zero, with a ledger that adds up.
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { startWalletExpiry } from '../../src/jobs/wallet-expiry.js';
import { silentLogger } from '../../src/logger.js';
import { sweepWallet } from '../../src/services/wallets.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
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

async function wallet(rate?: string): Promise<Wallet> {
  const user = await createUser(t);
  const res = await t.api.post('/api/v1/wallets').send({ user_id: user.id, name: 'AI credits', rate });
  expect(res.status, res.text).toBe(201);
  return res.body as Wallet;
}

async function grant(w: Wallet, body: Record<string, unknown>) {
  const res = await t.api.post(`/api/v1/wallets/${w.id}/grants`).send(body);
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['Grant'];
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

/** Millionths, for exact sums. */
const m = (credits: string) => {
  const [whole, fraction = ''] = credits.split('.');
  return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
};

/** Each entry's balances follow from the one before by what it moved; the last equal the wallet's. */
function expectLedgerAddsUp(entries: Entry[], now: Wallet) {
  let available = 0n;
  let held = 0n;
  const moves: Record<Entry['type'], (c: bigint, e: Entry) => void> = {
    grant: (c) => (available += c),
    hold: (c) => ((available -= c), (held += c)),
    release: (c) => ((available += c), (held -= c)),
    expiry: (c) => (available -= c),
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
    expect(available >= 0n && held >= 0n).toBe(true);
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
    const h = (await hold(w, '60')).body as Hold;
    expect(h).toMatchObject({ status: 'pending', credits: '60', captured: null });
    expect(await get(w)).toMatchObject({ available: '40', held: '60', total: '100' });
    const captured = await capture(h, '45.5');
    expect(captured.status, captured.text).toBe(200);
    expect(captured.body).toMatchObject({ status: 'captured', captured: '45.5' });
    expect(await get(w)).toMatchObject({ available: '54.5', held: '0', total: '54.5' });
    expectProblem(await capture(h, '1'), 409, 'conflict');

    // Over the hold: the excess comes from available, or nothing happens.
    const small = (await hold(w, '10')).body as Hold;
    const before = await get(w);
    expectProblem(await capture(small, '60'), 409, 'insufficient-credits');
    expect(await get(w)).toEqual(before);
    expect((await capture(small, '30')).body).toMatchObject({ captured: '30' });
    expect(await get(w)).toMatchObject({ available: '24.5', held: '0' });

    const r = (await hold(w, '20')).body as Hold;
    expect((await release(r)).body).toMatchObject({ status: 'released' });
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
    const entries = await ledger(w);
    expect(entries.slice(-2).map((e) => [e.type, e.credits, e.actor.type, e.grant_id ?? e.hold_id])).toEqual([
      ['release', '20', 'system', h.id],
      ['expiry', '50', 'system', g.id],
    ]);
    expectLedgerAddsUp(entries, await get(w));
    expectProblem(await capture(h, '1'), 409, 'conflict');
  });
});

describe('the worker', () => {
  it('sweeps expired grants into the ledger by itself', async () => {
    const w = await wallet();
    const g = await grant(w, { credits: '7', expires_at: new Date(Date.now() + 300).toISOString() });
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
