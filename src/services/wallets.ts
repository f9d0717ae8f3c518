// Prepaid credits (docs/wallets.md). Every change to a wallet's credits locks the wallet's row
// first, then sweeps what has expired by now (grants past their expiry, holds past theirs), then
// checks and changes the grants, the holds and the ledger together: one transaction per decision,
// one at a time per wallet. So the available balance is checked where it is spent, and never goes
// below zero whatever runs concurrently; the ledger records the balances after each entry.
// Credits are exact: BigInt millionths in here, numeric(24, 6) in the database.
import type { Charge } from '../billing/invoices.js';
import { formatCents, type Micros, parseAmount, roundToCents } from '../billing/money.js';
import { formatQuantity, parseTotal } from '../billing/usage-pricing.js';
import { isForeignKeyViolation } from '../database/errors.js';
import { findTestClock } from '../queries/test-clocks.js';
import * as wallets from '../queries/wallets.js';
import type { GrantRow, HoldRow, LedgerRow, WalletRow } from '../database/schema.js';
import { toGrantResponse, toWalletResponse } from '../responses/wallets.js';
import {
  type Actor,
  inTenant,
  ClockAdvancingError,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type Tx,
  type VersionCondition,
  readyClock,
} from './context.js';

/** The most credits a wallet may hold: what numeric(24, 6), and the API's Credits, carry. */
export const MAX_CREDITS = 10n ** 18n * 1_000_000n - 1n;

/** Credits as millionths; an available balance is below zero when the wallet is overdrawn. */
const credits = (text: string) => (text.startsWith('-') ? -parseTotal(text.slice(1)) : parseTotal(text));
const text = (millionths: bigint) =>
  millionths < 0n ? `-${formatQuantity(-millionths)}` : formatQuantity(millionths);
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const keyOf = (actor: Actor) => (actor.keyId === 'system' ? null : actor.keyId);
/** The system as the actor of ledger entries: expiries, and what invoices and payments do. */
const SYSTEM: Actor = { tenantId: '', keyId: 'system' };

export interface WalletView {
  wallet: WalletRow;
  available: string;
  held: string;
  total: string;
}

/** Now for a wallet: its test clock's time (which the transaction's events then carry), or now. */
async function walletNow(tx: Tx, wallet: Pick<WalletRow, 'test_clock_id'>): Promise<Date> {
  if (!wallet.test_clock_id) return new Date();
  const clock = (await findTestClock(tx.db, wallet.test_clock_id))!;
  tx.occurAt(clock.frozen_time);
  return clock.frozen_time;
}

async function view(tx: Tx, wallet: WalletRow, at: Date): Promise<WalletView> {
  const balance = (await wallets.balances(tx.db, [wallet.id], at)).get(wallet.id)!;
  return {
    wallet,
    ...balance,
    total: text(credits(balance.available) + credits(balance.held)),
  };
}

export type CreateWalletOutcome =
  | { kind: 'created'; wallet: WalletView }
  | { kind: 'no-user' }
  | { kind: 'no-clock' }
  /** An overdraft gives credit, and a rate prices credits: decisions an admin makes. */
  | { kind: 'needs-admin'; what: 'overdraft' | 'rate' }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> };

/**
 * An overdraft lets the customer spend credits never granted (usage paid from the wallet is then
 * not billed): as a grant gives value away, only an admin key (or the system) sets one or raises it.
 */
const mayGiveCredit = (actor: Actor) => actor.role === undefined || actor.role === 'admin';

const BLOCKS_WITHOUT_PAYING = [
  { field: '/blocks_usage', message: 'needs pays_usage: a wallet blocks the usage it pays' },
];

const threshold = (value: string | null | undefined) => (value == null ? null : text(credits(value)));

/** The settings that must be above 0 (PositiveCredits: the schema's pattern allows 0). */
function zeroSettings(input: {
  rate?: string | undefined;
  low_balance_threshold?: string | null | undefined;
}) {
  const errors: Array<{ field: string; message: string }> = [];
  if (input.rate !== undefined && credits(input.rate) === 0n)
    errors.push({ field: '/rate', message: 'must be more than 0 (credits per currency unit)' });
  if (input.low_balance_threshold != null && credits(input.low_balance_threshold) === 0n)
    errors.push({
      field: '/low_balance_threshold',
      message:
        'must be more than 0 (null for no threshold): the available balance never goes below 0 but in an overdraft',
    });
  return errors;
}

