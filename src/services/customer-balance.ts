// The customer balance (docs/billing.md, "Customer balance"): money owed back to a customer,
// credited by credit notes (and failed refunds), paid out to the customer's next invoices when
// they are issued, after tax. Every change is an entry of the append-only ledger, written with
// the balance it leaves under the user's row lock: the last lock of a money decision (a
// subscription, its invoice, its payment or refund, then the customer).
import { formatCents, parseAmount, parseSignedAmount } from '../billing/money.js';
import type { BalanceTransactionRow, InvoiceRow, UserRow } from '../database/schema.js';
import * as balances from '../queries/customer-balance.js';
import { findUser } from '../queries/users.js';
import { toUserResponse } from '../responses/users.js';
import {
  type Actor,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  toPage,
  type Tx,
} from './context.js';

/** Credits the customer (an amount more than zero): a credit note's money, or a failed refund's. */
export async function creditBalance(
  tx: Tx,
  entry: Omit<balances.NewBalanceTransaction, 'type'> & {
    type: 'credit_note' | 'invoice_voided' | 'refund_failed' | 'subscription_ended';
  },
): Promise<BalanceTransactionRow> {
  await balances.lockBalance(tx.db, entry.user_id);
  return moveBalance(tx, entry);
}

/**
 * An entry of the ledger and the balance it leaves (balances.addBalanceTransaction), and the
 * user's change as an event: the user shows its balance, so its last event is the user as it is.
 */
async function moveBalance(tx: Tx, entry: balances.NewBalanceTransaction): Promise<BalanceTransactionRow> {
  const row = await balances.addBalanceTransaction(tx.db, entry);
  const after = (await findUser(tx.db, entry.user_id))!;
  // One version before, with the balance the entry moved.
  const before = {
    ...after,
    balance: formatCents(parseSignedAmount(after.balance) - parseSignedAmount(entry.amount)),
    version: after.version - 1,
  };
  const data = toUserResponse(after);
  tx.emit({
    type: 'user.updated',
    resource_type: 'user',
    resource_id: after.id,
    data,
    previous: previousValues(toUserResponse(before), data),
  });
  return row;
}

/**
 * What the customer's balance pays of an invoice being issued: as much of what is due as it
 * holds (taken from the balance now), or 0.00. On a locked invoice. `customer`: the user as this
 * transaction read it already, if it did.
 */
export async function takeFromBalance(
  tx: Tx,
  invoice: Pick<InvoiceRow, 'id' | 'user_id' | 'total' | 'amount_credited'>,
  at: Date,
  customer?: UserRow,
): Promise<string> {
  const due = parseAmount(invoice.total) - parseAmount(invoice.amount_credited);
  if (due <= 0n) return '0.00';
  // Most customers have no balance: only a balance seen above zero is locked (and read again).
  const seen = customer ?? (await findUser(tx.db, invoice.user_id));
  if (!seen || parseAmount(seen.balance) === 0n) return '0.00';
  const balance = parseAmount((await balances.lockBalance(tx.db, invoice.user_id))!);
  const taken = balance < due ? balance : due;
  if (taken === 0n) return '0.00';
  await moveBalance(tx, {
    user_id: invoice.user_id,
    type: 'invoice',
    amount: `-${formatCents(taken)}`,
    invoice_id: invoice.id,
    created_at: at,
  });
  return formatCents(taken);
}

/** A customer's balance transactions, newest first; undefined when there is no such user. */
export function listBalanceTransactions(
  ctx: ServiceContext,
  actor: Actor,
  filter: balances.BalanceTransactionFilter,
): Promise<Page<BalanceTransactionRow> | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const [user, rows] = await Promise.all([
      findUser(tx.db, filter.userId),
      balances.listBalanceTransactions(tx.db, filter),
    ]);
    return user && toPage(rows, filter.limit);
  });
}
