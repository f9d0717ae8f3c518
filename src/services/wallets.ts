// Prepaid credits (docs/wallets.md). Every change to a wallet's credits locks the wallet's row
// first, then sweeps what has expired by now (grants past their expiry, holds past theirs), then
// checks and changes the grants, the holds and the ledger together: one transaction per decision,
// one at a time per wallet. So the available balance is checked where it is spent, and never goes
// below zero whatever runs concurrently; the ledger records the balances after each entry.
// Credits are exact: BigInt millionths in here, numeric(24, 6) in the database.
import { formatQuantity, parseTotal } from '../billing/usage-pricing.js';
import { isForeignKeyViolation } from '../database/errors.js';
import * as wallets from '../queries/wallets.js';
import type { GrantRow, HoldRow, LedgerRow, WalletRow } from '../database/schema.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage, type Tx } from './context.js';

/** The most credits a wallet may hold: what numeric(24, 6), and the API's Credits, carry. */
export const MAX_CREDITS = 10n ** 18n * 1_000_000n - 1n;

const credits = (text: string) => parseTotal(text);
const text = (millionths: bigint) => formatQuantity(millionths);
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const keyOf = (actor: Actor) => (actor.keyId === 'system' ? null : actor.keyId);

export interface WalletView {
  wallet: WalletRow;
  available: string;
  held: string;
  total: string;
}

async function view(tx: Tx, wallet: WalletRow, at: Date): Promise<WalletView> {
  const balance = (await wallets.balances(tx.db, [wallet.id], at)).get(wallet.id)!;
  return {
    wallet,
    ...balance,
    total: text(credits(balance.available) + credits(balance.held)),
  };
}

export type CreateWalletOutcome = { kind: 'created'; wallet: WalletView } | { kind: 'no-user' };

export async function createWallet(
  ctx: ServiceContext,
  actor: Actor,
  input: { user_id: string; name: string; rate?: string | undefined },
): Promise<CreateWalletOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateWalletOutcome> => {
      const wallet = await wallets.insertWallet(tx.db, {
        user_id: input.user_id,
        name: input.name,
        rate: text(credits(input.rate ?? '1')),
      });
      return { kind: 'created', wallet: { wallet, available: '0', held: '0', total: '0' } };
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) return { kind: 'no-user' };
    throw error;
  }
}

export function getWallet(ctx: ServiceContext, actor: Actor, id: string): Promise<WalletView | undefined> {
  return inTenant(ctx, { ...actor, snapshot: true }, async (tx) => {
    const wallet = await wallets.findWallet(tx.db, id);
    return wallet && view(tx, wallet, new Date());
  });
}

export function listWallets(
  ctx: ServiceContext,
  actor: Actor,
  filter: { limit: number; after?: string | undefined; userId?: string | undefined },
): Promise<Page<WalletView>> {
  return inTenant(ctx, { ...actor, snapshot: true }, async (tx) => {
    const page = toPage(await wallets.listWallets(tx.db, filter), filter.limit);
    const all = await wallets.balances(
      tx.db,
      page.rows.map((w) => w.id),
      new Date(),
    );
    return {
      more: page.more,
      rows: page.rows.map((wallet) => {
        const b = all.get(wallet.id)!;
        return { wallet, ...b, total: text(credits(b.available) + credits(b.held)) };
      }),
    };
  });
}

/**
 * A wallet's credits while its lock is held: its live grants in consumption order, changed in
 * memory and written back once, and the ledger entries of the changes, each with the balances
 * after it.
 */
class LockedWallet {
  private readonly changed = new Set<GrantRow>();
  private readonly entries: Array<Omit<LedgerRow, 'id' | 'created_at'>> = [];

  private constructor(
    private readonly tx: Tx,
    readonly wallet: WalletRow,
    private readonly grants: GrantRow[],
    private readonly apiKeyId: string | null,
    readonly now: Date,
  ) {}

  static async open(tx: Tx, walletId: string, actor: Actor): Promise<LockedWallet | undefined> {
    const wallet = await wallets.lockWallet(tx.db, walletId);
    if (!wallet) return undefined;
    const locked = new LockedWallet(
      tx,
      wallet,
      await wallets.liveGrants(tx.db, walletId),
      keyOf(actor),
      new Date(),
    );
    await locked.sweep();
    return locked;
  }