export async function createWallet(
  ctx: ServiceContext,
  actor: Actor,
  input: {
    user_id: string;
    name: string;
    rate?: string | undefined;
    low_balance_threshold?: string | null | undefined;
    overdraft_limit?: string | undefined;
    pays_usage?: boolean | undefined;
    blocks_usage?: boolean | undefined;
    test_clock_id?: string | null | undefined;
  },
): Promise<CreateWalletOutcome> {
  const errors = [
    ...zeroSettings(input),
    ...(input.blocks_usage && !input.pays_usage ? BLOCKS_WITHOUT_PAYING : []),
  ];
  if (errors.length > 0) return { kind: 'invalid', errors };
  if (input.overdraft_limit !== undefined && credits(input.overdraft_limit) > 0n && !mayGiveCredit(actor))
    return { kind: 'needs-admin', what: 'overdraft' };
  if (input.rate !== undefined && credits(input.rate) !== credits('1') && !mayGiveCredit(actor))
    return { kind: 'needs-admin', what: 'rate' };
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateWalletOutcome> => {
      if (input.test_clock_id) await readyClock(tx, input.test_clock_id);
      const wallet = await wallets.insertWallet(tx.db, {
        user_id: input.user_id,
        name: input.name,
        rate: text(credits(input.rate ?? '1')),
        low_balance_threshold: threshold(input.low_balance_threshold),
        overdraft_limit: text(credits(input.overdraft_limit ?? '0')),
        pays_usage: input.pays_usage ?? false,
        blocks_usage: input.blocks_usage ?? false,
        test_clock_id: input.test_clock_id ?? null,
      });
      if (credits(wallet.overdraft_limit) > 0n) await insertOverdraft(tx, wallet.id, wallet.overdraft_limit);
      await walletNow(tx, wallet); // its events occur in its time
      const created = { wallet, available: '0', held: '0', total: '0' };
      tx.emit({
        type: 'wallet.created',
        resource_type: 'wallet',
        resource_id: wallet.id,
        data: toWalletResponse(created),
      });
      return { kind: 'created', wallet: created };
    });
  } catch (error) {
    if (isForeignKeyViolation(error, 'wallets_test_clock_fkey')) return { kind: 'no-clock' };
    if (isForeignKeyViolation(error)) return { kind: 'no-user' };
    throw error;
  }
}

/** A wallet's overdraft: a grant of its limit, consumed last (see the migration 202612050002). */
function insertOverdraft(tx: Tx, walletId: string, limit: string): Promise<GrantRow> {
  return wallets.insertGrant(tx.db, {
    wallet_id: walletId,
    kind: 'overdraft',
    credits: limit,
    priority: 0,
    expires_at: null,
  });
}

export type UpdateWalletOutcome =
  | { kind: 'updated'; wallet: WalletView }
  | { kind: 'missing' }
  | { kind: 'stale'; current: WalletRow }
  | { kind: 'needs-admin' }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> }
  | { kind: 'overdraft-in-use'; used: string };

