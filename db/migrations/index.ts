// Every migration, by name, in order. Imported statically so tsx, vitest and compiled builds all
// load them the same way; test/db/schema.test.ts fails when a file here is missing from the list.
import type { Migration } from 'kysely';
import * as m202611230001 from './202611230001_initial.js';
import * as m202611230002 from './202611230002_tenancy.js';
import * as m202611230003 from './202611230003_analytics.js';
import * as m202611240001 from './202611240001_request_scope.js';
import * as m202611240002 from './202611240002_rate_limits.js';
import * as m202611240003 from './202611240003_safe_writes.js';
import * as m202611240004 from './202611240004_billing.js';
import * as m202611240005 from './202611240005_payments.js';
import * as m202611240006 from './202611240006_webhooks.js';
import * as m202612010001 from './202612010001_unpaid.js';
import * as m202612010002 from './202612010002_mrr.js';
import * as m202612010003 from './202612010003_tenant_keys.js';
import * as m202612010005 from './202612010005_mrr_key_lookups.js';
import * as m202612030001 from './202612030001_mrr_engine.js';
import * as m202612030002 from './202612030002_analytics_without_test_clocks.js';
import * as m202612030003 from './202612030003_versions_in_write_order.js';
import * as m202612030004 from './202612030004_usage.js';
import * as m202612030005 from './202612030005_usage_totals_hot.js';
import * as m202612030006 from './202612030006_wallets.js';
import * as m202612030007 from './202612030007_usage_cost.js';
import * as m202612030008 from './202612030008_wallet_settings.js';
import * as m202612030009 from './202612030009_paid_grants.js';
import * as m202612030010 from './202612030010_captured_usage.js';
import * as m202612030011 from './202612030011_wallet_test_clocks.js';
import * as m202612030012 from './202612030012_wallets_block_usage.js';
import * as m202612030013 from './202612030013_mrr_changed_subscriptions.js';
import * as m202612030014 from './202612030014_due_renewals_by_index.js';
import * as m202612030015 from './202612030015_prorations.js';
import * as m202612030016 from './202612030016_scheduled_changes.js';
import * as m202612030017 from './202612030017_trials.js';
import * as m202612030018 from './202612030018_one_off_charges.js';
import * as m202612030019 from './202612030019_credit_notes.js';
import * as m202612030020 from './202612030020_coupons.js';
import * as m202612030021 from './202612030021_pauses.js';
import * as m202612030030 from './202612030030_customer_balance.js';
import * as m202612030031 from './202612030031_refunds.js';
import * as m202612030032 from './202612030032_ended_subscription_items.js';
import * as m202612040001 from './202612040001_tenant_policies_once.js';
import * as m202612040002 from './202612040002_foreign_key_indexes.js';
import * as m202612040003 from './202612040003_due_cancellations.js';
import * as m202612040004 from './202612040004_reinvoice_voided_periods.js';
import * as m202612050001 from './202612050001_usage_events_by_subscription.js';
import * as m202612050002 from './202612050002_wallet_overdrafts.js';
import * as m202612050003 from './202612050003_metadata.js';
import * as m202612050004 from './202612050004_subscriptions_by_plan.js';
import * as m202612060001 from './202612060001_lapsed_purchases.js';
import * as m202612060002 from './202612060002_grants_by_wallet.js';
import * as m202612070001 from './202612070001_bookkeeping_keeps_version.js';
import * as m202612080001 from './202612080001_wide_payment_amounts.js';
import * as m202612080002 from './202612080002_dunning_retries.js';
import * as m202612080003 from './202612080003_deliveries_lock_endpoints.js';
import * as m202612080006 from './202612080006_webhook_endpoint_backoff.js';
import * as m202612080007 from './202612080007_invoices_discount_used.js';
import * as m202612090001 from './202612090001_clock_advanced_from.js';
import * as m202612090002 from './202612090002_key_expiry_cached.js';
import * as m202612100001 from './202612100001_invoice_items_plan.js';
import * as m202612110001 from './202612110001_void_paid_by_credits.js';
import * as m202612110002 from './202612110002_invoices_credited.js';
import * as m202612120001 from './202612120001_ending_credit_taxes.js';
import * as m202612130001 from './202612130001_ending_credit_shares.js';
import * as m202612130002 from './202612130002_users_email_key.js';
import * as m202612130003 from './202612130003_events_by_type.js';
import * as m202612140001 from './202612140001_status_filters.js';
import * as m202612150001 from './202612150001_trials_ended_early.js';
import * as m202612150002 from './202612150002_feed_exempt_transactions.js';
import * as m202612160001 from './202612160001_ended_discounts.js';
import * as m202612160002 from './202612160002_payment_retries_keep_version.js';
import * as m202612170001 from './202612170001_charged_billable_metrics.js';
import * as m202612170002 from './202612170002_paused_charges.js';
import * as m202612170003 from './202612170003_voided_draft_items.js';
import * as m202612170004 from './202612170004_tax_rate_closed_earlier.js';
import * as m202612170005 from './202612170005_resend_stays_succeeded.js';

