// The payment gateway: an interface, and a simulator as its default implementation. A real
// gateway is one more adapter. Both calls must be idempotent per payment id (a job that crashed
// after calling the gateway calls it again): the simulator is a pure function of its input.
import type { PaymentRail } from '../database/schema.js';

export interface GatewayPayment {
  paymentId: string;
  paymentMethod: string;
  rail: PaymentRail;
  amount: string;
  /** Now, on the subscription's clock. */
  at: Date;
}

export type SubmitResult =
  | { kind: 'accepted'; reference: string; settlesAt: Date }
  | { kind: 'declined'; reference: string; reason: string }
  | { kind: 'timeout' };

export type SettleResult = { kind: 'succeeded' } | { kind: 'failed'; reason: string };

/** Money sent back to the payment method that paid (a refund of part or all of a payment). */
export interface GatewayRefund {
  refundId: string;
  /** The payment refunded: its method and rail are the refund's. */
  paymentId: string;
  paymentMethod: string;
  rail: PaymentRail;
  amount: string;
  /** Now, on the subscription's clock. */
  at: Date;
}

export type RefundSubmitResult =
  | { kind: 'accepted'; reference: string; settlesAt: Date }
  | { kind: 'declined'; reference: string; reason: string };

export interface PaymentGateway {
  submit(payment: GatewayPayment): Promise<SubmitResult>;
  settle(payment: GatewayPayment): Promise<SettleResult>;
  /** Idempotent per refund id, like submit per payment id. */
  refund(refund: GatewayRefund): Promise<RefundSubmitResult>;
  settleRefund(refund: GatewayRefund): Promise<SettleResult>;
}

const HOUR = 3600_000;

/** Adds business days (Monday to Friday, UTC), keeping the time of day. */
export function addBusinessDays(from: Date, days: number): Date {
  const at = new Date(from);
  let left = days;
  while (left > 0) {
    at.setUTCDate(at.getUTCDate() + 1);
    const day = at.getUTCDay();
    if (day !== 0 && day !== 6) left--;
  }
  return at;
}

/** When a payment accepted at `at` settles on its rail (real-world typical delays). */
export function settlementTime(rail: PaymentRail, at: Date): Date {
  switch (rail) {
    case 'card':
    case 'instant':
      return at;
    case 'wire':
      return new Date(at.getTime() + 4 * HOUR);
    case 'ach_same_day':
      return new Date(at.getTime() + 8 * HOUR);
    case 'ach_standard':
      return addBusinessDays(at, 2);
  }
}

/** Test payment methods with fixed outcomes (documented in openapi.yaml, PaymentMethod). */
export const simulatedGateway: PaymentGateway = {
  submit(payment) {
    const reference = `sim_${payment.paymentId}`;
    if (payment.paymentMethod === 'pm_gateway_timeout') return Promise.resolve({ kind: 'timeout' });
    if (payment.paymentMethod === 'pm_card_declined')
      return Promise.resolve({ kind: 'declined', reference, reason: 'card_declined' });
    return Promise.resolve({
      kind: 'accepted',
      reference,
      settlesAt: settlementTime(payment.rail, payment.at),
    });
  },
  settle(payment) {
    if (payment.paymentMethod === 'pm_insufficient_funds')
      return Promise.resolve({ kind: 'failed', reason: 'insufficient_funds' });
    return Promise.resolve({ kind: 'succeeded' });
  },
  // A refund travels the rail of its payment, as slowly: accepted at once, settled after the
  // rail's delay. pm_refund_fails pays as any method, but its refunds fail at settlement (the
  // account the money would go back to is closed).
  refund(refund) {
    return Promise.resolve({
      kind: 'accepted',
      reference: `sim_${refund.refundId}`,
      settlesAt: settlementTime(refund.rail, refund.at),
    });
  },
  settleRefund(refund) {
    if (refund.paymentMethod === 'pm_refund_fails')
      return Promise.resolve({ kind: 'failed', reason: 'account_closed' });
    return Promise.resolve({ kind: 'succeeded' });
  },
};