/** Its name and settings; a PATCH that changes nothing writes nothing. */
export function updateWallet(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: {
    name?: string | undefined;
    low_balance_threshold?: string | null | undefined;
    overdraft_limit?: string | undefined;
    pays_usage?: boolean | undefined;
    blocks_usage?: boolean | undefined;
  },
  ifMatch?: VersionCondition,
): Promise<UpdateWalletOutcome> {
  const errors = zeroSettings(patch);
  return inTenant(ctx, actor, async (tx): Promise<UpdateWalletOutcome> => {
    const before = await wallets.lockWallet(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    if (errors.length > 0) return { kind: 'invalid', errors };
    // Its settings (pays_usage, the overdraft) would reach renewals the advance has yet to make.
    if (before.test_clock_id) await readyClock(tx, before.test_clock_id);
    const settings = {
      name: patch.name ?? before.name,
      low_balance_threshold:
        patch.low_balance_threshold === undefined
          ? before.low_balance_threshold
          : threshold(patch.low_balance_threshold),
      overdraft_limit:
        patch.overdraft_limit === undefined ? before.overdraft_limit : text(credits(patch.overdraft_limit)),
      pays_usage: patch.pays_usage ?? before.pays_usage,
      blocks_usage: patch.blocks_usage ?? before.blocks_usage,
    };
    if (settings.blocks_usage && !settings.pays_usage)
      return { kind: 'invalid', errors: BLOCKS_WITHOUT_PAYING };
    if (credits(settings.overdraft_limit) > credits(before.overdraft_limit) && !mayGiveCredit(actor))
      return { kind: 'needs-admin' };
    const unchanged =
      settings.name === before.name &&
      settings.low_balance_threshold === before.low_balance_threshold &&
      settings.overdraft_limit === before.overdraft_limit &&
      settings.pays_usage === before.pays_usage &&
      settings.blocks_usage === before.blocks_usage;
    const now = await walletNow(tx, before);
    if (unchanged) return { kind: 'updated', wallet: await view(tx, before, now) };
    if (settings.overdraft_limit !== before.overdraft_limit) {
      const overdraft = (await wallets.liveGrants(tx.db, id)).find((g) => g.kind === 'overdraft');
      if (!overdraft) await insertOverdraft(tx, id, settings.overdraft_limit);
      else {
        // What is overdrawn or held of it stays: the new limit must leave room for it.
        const used = credits(overdraft.credits) - credits(overdraft.remaining) + credits(overdraft.reserved);
        if (credits(settings.overdraft_limit) < used) return { kind: 'overdraft-in-use', used: text(used) };
        await wallets.resizeOverdraft(tx.db, overdraft.id, settings.overdraft_limit);
      }
    }
    const after = await view(tx, await wallets.updateWallet(tx.db, id, settings), now);
    const data = toWalletResponse(after);
    tx.emit({
      type: 'wallet.updated',
      resource_type: 'wallet',
      resource_id: id,
      data,
      previous: previousValues(toWalletResponse({ ...after, wallet: before }), data),
    });
    return { kind: 'updated', wallet: after };
  });
}

export function getWallet(ctx: ServiceContext, actor: Actor, id: string): Promise<WalletView | undefined> {
  return inTenant(ctx, { ...actor, snapshot: true }, async (tx) => {
    const wallet = await wallets.findWallet(tx.db, id);
    return wallet && view(tx, wallet, await walletNow(tx, wallet));
  });
}

export function listWallets(
  ctx: ServiceContext,
  actor: Actor,
  filter: { limit: number; after?: string | undefined; userId?: string | undefined },
): Promise<Page<WalletView>> {
  return inTenant(ctx, { ...actor, snapshot: true }, async (tx) => {
    const page = toPage(await wallets.listWallets(tx.db, filter), filter.limit);
    // Each wallet's balances in its time: real-time ones at once, those on test clocks one by one.
    const real = page.rows.filter((w) => !w.test_clock_id);
    const all = await wallets.balances(
      tx.db,
      real.map((w) => w.id),
      new Date(),
    );
    const rows: WalletView[] = [];
    for (const wallet of page.rows) {
      const b = all.get(wallet.id);
      rows.push(
        b
          ? { wallet, ...b, total: text(credits(b.available) + credits(b.held)) }
          : await view(tx, wallet, (await findTestClock(tx.db, wallet.test_clock_id!))!.frozen_time),
      );
    }
    return { more: page.more, rows };
  });
}

/**
 * A wallet's credits while its lock is held: its live grants in consumption order, changed in
 * memory and written back once, and the ledger entries of the changes, each with the balances
 * after it.
 */
export class LockedWallet {
  private readonly changed = new Set<GrantRow>();
  private readonly entries: Array<Omit<LedgerRow, 'id' | 'created_at'>> = [];
  private readonly expiredGrants = new Set<GrantRow>();
  /** The available balance at the last checkpoint (at first, when the lock was taken). */
  private availableMark: bigint;
  /** Holds the sweep released as expired, as written. */
  readonly swept = new Map<string, HoldRow>();

  private constructor(
    private readonly tx: Tx,
    readonly wallet: WalletRow,
    private readonly grants: GrantRow[],
    private readonly apiKeyId: string | null,
    readonly now: Date,
  ) {
    this.availableMark = this.available;
  }

  /** The time grants and holds are made at: the clock's, for a wallet on a test clock; else none (now). */
  get madeAt(): Date | undefined {
    return this.wallet.test_clock_id ? this.now : undefined;
  }

  /**
   * The wallet locked, its due expiries swept as of `now`: the caller's time (a subscription's,
   * a worker step's), else the wallet's (its test clock's, or now). The lock, the grants and the
   * lapsed holds are asked for in one round trip (pipelined: each runs after the one before, so
   * the reads see what the lock's holder before committed). Every round trip under the lock makes
   * the next request on a busy wallet wait longer.
   */
  /**
   * Whether `more` credits would take the wallet over the cap, counting its purchases not paid
   * yet: each must still fit when its invoice is paid (its payment cannot be refused then).
   */
  async overCap(more: bigint): Promise<boolean> {
    const pending = credits(await wallets.pendingCredits(this.tx.db, this.wallet.id, this.now));
    return this.available + this.held + pending + more > MAX_CREDITS;
  }

  static async open(tx: Tx, walletId: string, actor: Actor, now?: Date): Promise<LockedWallet | undefined> {
    const at = now ?? new Date();
    const [wallet, grants, lapsed] = await Promise.all([
      wallets.lockWallet(tx.db, walletId),
      wallets.liveGrants(tx.db, walletId),
      wallets.lapsedHolds(tx.db, walletId, at),
    ]);
    if (!wallet) return undefined;
    if (now || !wallet.test_clock_id) return LockedWallet.swept(tx, wallet, grants, lapsed, actor, at);
    // On a test clock: what lapsed by the clock's time instead. Not while it advances: its time
    // is already the new one, and this sweep would date at it what the worker's steps date on
    // the way (a hold's release, a grant's expiry, the balance events between).
    const clock = (await findTestClock(tx.db, wallet.test_clock_id))!;
    if (clock.status === 'advancing') throw new ClockAdvancingError(clock.id, clock.frozen_time);
    const clockNow = await walletNow(tx, wallet);
    const lapsedThen = await wallets.lapsedHolds(tx.db, walletId, clockNow);
    return LockedWallet.swept(tx, wallet, grants, lapsedThen, actor, clockNow);
  }

  /** A wallet the caller has just locked. */
  static async opened(tx: Tx, wallet: WalletRow, actor: Actor, now: Date): Promise<LockedWallet> {
    const [grants, lapsed] = await Promise.all([
      wallets.liveGrants(tx.db, wallet.id),
      wallets.lapsedHolds(tx.db, wallet.id, now),
    ]);
    return LockedWallet.swept(tx, wallet, grants, lapsed, actor, now);
  }

  private static async swept(
    tx: Tx,
    wallet: WalletRow,
    grants: GrantRow[],
    lapsed: HoldRow[],
    actor: Actor,
    now: Date,
  ): Promise<LockedWallet> {
    const locked = new LockedWallet(tx, wallet, grants, keyOf(actor), now);
    await locked.sweep(lapsed);
    return locked;
  }

  private live = (g: GrantRow) => g.expires_at === null || g.expires_at > this.now;
  /** The wallet's overdraft, a grant that is always last (liveGrants), or undefined without one. */
  private get overdraft(): GrantRow | undefined {
    const last = this.grants.at(-1);
    return last?.kind === 'overdraft' ? last : undefined;
  }
  get hasOverdraft(): boolean {
    return this.overdraft !== undefined && credits(this.overdraft.credits) > 0n;
  }
  /**
   * The available credits as the ledger shows them: a grant's free credits count until an expiry
   * entry removes them (sweep and save write one as soon as a grant past its expiry has any);
   * below zero by what is overdrawn or held of the overdraft.
   */
  get available(): bigint {
    const limit = this.overdraft ? credits(this.overdraft.credits) : 0n;
    return this.grants.reduce((sum, g) => sum + credits(g.remaining) - credits(g.reserved), 0n) - limit;
  }
  /**
   * What may be reserved or consumed now: the free credits of grants not past their expiry, and
   * what is left of the overdraft.
   */
  get spendable(): bigint {
    return this.grants
      .filter(this.live)
      .reduce((sum, g) => sum + credits(g.remaining) - credits(g.reserved), 0n);
  }
  get held(): bigint {
    return this.grants.reduce((sum, g) => sum + credits(g.reserved), 0n);
  }
  grant(id: string): GrantRow | undefined {
    return this.grants.find((g) => g.id === id);
  }

  private set(g: GrantRow, remaining: bigint, reserved: bigint) {
    g.remaining = text(remaining);
    g.reserved = text(reserved);
    this.changed.add(g);
  }

  record(
    type: LedgerRow['type'],
    amount: bigint,
    ids: { grant_id?: string; hold_id?: string; invoice_id?: string } = {},
    by: 'system' | 'caller' = 'caller',
  ) {
    this.entries.push({
      wallet_id: this.wallet.id,
      type,
      credits: text(amount),
      available_after: text(this.available),
      held_after: text(this.held),
      grant_id: ids.grant_id ?? null,
      hold_id: ids.hold_id ?? null,
      invoice_id: ids.invoice_id ?? null,
      api_key_id: by === 'system' ? null : this.apiKeyId,
    });
  }

  /** Holds past their expiry are released; what is left of grants past theirs is removed. */
  private async sweep(lapsed: HoldRow[]): Promise<void> {
    for (const hold of lapsed) {
      await this.settleParts(hold, credits(hold.credits), 0n);
      // Settled when it expired, as reads before this sweep already answered it.
      const expired = await wallets.settleHold(this.tx.db, hold.id, {
        status: 'expired',
        captured: null,
        at: hold.expires_at,
      });
      this.swept.set(hold.id, expired);
      // Expiries are the system's, whichever request's sweep came first.
      this.record('release', credits(hold.credits), { hold_id: hold.id }, 'system');
    }
    this.expireLapsedGrants();
  }

  /**
   * What is free on grants past their expiry is removed (an `expiry` entry each); what pending
   * holds reserve of them stays, and is removed when they give it back.
   */
  private expireLapsedGrants(): void {
    for (const g of this.grants) {
      const free = credits(g.remaining) - credits(g.reserved);
      if (this.live(g) || free === 0n) continue;
      this.set(g, credits(g.reserved), credits(g.reserved));
      this.record('expiry', free, { grant_id: g.id }, 'system');
      // Expired when its rest is first removed: one wallet.grant_expired per grant. What pending
      // holds reserve of it is removed later, when they give it back (entries, no event again).
      if (g.expired_at === null) {
        g.expired_at = this.now;
        this.expiredGrants.add(g);
      }
    }
  }

  /** Reserves `amount` from live grants in consumption order: the parts, or undefined if short. */
  reserve(amount: bigint): Array<{ grant_id: string; credits: string }> | undefined {
    if (this.spendable < amount) return undefined;
    const parts: Array<{ grant_id: string; credits: string }> = [];
    let left = amount;
    for (const g of this.grants.filter(this.live)) {
      if (left === 0n) break;
      const take = min(credits(g.remaining) - credits(g.reserved), left);
      if (take === 0n) continue;
      this.set(g, credits(g.remaining), credits(g.reserved) + take);
      parts.push({ grant_id: g.id, credits: text(take) });
      left -= take;
    }
    return parts;
  }

  /** Parts of holds read ahead (settle reads them with the lock), by hold id. */
  private readonly knownParts = new Map<string, Array<{ grant_id: string; credits: string }>>();

  /** A hold's parts as read under the lock, so that settling it needs no other round trip. */
  knowParts(holdId: string, parts: Array<{ grant_id: string; credits: string }>): void {
    this.knownParts.set(holdId, parts);
  }

  /** A hold's parts, in the grants' consumption order, with what each still reserves. */
  private async partsOf(hold: HoldRow): Promise<Array<{ grant: GrantRow; reserved: bigint }>> {
    const order = (id: string) => this.grants.findIndex((g) => g.id === id);
    // Read once: settling changes the grants in memory, never the parts.
    const parts = this.knownParts.get(hold.id) ?? (await wallets.holdParts(this.tx.db, hold.id));
    this.knownParts.set(hold.id, parts);
    return parts
      .sort((a, b) => order(a.grant_id) - order(b.grant_id))
      .map((p) => ({ grant: this.grant(p.grant_id)!, reserved: credits(p.credits) }));
  }

  /**
   * Settles a hold: `release` of its credits go back to available (taken from its last parts),
   * then `consume` are consumed from its first parts. Ledger entries are the caller's.
   */
  async settleParts(hold: HoldRow, release: bigint, consume: bigint): Promise<void> {
    const parts = await this.partsOf(hold);
    let left = release;
    for (const part of [...parts].reverse()) {
      const back = min(part.reserved, left);
      if (back === 0n) continue;
      this.set(part.grant, credits(part.grant.remaining), credits(part.grant.reserved) - back);
      part.reserved -= back;
      left -= back;
    }
    left = consume;
    for (const part of parts) {
      const take = min(part.reserved, left);
      if (take === 0n) continue;
      this.set(part.grant, credits(part.grant.remaining) - take, credits(part.grant.reserved) - take);
      part.reserved -= take;
      left -= take;
    }
  }

  /** Takes `amount` from the available credits of live grants, in consumption order. */
  consumeAvailable(amount: bigint): void {
    let left = amount;
    for (const g of this.grants.filter(this.live)) {
      if (left === 0n) break;
      const free = credits(g.remaining) - credits(g.reserved);
      const take = min(free, left);
      if (take === 0n) continue;
      this.set(g, credits(g.remaining) - take, credits(g.reserved));
      left -= take;
    }
    if (left > 0n) throw new Error('consumeAvailable: not enough available credits (checked before)');
  }

  /**
   * Pays up to `cents` (money, in ten-thousandths, whole cents) from the available credits at the
   * wallet's rate, as far as they go: what it paid, and the credits it consumed (the money times
   * the rate, rounded up to 6 decimals). Ledger entries are the caller's.
   */
  payMoney(cents: Micros): { paid: Micros; credits: bigint } {
    const rate = credits(this.wallet.rate); // credits per unit, in millionths
    // money [1e-4 units] × rate [1e-6 credits per unit] = credits × 1e-10; in millionths ÷ 1e4.
    const creditsFor = (money: Micros) => (money * rate + 9_999n) / 10_000n;
    // The most whole cents the credits cover: creditsFor(paid) <= spendable, as spendable is whole.
    const paid = min(cents, ((this.spendable * 10_000n) / rate / 100n) * 100n);
    const used = creditsFor(paid);
    if (used > 0n) this.consumeAvailable(used);
    return { paid, credits: used };
  }

  /** A grant whose credits were just added (ahead of the overdraft, which stays last). */
  addGrant(g: GrantRow) {
    if (this.overdraft) this.grants.splice(this.grants.length - 1, 0, g);
    else this.grants.push(g);
  }

  /**
   * While the wallet is overdrawn, credits free on live grants (added, or given back by a hold)
   * repay the overdraft, in consumption order: it is spent last and repaid first. The available
   * balance does not change.
   */
  private repayOverdraft(): void {
    const overdraft = this.overdraft;
    if (!overdraft) return;
    let owed = credits(overdraft.credits) - credits(overdraft.remaining);
    for (const g of this.grants) {
      if (owed === 0n) break;
      if (g === overdraft || !this.live(g)) continue;
      const repaid = min(owed, credits(g.remaining) - credits(g.reserved));
      if (repaid === 0n) continue;
      this.set(g, credits(g.remaining) - repaid, credits(g.reserved));
      this.set(overdraft, credits(overdraft.remaining) + repaid, credits(overdraft.reserved));
      owed -= repaid;
    }
  }

  /**
   * Ends the changes (endChanges: grants that expired while held expire now, and the events of
   * what changed are emitted), then writes the grants changed and the ledger entries.
   */
  async save(): Promise<void> {
    this.endChanges();
    await wallets.saveChanges(
      this.tx.db,
      [...this.changed].map((g) => ({
        id: g.id,
        remaining: g.remaining,
        reserved: g.reserved,
        expired_at: g.expired_at,
      })),
      this.entries,
      this.now,
    );
  }

  /** Sets the invoice of the `usage` entries recorded without one (written before the invoice). */
  usageOfInvoice(invoiceId: string): void {
    for (const e of this.entries) if (e.type === 'usage' && e.invoice_id === null) e.invoice_id = invoiceId;
  }

  /**
   * Ends one request's changes: grants that expired while held expire now, and the events of what
   * changed since the last end (or the lock) are emitted: a grant expired, the available balance
   * crossing the wallet's low balance threshold downwards, or reaching zero. A transaction that
   * changes the wallet for several requests (services/wallet-ops.ts) ends each one's changes, so
   * every crossing is seen, with its request's id; save() ends the last.
   */
  endChanges(requestId?: string | null): void {
    this.repayOverdraft();
    this.expireLapsedGrants();
    const actor = {
      ...(this.apiKeyId === null ? ({ actor: 'system' } as const) : {}),
      ...(requestId === undefined ? {} : { request_id: requestId }),
    };
    for (const g of this.expiredGrants) {
      this.tx.emit({
        type: 'wallet.grant_expired',
        resource_type: 'wallet_grant',
        resource_id: g.id,
        data: toGrantResponse(g),
        ...actor,
      });
    }
    this.expiredGrants.clear();
    const before = this.availableMark;
    const after = this.available;
    this.availableMark = after;
    const low =
      this.wallet.low_balance_threshold === null ? null : credits(this.wallet.low_balance_threshold);
    const crossed: Array<'wallet.balance_low' | 'wallet.depleted'> = [];
    if (low !== null && before >= low && after < low) crossed.push('wallet.balance_low');
    if (before > 0n && after <= 0n) crossed.push('wallet.depleted');
    if (crossed.length === 0) return;
    const data = toWalletResponse({
      wallet: this.wallet,
      available: text(after),
      held: text(this.held),
      total: text(after + this.held),
    });
    for (const type of crossed) {
      this.tx.emit({
        type,
        resource_type: 'wallet',
        resource_id: this.wallet.id,
        data,
        previous: { available: text(before) },
        ...actor,
      });
    }
  }
}

export type GrantOutcome =
  | { kind: 'granted'; grant: GrantRow }
  | { kind: 'missing' }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> };

