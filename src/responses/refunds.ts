import type { Schemas } from '../contract.js';
import type { RefundRow } from '../database/schema.js';

export function toRefundResponse(row: RefundRow): Schemas['Refund'] {
  return {
    id: row.id,
    credit_note_id: row.credit_note_id,
    invoice_id: row.invoice_id,
    payment_id: row.payment_id,
    subscription_id: row.subscription_id,
    user_id: row.user_id,
    amount: row.amount,
    rail: row.rail,
    payment_method: row.payment_method,
    status: row.status,
    failure_reason: row.failure_reason,
    submitted_at: row.submitted_at?.toISOString() ?? null,
    settles_at: row.settles_at?.toISOString() ?? null,
    settled_at: row.settled_at?.toISOString() ?? null,
    gateway_reference: row.gateway_reference,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
