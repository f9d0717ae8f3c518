import type { Schemas } from '../contract.js';
import type { GrantRow, HoldRow, LedgerRow, WalletRow } from '../database/schema.js';

/** A wallet with its balances. */
export function toWalletResponse(v: {
  wallet: WalletRow;
  available: string;
  held: string;
  total: string;
}): Schemas['Wallet'] {
  return {
    id: v.wallet.id,
    user_id: v.wallet.user_id,
    name: v.wallet.name,
    rate: v.wallet.rate,
    low_balance_threshold: v.wallet.low_balance_threshold,
    overdraft_limit: v.wallet.overdraft_limit,
    pays_usage: v.wallet.pays_usage,
    blocks_usage: v.wallet.blocks_usage,
    test_clock_id: v.wallet.test_clock_id,
    available: v.available,
    held: v.held,
    total: v.total,
    version: v.wallet.version,
    created_at: v.wallet.created_at.toISOString(),
    updated_at: v.wallet.updated_at.toISOString(),
  };
}

/** A grant that credits were added with (never a wallet's overdraft, which is a setting). */
export function toGrantResponse(g: GrantRow): Schemas['Grant'] {
  if (g.kind === 'overdraft') throw new Error('an overdraft is not a grant of the API');
  return {
    id: g.id,
    wallet_id: g.wallet_id,
    kind: g.kind,
    status: g.canceled_at ? 'canceled' : g.available_at ? 'available' : 'pending',
    credits: g.credits,
    remaining: g.remaining,
    priority: g.priority,
    expires_at: g.expires_at?.toISOString() ?? null,
    expired_at: g.expired_at?.toISOString() ?? null,
    amount: g.amount,
    invoice_id: g.invoice_id,
    available_at: g.available_at?.toISOString() ?? null,
    canceled_at: g.canceled_at?.toISOString() ?? null,
    created_at: g.created_at.toISOString(),
  };
}

export function toHoldResponse(h: HoldRow): Schemas['Hold'] {
  return {
    id: h.id,
    wallet_id: h.wallet_id,
    status: h.status,
    credits: h.credits,
    captured: h.captured,
    billable_metric_id: h.billable_metric_id,
    dimension_value: h.dimension,
    expires_at: h.expires_at.toISOString(),
    settled_at: h.settled_at?.toISOString() ?? null,
    created_at: h.created_at.toISOString(),
  };
}

export function toLedgerResponse(l: LedgerRow): Schemas['LedgerEntry'] {
  return {
    id: l.id,
    wallet_id: l.wallet_id,
    type: l.type,
    credits: l.credits,
    available_after: l.available_after,
    held_after: l.held_after,
    grant_id: l.grant_id,
    hold_id: l.hold_id,
    invoice_id: l.invoice_id,
    actor: l.api_key_id === null ? { type: 'system', id: null } : { type: 'api_key', id: l.api_key_id },
    created_at: l.created_at.toISOString(),
  };
}