/** A free grant: available at once, consumed by priority, then expiry, then age. */
export function createGrant(
  ctx: ServiceContext,
  actor: Actor,
  walletId: string,
  input: {
    credits?: string | undefined;
    amount?: string | undefined;
    subscription_id?: string | undefined;
    priority?: number | undefined;
    expires_at?: string | undefined;
  },
): Promise<GrantOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<GrantOutcome> => {
    const locked = await LockedWallet.open(tx, walletId, actor);
    if (!locked) return { kind: 'missing' };
    const errors: Array<{ field: string; message: string }> = [];
    for (const field of ['amount', 'subscription_id'] as const)
      if (input[field] !== undefined)
        errors.push({ field: `/${field}`, message: 'is for a paid grant only' });
    if (input.credits === undefined)
      errors.push({ field: '/credits', message: 'is required for a free grant' });
    const amount = credits(input.credits ?? '0');
    if (input.credits !== undefined && amount === 0n)
      errors.push({ field: '/credits', message: 'must be more than 0' });
    const expiresAt = input.expires_at === undefined ? null : new Date(input.expires_at);
    if (expiresAt && expiresAt <= locked.now)
      errors.push({
        field: '/expires_at',
        message: `must be in the future (now is ${locked.now.toISOString()})`,
      });
    if (await locked.overCap(amount))
      errors.push({
        field: '/credits',
        message: 'would take the wallet to 10^18 credits or more (counting its unpaid purchases)',
      });
    if (errors.length > 0) return { kind: 'invalid', errors };
    const grant = await wallets.insertGrant(tx.db, {
      wallet_id: walletId,
      kind: 'free',
      credits: text(amount),
      priority: input.priority ?? 0,
      expires_at: expiresAt,
      at: locked.madeAt,
    });
    locked.addGrant(grant);
    locked.record('grant', amount, { grant_id: grant.id });
    await locked.save();
    return { kind: 'granted', grant };
  });
}

