import type { Schemas } from '../contract.js';
import type { BalanceTransactionRow } from '../database/schema.js';

export function toBalanceTransactionResponse(row: BalanceTransactionRow): Schemas['BalanceTransaction'] {
  return {
    id: row.id,
    user_id: row.user_id,
    type: row.type,
    amount: row.amount,
    balance_after: row.balance_after,
    invoice_id: row.invoice_id,
    credit_note_id: row.credit_note_id,
    refund_id: row.refund_id,
    created_at: row.created_at.toISOString(),
  };
}