  private live = (g: GrantRow) => g.expires_at === null || g.expires_at > this.now;
  /**
   * The available credits as the ledger shows them: a grant's free credits count until an expiry
   * entry removes them (sweep and save write one as soon as a grant past its expiry has any).
   */
  get available(): bigint {
    return this.grants.reduce((sum, g) => sum + credits(g.remaining) - credits(g.reserved), 0n);
  }
  /** What may be reserved or consumed now: the free credits of grants not past their expiry. */
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

  record(type: LedgerRow['type'], amount: bigint, ids: { grant_id?: string; hold_id?: string } = {}) {
    this.entries.push({
      wallet_id: this.wallet.id,
      type,
      credits: text(amount),
      available_after: text(this.available),
      held_after: text(this.held),
      grant_id: ids.grant_id ?? null,
      hold_id: ids.hold_id ?? null,
      api_key_id: this.apiKeyId,
    });
  }

  /** Holds past their expiry are released; what is left of grants past theirs is removed. */
  async sweep(): Promise<void> {
    for (const hold of await wallets.lapsedHolds(this.tx.db, this.wallet.id, this.now)) {
      await this.settleParts(hold, credits(hold.credits), 0n);
      await wallets.settleHold(this.tx.db, hold.id, { status: 'expired', captured: null, at: this.now });
      this.record('release', credits(hold.credits), { hold_id: hold.id });
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
      if (credits(g.reserved) === 0n) g.expired_at = this.now;
      this.record('expiry', free, { grant_id: g.id });
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

  /** A hold's parts, in the grants' consumption order, with what each still reserves. */
  private async partsOf(hold: HoldRow): Promise<Array<{ grant: GrantRow; reserved: bigint }>> {
    const order = (id: string) => this.grants.findIndex((g) => g.id === id);
    return (await wallets.holdParts(this.tx.db, hold.id))
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

  addGrant(g: GrantRow) {
    this.grants.push(g);
  }

  /** Writes the grants changed and the ledger entries. Grants that expired while held expire now. */
  async save(): Promise<void> {
    this.expireLapsedGrants();
    await wallets.saveChanges(
      this.tx.db,
      [...this.changed].map((g) => ({
        id: g.id,
        remaining: g.remaining,
        reserved: g.reserved,
        expired_at: g.expired_at,
      })),
      this.entries,
    );
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
  input: { credits: string; priority?: number | undefined; expires_at?: string | undefined },
): Promise<GrantOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<GrantOutcome> => {
    const locked = await LockedWallet.open(tx, walletId, actor);
    if (!locked) return { kind: 'missing' };
    const amount = credits(input.credits);
    const errors: Array<{ field: string; message: string }> = [];
    if (amount === 0n) errors.push({ field: '/credits', message: 'must be more than 0' });
    const expiresAt = input.expires_at === undefined ? null : new Date(input.expires_at);
    if (expiresAt && expiresAt <= locked.now)
      errors.push({
        field: '/expires_at',
        message: `must be in the future (now is ${locked.now.toISOString()})`,
      });
    if (locked.available + locked.held + amount > MAX_CREDITS)
      errors.push({ field: '/credits', message: 'would take the wallet over 10^18 credits' });
    if (errors.length > 0) return { kind: 'invalid', errors };
    const grant = await wallets.insertGrant(tx.db, {
      wallet_id: walletId,
      credits: text(amount),
      priority: input.priority ?? 0,
      expires_at: expiresAt,
    });
    locked.addGrant(grant);
    locked.record('grant', amount, { grant_id: grant.id });
    await locked.save();
    return { kind: 'granted', grant };
  });
}

export type HoldOutcome =
  | { kind: 'held'; hold: HoldRow }
  | { kind: 'missing' }
  | { kind: 'invalid'; errors: Array<{ field: string; message: string }> }
  | { kind: 'insufficient'; available: string };

export function createHold(
  ctx: ServiceContext,
  actor: Actor,
  walletId: string,
  input: { credits: string; expires_in: number },
): Promise<HoldOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<HoldOutcome> => {
    const locked = await LockedWallet.open(tx, walletId, actor);
    if (!locked) return { kind: 'missing' };
    const amount = credits(input.credits);
    if (amount === 0n)
      return { kind: 'invalid', errors: [{ field: '/credits', message: 'must be more than 0' }] };
    const parts = locked.reserve(amount);
    if (!parts) {
      await locked.save(); // what the sweep found due is recorded even so
      return { kind: 'insufficient', available: text(locked.spendable) };
    }
    const hold = await wallets.insertHold(
      tx.db,
      {
        wallet_id: walletId,
        credits: text(amount),
        expires_at: new Date(locked.now.getTime() + input.expires_in * 1000),
      },
      parts,
    );
    locked.record('hold', amount, { hold_id: hold.id });
    await locked.save();
    return { kind: 'held', hold };
  });
}