export function getHold(ctx: ServiceContext, actor: Actor, id: string): Promise<HoldRow | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const hold = await wallets.findHold(tx.db, id);
    const now = hold && (await walletNow(tx, (await wallets.findWallet(tx.db, hold.wallet_id))!));
    // A pending hold past its expiry is released already, for every purpose: shown as such.
    if (hold?.status === 'pending' && hold.expires_at <= now!)
      return { ...hold, status: 'expired' as const, settled_at: hold.expires_at };
    return hold;
  });
}

export function getGrant(ctx: ServiceContext, actor: Actor, id: string): Promise<GrantRow | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    // The wallet's time (a test clock's) is read first: a grant is seen as of it.
    const wallet = await wallets.findWalletOfGrant(tx.db, id);
    return wallet && wallets.findGrant(tx.db, id, await walletNow(tx, wallet));
  });
}

export function listGrants(
  ctx: ServiceContext,
  actor: Actor,
  walletId: string,
  filter: { limit: number; after?: string | undefined },
): Promise<Page<GrantRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const wallet = await wallets.findWallet(tx.db, walletId);
    if (!wallet) return undefined;
    return toPage(
      await wallets.listGrants(tx.db, walletId, await walletNow(tx, wallet), filter),
      filter.limit,
    );
  });
}

