import type { Schemas } from '../contract.js';
import type { BillingSettingsRow, PaymentRow, TestClockRow } from '../database/schema.js';

export function toPaymentResponse(row: PaymentRow): Schemas['Payment'] {
  return {
    id: row.id,
    invoice_id: row.invoice_id,
    subscription_id: row.subscription_id,
    amount: row.amount,
    rail: row.rail,
    payment_method: row.payment_method,
    status: row.status,
    failure_reason: row.failure_reason,
    initiated_by: row.initiated_by,
    attempt: row.attempt,
    submitted_at: row.submitted_at?.toISOString() ?? null,
    settles_at: row.settles_at?.toISOString() ?? null,
    settled_at: row.settled_at?.toISOString() ?? null,
    gateway_reference: row.gateway_reference,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export function toTestClockResponse(row: TestClockRow): Schemas['TestClock'] {
  return {
    id: row.id,
    name: row.name,
    frozen_time: row.frozen_time.toISOString(),
    status: row.status,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export function toBillingSettingsResponse(row: BillingSettingsRow): Schemas['BillingSettings'] {
  return {
    dunning_retry_days: row.dunning_retry_days,
    dunning_final_action: row.dunning_final_action,
    version: row.version,
  };
}
