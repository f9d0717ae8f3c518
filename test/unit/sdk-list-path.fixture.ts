// Type-level checks of the SDK's ListPath, compiled (never run) by
// sdk-list-path.test.ts and by `make typecheck`: an error, or an @ts-expect-error that
// expects one in vain, fails them.
import type { ListPath, paths } from '../../clients/typescript/src/index.js';

/** The paths whose GET answers a page (the test checks this list against the contract). */
export const LIST_PATHS = [
  '/api/v1/users',
  '/api/v1/users/{userId}/balance-transactions',
  '/api/v1/features',
  '/api/v1/subscriptions',
  '/api/v1/subscriptions/{subscriptionId}/invoice-items',
  '/api/v1/subscriptions/{subscriptionId}/events',
  '/api/v1/plans',
  '/api/v1/coupons',
  '/api/v1/tax-rates',
  '/api/v1/invoices',
  '/api/v1/invoices/{invoiceId}/payments',
  '/api/v1/payments',
  '/api/v1/invoices/{invoiceId}/refunds',
  '/api/v1/test-clocks',
  '/api/v1/events',
  '/api/v1/webhook-endpoints',
  '/api/v1/webhook-endpoints/{webhookEndpointId}/deliveries',
  '/api/v1/billable-metrics',
  '/api/v1/usage-events',
  '/api/v1/wallets',
  '/api/v1/wallets/{walletId}/grants',
  '/api/v1/wallets/{walletId}/transactions',
] as const satisfies ReadonlyArray<keyof paths>;

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// ListPath is exactly these paths: none missing, none more.
export const exact: Equal<ListPath, (typeof LIST_PATHS)[number]> = true;

// A path without a GET is not a list (its page type is never, which a bare conditional let through).
// @ts-expect-error no GET
export const noGet: ListPath = '/api/v1/tenants';
// @ts-expect-error no GET: the batch of usage events is a write
export const batch: ListPath = '/api/v1/usage-events/batch';
// @ts-expect-error no GET: an action
export const action: ListPath = '/api/v1/subscriptions/{subscriptionId}/cancel';
// @ts-expect-error a GET that answers one resource, not a page
export const single: ListPath = '/api/v1/users/{userId}';