export function listLedger(
  ctx: ServiceContext,
  actor: Actor,
  walletId: string,
  filter: { limit: number; after?: string | undefined },
): Promise<Page<LedgerRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    if (!(await wallets.findWallet(tx.db, walletId))) return undefined;
    return toPage(await wallets.listLedger(tx.db, walletId, filter), filter.limit);
  });
}

/**
 * The expiry job: what is due in one wallet, swept (ledger entries by the system), as of now, or
 * `at` (a test clock's due work: the step's time on the clock).
 */
export function sweepWallet(
  ctx: ServiceContext,
  tenantId: string,
  walletId: string,
  at?: Date,
): Promise<void> {
  const actor = { tenantId, keyId: 'system' };
  return inTenant(ctx, actor, async (tx) => {
    if (at) tx.occurAt(at);
    const locked = await LockedWallet.open(tx, walletId, actor, at);
    await locked?.save();
  });
}

/** How an invoice's usage lines are paid from the customer's wallets: written with the invoice. */
export interface UsagePayment {
  lines: Charge[];
  /** Writes the wallets' changes, their `usage` entries naming the invoice, once it exists. */
  finish(invoiceId: string): Promise<void>;
}

/**
 * Pays the usage lines of an invoice being made from the customer's wallets that pay usage
 * (oldest first), as far as their available credits go: each line's `credits_applied` says what
 * the credits paid, and its amount becomes the rest. Only wallets in the subscription's timeline
 * pay (its test clock's, or real time's): a simulation never spends real credits, nor one clock's
 * another's. The wallets are locked after the subscription (the lock order of
 * services/collection.ts), swept as of `now` (the subscription's time). Nothing is written until
 * `finish`: an invoice that is not made consumes nothing.
 */