export const migrations: Record<string, Migration> = {
  '202611230001_initial': m202611230001,
  '202611230002_tenancy': m202611230002,
  '202611230003_analytics': m202611230003,
  '202611240001_request_scope': m202611240001,
  '202611240002_rate_limits': m202611240002,
  '202611240003_safe_writes': m202611240003,
  '202611240004_billing': m202611240004,
  '202611240005_payments': m202611240005,
  '202611240006_webhooks': m202611240006,
  '202612010001_unpaid': m202612010001,
  '202612010002_mrr': m202612010002,
  '202612010003_tenant_keys': m202612010003,
  '202612010005_mrr_key_lookups': m202612010005,
  '202612030001_mrr_engine': m202612030001,
  '202612030002_analytics_without_test_clocks': m202612030002,
  '202612030003_versions_in_write_order': m202612030003,
  '202612030004_usage': m202612030004,
  '202612030005_usage_totals_hot': m202612030005,
  '202612030006_wallets': m202612030006,
  '202612030007_usage_cost': m202612030007,
  '202612030008_wallet_settings': m202612030008,
  '202612030009_paid_grants': m202612030009,
  '202612030010_captured_usage': m202612030010,
  '202612030011_wallet_test_clocks': m202612030011,
  '202612030012_wallets_block_usage': m202612030012,
  '202612030013_mrr_changed_subscriptions': m202612030013,
  '202612030014_due_renewals_by_index': m202612030014,
  '202612030015_prorations': m202612030015,
  '202612030016_scheduled_changes': m202612030016,
  '202612030017_trials': m202612030017,
  '202612030018_one_off_charges': m202612030018,
  '202612030019_credit_notes': m202612030019,
  '202612030020_coupons': m202612030020,
  '202612030021_pauses': m202612030021,
  '202612030030_customer_balance': m202612030030,
  '202612030031_refunds': m202612030031,
  '202612030032_ended_subscription_items': m202612030032,
  '202612040001_tenant_policies_once': m202612040001,
  '202612040002_foreign_key_indexes': m202612040002,
  '202612040003_due_cancellations': m202612040003,
  '202612040004_reinvoice_voided_periods': m202612040004,
  '202612050001_usage_events_by_subscription': m202612050001,
  '202612050002_wallet_overdrafts': m202612050002,
  '202612050003_metadata': m202612050003,
  '202612050004_subscriptions_by_plan': m202612050004,
  '202612060001_lapsed_purchases': m202612060001,
  '202612060002_grants_by_wallet': m202612060002,
  '202612070001_bookkeeping_keeps_version': m202612070001,
  '202612080001_wide_payment_amounts': m202612080001,
  '202612080002_dunning_retries': m202612080002,
  '202612080003_deliveries_lock_endpoints': m202612080003,
  '202612080006_webhook_endpoint_backoff': m202612080006,
  '202612080007_invoices_discount_used': m202612080007,
  '202612090001_clock_advanced_from': m202612090001,
  '202612090002_key_expiry_cached': m202612090002,
  '202612100001_invoice_items_plan': m202612100001,
  '202612110001_void_paid_by_credits': m202612110001,
  '202612110002_invoices_credited': m202612110002,
  '202612120001_ending_credit_taxes': m202612120001,
  '202612130001_ending_credit_shares': m202612130001,
  '202612130002_users_email_key': m202612130002,
  '202612130003_events_by_type': m202612130003,
  '202612140001_status_filters': m202612140001,
  '202612150001_trials_ended_early': m202612150001,
  '202612150002_feed_exempt_transactions': m202612150002,
  '202612160001_ended_discounts': m202612160001,
  '202612160002_payment_retries_keep_version': m202612160002,
  '202612170001_charged_billable_metrics': m202612170001,
  '202612170002_paused_charges': m202612170002,
  '202612170003_voided_draft_items': m202612170003,
  '202612170004_tax_rate_closed_earlier': m202612170004,
  '202612170005_resend_stays_succeeded': m202612170005,
};
