// A year of prepaid credits on a test clock: one customer buys credits monthly by card and spends
// them through holds and captures, a promotional grant expires unused, a hold expires when the
// clock passes it, and another customer runs dry. Every ledger entry, purchase invoice and wallet
// event is checked, in the clock's time.
import { beforeAll, describe, expect, it } from 'vitest';
import { simulatedGateway } from '../../src/billing/gateway.js';
import type { Schemas } from '../../src/contract.js';
import { performDueWork } from '../../src/services/due-work.js';
import { type TestTenant, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();
let t: TestTenant;

type Wallet = Schemas['Wallet'];
type Entry = Schemas['LedgerEntry'];

beforeAll(async () => {
  t = await ctx.newTenant();
});

const month = (m: number, day: number) =>
  new Date(Date.UTC(2026, m, day)).toISOString().replace('.000Z', 'Z');

/** Millionths, for exact sums. */
const m6 = (credits: string) => {
  const [whole, fraction = ''] = credits.split('.');
  return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
};

describe('a year of prepaid credits on a test clock', () => {
  it('buys monthly by card, spends through holds, expires a grant and a hold, and runs a customer dry', async () => {
    const clock = (
      await t.api.post('/api/v1/test-clocks').send({ name: 'credits year', frozen_time: month(0, 1) })
    ).body as Schemas['TestClock'];
    const work = () =>
      performDueWork(
        { db: ctx.appDb, ownerDb: ctx.db, gateway: simulatedGateway, settlementDelayScale: 0 },
        { tenantId: t.id, clockId: clock.id },
      );
    const advance = async (to: string) => {
      const res = await t.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time: to });
      expect(res.status, res.text).toBe(202);
      await work();
    };
    const plan = await t.api.post('/api/v1/plans').send({
      code: 'credits-year',
      name: 'Base',
      interval: 'month',
      price: { model: 'flat', amount: '5.00' },
    });
    expect(plan.status, plan.text).toBe(201);

    async function customer(threshold: string | null) {
      const user = await createUser(t);
      const sub = await t.api.post('/api/v1/subscriptions').send({
        user_id: user.id,
        status: 'active',
        plan_id: (plan.body as Schemas['Plan']).id,
        start_date: '2026-01-01',
        test_clock_id: clock.id,
        payment_method: 'pm_card_visa',
        payment_rail: 'card',
      });
      expect(sub.status, sub.text).toBe(201);
      const wallet = await t.api.post('/api/v1/wallets').send({
        user_id: user.id,
        name: 'AI credits',
        rate: '100',
        low_balance_threshold: threshold,
        test_clock_id: clock.id,
      });
      expect(wallet.status, wallet.text).toBe(201);
      return { sub: sub.body as Schemas['Subscription'], wallet: wallet.body as Wallet };
    }
    const a = await customer(null);
    const b = await customer('500');
    expect(a.wallet.test_clock_id).toBe(clock.id);

    const buy = async (c: { sub: Schemas['Subscription']; wallet: Wallet }, amount: string) => {
      const res = await t.api
        .post(`/api/v1/wallets/${c.wallet.id}/grants`)
        .send({ kind: 'paid', amount, subscription_id: c.sub.id, priority: 10 });
      expect(res.status, res.text).toBe(201);
      await work(); // the card payment is submitted and settles at the clock's now
      return res.body as Schemas['Grant'];
    };
    const holdAndCapture = async (w: Wallet, hold: string, capture: string) => {
      const h = await t.api.post(`/api/v1/wallets/${w.id}/holds`).send({ credits: hold, expires_in: 600 });
      if (h.status !== 201) return h;
      const c = await t.api
        .post(`/api/v1/holds/${(h.body as Schemas['Hold']).id}/capture`)
        .send({ credits: capture });
      expect(c.status, c.text).toBe(200);
      return c;
    };

    // A promotional grant that expires at the start of February, consumed last (priority 0).
    const promo = await t.api
      .post(`/api/v1/wallets/${a.wallet.id}/grants`)
      .send({ credits: '300', expires_at: month(1, 1) });
    expect(promo.status, promo.text).toBe(201);
    const purchases: Schemas['Grant'][] = [];
    let pendingHold: Schemas['Hold'] | undefined;
    await buy(b, '10.00'); // B buys once: 1,000 credits
    for (let m = 0; m < 12; m++) {
      if (m > 0) await advance(month(m, 1));
      purchases.push(await buy(a, '20.00')); // 2,000 credits a month
      await advance(month(m, 10));
      // Three operations a month: two cheaper than their estimate, one dearer.
      for (const [hold, capture] of [
        ['300', '250'],
        ['300', '180'],
        ['300', '310'],
      ] as const)
        expect((await holdAndCapture(a.wallet, hold, capture)).status).toBe(200);
      if (m === 11) {
        const h = await t.api
          .post(`/api/v1/wallets/${a.wallet.id}/holds`)
          .send({ credits: '100', expires_in: 3600 });
        expect(h.status, h.text).toBe(201);
        pendingHold = h.body as Schemas['Hold'];
      }
      // B spends 400 a month while it can.
      if (m < 3) {
        const spent = await holdAndCapture(b.wallet, '400', '400');
        if (m < 2) expect(spent.status).toBe(200);
        else {
          expectProblem(spent, 409, 'insufficient-credits');
          expect((await holdAndCapture(b.wallet, '200', '200')).status).toBe(200);
        }
      }
    }
    await advance(month(11, 20)); // past the pending hold's expiry

    // A: 12 purchases of 2,000, the promo's 300 expired, 12 × 740 spent.
    const wallet = (await t.api.get(`/api/v1/wallets/${a.wallet.id}`)).body as Wallet;
    expect(wallet).toMatchObject({ available: '15120', held: '0', total: '15120' });
    for (const g of purchases) {
      const invoice = (await t.api.get(`/api/v1/invoices/${g.invoice_id}`)).body as Schemas['Invoice'];
      expect(invoice).toMatchObject({
        kind: 'purchase',
        status: 'paid',
        total: '20.00',
        subscription_id: a.sub.id,
      });
      expect(invoice.paid_at!.slice(0, 10)).toBe(invoice.period_start);
    }
    expect(new Set(purchases.map((g) => g.invoice_id)).size).toBe(12);

    const entries: Entry[] = [];
    let cursor: string | null = null;
    do {
      const page = (
        await t.api
          .get(`/api/v1/wallets/${a.wallet.id}/transactions`)
          .query({ limit: 100, ...(cursor ? { cursor } : {}) })
      ).body as Schemas['LedgerPage'];
      entries.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    entries.reverse();
    // Per month: hold, release, capture; hold, release, capture; hold, capture (the dearer one).
    const monthly = ['hold', 'release', 'capture', 'hold', 'release', 'capture', 'hold', 'capture'];
    const expected = [
      'grant', // the promo
      ...Array.from({ length: 12 }, (_, m) => [
        ...(m === 1 ? ['expiry'] : []), // the promo, swept as the clock reached February 1
        'grant', // the month's purchase, when paid
        ...monthly,
        ...(m === 11 ? ['hold'] : []),
      ]).flat(),
      'release', // the December hold, expired as the clock passed it
    ];
    expect(entries.map((e) => e.type)).toEqual(expected);
    let available = 0n;
    let held = 0n;
    for (const e of entries) {
      const c = m6(e.credits);
      if (e.type === 'grant') available += c;
      if (e.type === 'hold') [available, held] = [available - c, held + c];
      if (e.type === 'release') [available, held] = [available + c, held - c];
      if (e.type === 'expiry') available -= c;
      if (e.type === 'capture') {
        const fromHeld = held - m6(e.held_after);
        held -= fromHeld;
        available -= c - fromHeld;
      }
      expect([available, held], `${e.type} ${e.credits} at ${e.created_at}`).toEqual([
        m6(e.available_after),
        m6(e.held_after),
      ]);
      expect(e.created_at.startsWith('2026-'), e.created_at).toBe(true); // the clock's time
    }
    const expiry = entries.find((e) => e.type === 'expiry')!;
    expect(expiry).toMatchObject({
      credits: '300',
      grant_id: (promo.body as Schemas['Grant']).id,
      actor: { type: 'system' },
    });
    expect(expiry.created_at).toBe('2026-02-01T00:00:00.000Z');
    expect(entries.at(-1)).toMatchObject({ hold_id: pendingHold!.id, actor: { type: 'system' } });
    expect((await t.api.get(`/api/v1/holds/${pendingHold!.id}`)).body).toMatchObject({ status: 'expired' });
    expect(entries.filter((e) => e.type === 'grant' && e.invoice_id).map((e) => e.invoice_id)).toEqual(
      purchases.map((g) => g.invoice_id),
    );

    // The wallet events, in the clock's time: A's promo expired; B went low in February, dry in March.
    const events = async (resourceId: string) =>
      (
        (await t.api.get('/api/v1/events').query({ resource_id: resourceId, limit: 100 }))
          .body as Schemas['EventList']
      ).data
        .filter((e) => e.type.startsWith('wallet.'))
        .map((e) => [e.type, e.occurred_at.slice(0, 10)]);
    expect(await events((promo.body as Schemas['Grant']).id)).toEqual([
      ['wallet.grant_expired', '2026-02-01'],
    ]);
    expect(await events(a.wallet.id)).toEqual([['wallet.created', '2026-01-01']]);
    expect(await events(b.wallet.id)).toEqual([
      ['wallet.created', '2026-01-01'],
      ['wallet.balance_low', '2026-02-10'],
      ['wallet.depleted', '2026-03-10'],
    ]);
    expect((await t.api.get(`/api/v1/wallets/${b.wallet.id}`)).body).toMatchObject({ available: '0' });
  }, 240_000);
});

it('logged no unexpected error in this file', () => {
  expect(ctx.unexpectedErrors).toEqual([]);
});