export async function payUsageFromWallets(
  tx: Tx,
  subscription: { user_id: string; test_clock_id: string | null },
  lines: readonly Charge[],
  now: Date,
  /** The most credits pay of each line (micros, by index): what the invoice's discount leaves of it. */
  payable: (line: Charge, index: number) => bigint = (line) => roundToCents(parseAmount(line.amount)),
): Promise<UsagePayment> {
  const unchanged = { lines: [...lines], finish: async () => {} };
  const owed = (line: Charge, index: number) => {
    if (line.type !== 'usage') return 0n;
    const whole = roundToCents(parseAmount(line.amount));
    const most = payable(line, index);
    return most < whole ? (most > 0n ? most : 0n) : whole;
  };
  if (!lines.some((line, index) => owed(line, index) > 0n)) return unchanged;
  const rows = await wallets.lockUsageWallets(tx.db, subscription.user_id, subscription.test_clock_id);
  if (rows.length === 0) return unchanged;
  const locked: LockedWallet[] = [];
  for (const row of rows) locked.push(await LockedWallet.opened(tx, row, SYSTEM, now));
  const paidLines = lines.map((line, index): Charge => {
    const most = owed(line, index);
    let rest = most;
    if (rest === 0n) return line;
    const applied: Array<{ wallet_id: string; credits: string; amount: string }> = [];
    for (const wallet of locked) {
      const { paid, credits: used } = wallet.payMoney(rest);
      if (paid === 0n) continue;
      wallet.record('usage', used);
      applied.push({ wallet_id: wallet.wallet.id, credits: text(used), amount: formatCents(paid) });
      rest -= paid;
    }
    if (applied.length === 0) return line;
    const paid = most - rest;
    return {
      ...line,
      amount: formatCents(roundToCents(parseAmount(line.amount)) - paid),
      credits_applied: { amount: formatCents(paid), wallets: applied },
    };
  });
  return {
    lines: paidLines,
    finish: async (invoiceId) => {
      for (const wallet of locked) {
        wallet.usageOfInvoice(invoiceId);
        await wallet.save();
      }
    },
  };
}