export function getHold(ctx: ServiceContext, actor: Actor, id: string): Promise<HoldRow | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const hold = await wallets.findHold(tx.db, id);
    // A pending hold past its expiry is released already, for every purpose: shown as such.
    if (hold?.status === 'pending' && hold.expires_at <= new Date())
      return { ...hold, status: 'expired' as const, settled_at: hold.expires_at };
    return hold;
  });
}

export type SettleOutcome =
  | { kind: 'settled'; hold: HoldRow }
  | { kind: 'missing' }
  | { kind: 'not-pending'; hold: HoldRow }
  | { kind: 'insufficient'; available: string; excess: string };

/**
 * Captures `amount` of a pending hold: up to the hold from its credits, any excess from the
 * available balance (refused, changing nothing, when that is too low); the rest is released.
 */
export function captureHold(ctx: ServiceContext, actor: Actor, holdId: string, amountText: string) {
  return settle(ctx, actor, holdId, async (tx, locked, hold): Promise<SettleOutcome> => {
    const amount = credits(amountText);
    const held = credits(hold.credits);
    const excess = amount > held ? amount - held : 0n;
    if (excess > locked.spendable) {
      return { kind: 'insufficient', available: text(locked.spendable), excess: text(excess) };
    }
    // What the capture leaves of the hold goes back first, then the rest is consumed (and any
    // excess from available): each ledger entry's balances are those after it.
    const leftover = held > amount ? held - amount : 0n;
    if (leftover > 0n) {
      await locked.settleParts(hold, leftover, 0n);
      locked.record('release', leftover, { hold_id: hold.id });
    }
    await locked.settleParts(hold, 0n, held - leftover);
    if (excess > 0n) locked.consumeAvailable(excess);
    locked.record('capture', amount, { hold_id: hold.id });
    const settled = await wallets.settleHold(tx.db, hold.id, {
      status: 'captured',
      captured: text(amount),
      at: locked.now,
    });
    return { kind: 'settled', hold: settled };
  });
}

export function releaseHold(ctx: ServiceContext, actor: Actor, holdId: string) {
  return settle(ctx, actor, holdId, async (tx, locked, hold): Promise<SettleOutcome> => {
    await locked.settleParts(hold, credits(hold.credits), 0n);
    const settled = await wallets.settleHold(tx.db, hold.id, {
      status: 'released',
      captured: null,
      at: locked.now,
    });
    locked.record('release', credits(hold.credits), { hold_id: hold.id });
    return { kind: 'settled', hold: settled };
  });
}

/** The hold's wallet locked (then the hold read again under it), due expiries swept, then `act`. */
function settle(
  ctx: ServiceContext,
  actor: Actor,
  holdId: string,
  act: (tx: Tx, locked: LockedWallet, hold: HoldRow) => Promise<SettleOutcome>,
): Promise<SettleOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<SettleOutcome> => {
    const seen = await wallets.findHold(tx.db, holdId);
    if (!seen) return { kind: 'missing' };
    // A wallet is never deleted: it is there.
    const locked = (await LockedWallet.open(tx, seen.wallet_id, actor))!;
    // Read again under the lock (the sweep may have expired it).
    const hold = (await wallets.findHold(tx.db, holdId))!;
    const outcome =
      hold.status === 'pending' ? await act(tx, locked, hold) : { kind: 'not-pending' as const, hold };
    await locked.save();
    return outcome;
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

/** The expiry job: what is due in one wallet, swept (ledger entries by the system). */
export function sweepWallet(ctx: ServiceContext, tenantId: string, walletId: string): Promise<void> {
  const actor = { tenantId, keyId: 'system' };
  return inTenant(ctx, actor, async (tx) => {
    const locked = await LockedWallet.open(tx, walletId, actor);
    await locked?.save();
  });
}