/**
 * A voided invoice's usage lines paid from credits: the credits go back to each wallet that paid,
 * as a `refund` grant (no expiry, priority 0) and entry naming the invoice. Under the invoice's
 * lock, then each wallet's (the lock order of services/collection.ts).
 */
export async function refundUsageCredits(
  tx: Tx,
  actor: Actor,
  invoice: { id: string; lines: readonly Charge[] },
  now: Date,
): Promise<void> {
  const owed = new Map<string, bigint>();
  for (const line of invoice.lines)
    for (const paid of line.credits_applied?.wallets ?? [])
      owed.set(paid.wallet_id, (owed.get(paid.wallet_id) ?? 0n) + credits(paid.credits));
  for (const [walletId, amount] of [...owed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const locked = (await LockedWallet.open(tx, walletId, actor, now))!;
    const grant = await wallets.insertGrant(tx.db, {
      wallet_id: walletId,
      kind: 'refund',
      credits: text(amount),
      priority: 0,
      expires_at: null,
      at: locked.madeAt,
    });
    locked.addGrant(grant);
    locked.record('refund', amount, { grant_id: grant.id, invoice_id: invoice.id });
    await locked.save();
  }
}

/**
 * A purchase invoice paid: its paid grant's credits become available, with a `grant` entry naming
 * the invoice, under the wallet's lock (after the invoice's: the lock order of collection.ts).
 */
export async function creditPaidGrant(tx: Tx, invoiceId: string, at: Date): Promise<void> {
  const seen = await wallets.findGrantOfInvoice(tx.db, invoiceId);
  if (!seen || seen.available_at || seen.canceled_at) return;
  const locked = (await LockedWallet.open(tx, seen.wallet_id, SYSTEM, at))!;
  const grant = await wallets.settleGrant(tx.db, seen.id, { available_at: at });
  if (!grant) return;
  locked.addGrant(grant);
  locked.record('grant', credits(grant.credits), { grant_id: grant.id, invoice_id: invoiceId });
  await locked.save();
}

/** A purchase invoice voided unpaid: its grant is canceled (no credits ever moved: no entry). */
export async function cancelPaidGrant(tx: Tx, invoiceId: string, at: Date): Promise<void> {
  const seen = await wallets.findGrantOfInvoice(tx.db, invoiceId);
  if (seen && !seen.available_at) await wallets.settleGrant(tx.db, seen.id, { canceled_at: at });
}

/** A customer's usage in one timeline: a test clock's, or real time's (null). */
export const timeline = (userId: string, clockId: string | null) => `${userId}/${clockId ?? 'real time'}`;

/**
 * The customers' timelines whose usage is blocked now, from their wallets that pay usage (read by
 * the caller with its other reads: wallets.usageWalletsOf): a wallet that pays usage blocks the
 * usage of its timeline (as it pays only that: payUsageFromWallets), and none of the customer's
 * paying wallets in that timeline has credits left to spend (available, or left of an overdraft).
 * Each with the blocking wallet's id, by `timeline`.
 */
export async function usageBlocked(tx: Tx, paying: readonly WalletRow[]): Promise<Map<string, string>> {
  const blocked = new Map<string, string>();
  const blocking = paying.filter((w) => w.blocks_usage);
  if (blocking.length === 0) return blocked;
  const of = (w: WalletRow) => timeline(w.user_id, w.test_clock_id);
  const timelines = new Set(blocking.map(of));
  const relevant = paying.filter((w) => timelines.has(of(w)));
  const real = await wallets.balances(
    tx.db,
    relevant.filter((w) => !w.test_clock_id).map((w) => w.id),
    new Date(),
  );
  // A wallet pays whole cents: credits worth less than a cent at its rate pay nothing, so they
  // unblock nothing either (and neither do two wallets each holding half a cent).
  const paysACent = new Set<string>();
  for (const w of relevant) {
    const b =
      real.get(w.id) ??
      (
        await wallets.balances(tx.db, [w.id], (await findTestClock(tx.db, w.test_clock_id!))!.frozen_time)
      ).get(w.id)!;
    const spendable = credits(b.available) + credits(w.overdraft_limit);
    // A cent costs rate ÷ 100 credits (both in millionths): spendable ≥ rate ÷ 100.
    if (spendable * 100n >= credits(w.rate)) paysACent.add(of(w));
  }
  for (const w of blocking) if (!paysACent.has(of(w)) && !blocked.has(of(w))) blocked.set(of(w), w.id);
  return blocked;
}
