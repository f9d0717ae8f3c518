// Kysely's view of the tables: generated/database.ts (kysely-codegen, from the migrated schema,
// drift-checked by `make check-gen`) with the overrides a generator cannot know. The check at the
// end fails to compile when the two disagree on a table, a column, or a column's type.
import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';
import type * as G from '../../generated/database.js';

// What the generator cannot know:
//  - text columns that a CHECK limits to a few values are unions;
//  - columns filled by defaults or triggers (tenant_id from app.tenant_id, timestamps,
//    canceled_at) are never written by the app, and user_id never changes after insert.
export type SubscriptionStatus = 'trialing' | 'active' | 'past_due' | 'unpaid' | 'paused' | 'canceled';
export type BillingInterval = 'month' | 'year';
export type ApiKeyRole = 'viewer' | 'editor' | 'analyst' | 'admin';
export type PriceModel = 'flat' | 'per_unit' | 'tiered' | 'volume';
export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'void' | 'uncollectible';
/** A price change waiting for the end of the period (subscriptions.scheduled_change). */
export type ScheduledChange = {
  plan_id: string | null;
  quantity: number | null;
  plan_cost: string | null;
  billing_interval: BillingInterval | null;
  effective_date: string;
  scheduled_at: string;
  /**
   * Internal, not shown: its plan was archived already when it was scheduled (the subscription's
   * own plan, which it may still name). Such a change is made only while the subscription is on
   * that plan; one scheduled to a plan archived later is made whatever it is on then.
   */
  to_archived?: boolean;
};
export type CouponDuration = 'once' | 'repeating' | 'forever';
/** A coupon applied to a subscription: its terms when applied, and when it runs (subscriptions.discount). */
export type Discount = {
  coupon_id: string;
  name: string;
  percent_off: string | null;
  amount_off: string | null;
  duration: CouponDuration;
  duration_in_months: number | null;
  plan_ids: string[];
  start: string;
  end: string | null;
  /**
   * A repeating discount's first day (discountFirstDay): the periods it reduces start from it
   * until `end`. Internal, not shown; absent on discounts applied before it was kept.
   */
  from?: string;
  /**
   * Applied while paused without a resume day: it reduces nothing, and does not run out, until
   * the resume counts its months (`from` and `end` are provisional until then). Internal.
   */
  awaiting_resume?: true;
};
export type InvoiceKind = 'period' | 'purchase' | 'proration' | 'one_off';
export type InvoiceItemKind = 'proration_credit' | 'proration_charge' | 'one_off';
export type PaymentRail = 'card' | 'ach_standard' | 'ach_same_day' | 'wire' | 'instant';
export type PaymentStatus = 'pending' | 'processing' | 'succeeded' | 'failed';
export type DunningFinalAction = 'cancel' | 'mark_unpaid';
/** Where the money of a credit note went beyond what was still due on its invoice. */
export type RefundTo = 'payment' | 'balance';
export type RefundStatus = 'pending' | 'succeeded' | 'failed';
export type BalanceTransactionType =
  'credit_note' | 'invoice' | 'invoice_voided' | 'refund_failed' | 'subscription_ended';

type Timestamp = ColumnType<Date, never, never>;
type UpdatedAt = ColumnType<Date, never, Date | string>;
/** Set by the column default from app.tenant_id, the transaction's tenant; never written by the app. */
type TenantId = ColumnType<string, never, never>;
/** Bumped by a trigger on every update (db/migrations/202611240003_safe_writes.ts). */
type Version = ColumnType<number, never, never>;

type Override<Table, Columns> = Omit<Table, keyof Columns> & Columns;

export type TenantsTable = Override<G.Tenants, { created_at: Timestamp }>;
export type ApiKeysTable = Override<
  G.ApiKeys,
  {
    tenant_id: TenantId;
    role: ApiKeyRole;
    expires_at: Date | null;
    revoked_at: ColumnType<Date | null, never, Date>;
    created_at: Timestamp;
  }
>;
export type UsersTable = Override<
  G.Users,
  {
    tenant_id: TenantId;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
    region: string | null;
    /** lower(email), stored by PostgreSQL: what the unique index and the email filter read. */
    email_key: ColumnType<string, never, never>;
  }
>;
export type FeaturesTable = Override<
  G.Features,
  { tenant_id: TenantId; created_at: Timestamp; updated_at: UpdatedAt; version: Version }
>;
/**
 * The pending charges a pause shortened (subscriptions.paused_charges,
 * db/migrations/202612170002_paused_charges.ts): each as it was before, with the period it
 * belongs to, the label of the price the subscription was on, and the credits the pause made.
 */
export type PausedCharges = {
  period_start: string;
  label: string;
  /** The descriptions of the credits the pause itself made (of days the period's invoice paid). */
  credits: string[];
  charges: Array<{
    id: string;
    amount: string;
    description: string;
    period_start: string;
    period_end: string;
    plan_id: string | null;
  }>;
};
export type SubscriptionsTable = Override<
  G.Subscriptions,
  {
    tenant_id: TenantId;
    user_id: ColumnType<string, string, never>;
    status: SubscriptionStatus;
    billing_interval: ColumnType<BillingInterval, BillingInterval | undefined, BillingInterval>;
    canceled_at: ColumnType<Date | null, never, Date | null>;
    cancel_at: Date | null;
    payment_rail: PaymentRail | null;
    price_breakdown: ColumnType<G.JsonValue | null, string | null, string | null>;
    scheduled_change: ColumnType<ScheduledChange | null, string | null, string | null>;
    discount: ColumnType<Discount | null, string | null, string | null>;
    /** A repeating discount that ran out, for its months invoiced again after a void. Internal. */
    ended_discount: ColumnType<Discount | null, string | null, string | null>;
    /** The pending charges a pause shortened, for a resume to bring back. Internal. */
    paused_charges: ColumnType<PausedCharges | null, string | null, string | null>;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
export type SubscriptionFeaturesTable = Override<
  G.SubscriptionFeatures,
  { tenant_id: TenantId; created_at: Timestamp }
>;
/** Maintained by triggers on subscriptions (db/migrations/202611230003_analytics.ts), never by the app. */
export type SubscriptionRollupsTable = Override<
  G.SubscriptionRollups,
  { tenant_id: TenantId; status: SubscriptionStatus }
>;
export type UserTotalsTable = Override<G.UserTotals, { tenant_id: TenantId }>;
/** Append-only: the app role may insert and select, a trigger refuses updates and deletes. */
export type EventsTable = Override<
  G.Events,
  {
    tenant_id: TenantId;
    seq: ColumnType<string, never, never>;
    id: ColumnType<string, never, never>;
    xid: ColumnType<string, never, never>;
    occurred_at: Timestamp;
    data: ColumnType<G.JsonValue, string, never>;
    previous: ColumnType<G.JsonValue | null, string | null, never>;
  }
>;
export type IdempotencyKeysTable = Override<
  G.IdempotencyKeys,
  {
    tenant_id: TenantId;
    headers: ColumnType<Record<string, string>, string, string>;
    created_at: ColumnType<Date, never, Date | string>;
  }
>;
export type PlansTable = Override<
  G.Plans,
  {
    tenant_id: TenantId;
    interval: BillingInterval;
    usage_charges: ColumnType<StoredUsageCharge[], string | undefined, string>;
    archived_at: Date | null;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
/** Frozen: a trigger refuses updates (db/migrations/202611240004_billing.ts). */
export type PlanVersionsTable = Override<
  G.PlanVersions,
  {
    tenant_id: TenantId;
    price_model: PriceModel;
    tiers: ColumnType<G.JsonValue | null, string | null, never>;
    created_at: Timestamp;
  }
>;
/** Closed, never edited (a trigger allows only setting effective_until once). */
export type TaxRatesTable = Override<G.TaxRates, { tenant_id: TenantId; created_at: Timestamp }>;
/** Terms final once created; deleted_at and times_redeemed are the only changes. */
export type CouponsTable = Override<
  G.Coupons,
  {
    tenant_id: TenantId;
    id: ColumnType<string, never, never>;
    duration: CouponDuration;
    created_at: Timestamp;
  }
>;
/** Final once issued (a trigger): only the status and its time move on. */
export type InvoicesTable = Override<
  G.Invoices,
  {
    tenant_id: TenantId;
    status: ColumnType<InvoiceStatus, InvoiceStatus | undefined, InvoiceStatus>;
    kind: ColumnType<InvoiceKind, InvoiceKind | undefined, never>;
    lines: ColumnType<G.JsonValue, string, string>;
    taxes: ColumnType<G.JsonValue, string, string>;
    /** Set when the invoice is made, never changed; read only when a draft is voided. */
    discount_used: ColumnType<G.JsonValue | null, string | undefined, never>;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
/** Charges and credits waiting for an invoice; final once billed (a trigger). */
export type InvoiceItemsTable = Override<
  G.InvoiceItems,
  {
    tenant_id: TenantId;
    id: ColumnType<string, never, never>;
    kind: InvoiceItemKind;
    created_at: Timestamp;
  }
>;
/** Final: a trigger refuses any update or delete (db/migrations/202612030019_credit_notes.ts). */
export type CreditNotesTable = Override<
  G.CreditNotes,
  {
    tenant_id: TenantId;
    id: ColumnType<string, never, never>;
    lines: ColumnType<G.JsonValue, string, never>;
    taxes: ColumnType<G.JsonValue, string, never>;
    refund_to: ColumnType<RefundTo | null, RefundTo | null, never>;
    created_at: Timestamp;
  }
>;
/** Append-only, like credit notes (db/migrations/202612030030_customer_balance.ts). */
export type CustomerBalanceTransactionsTable = Override<
  G.CustomerBalanceTransactions,
  {
    tenant_id: TenantId;
    id: ColumnType<string, never, never>;
    type: ColumnType<BalanceTransactionType, BalanceTransactionType, never>;
  }
>;
/** pending → succeeded | failed; amount, payment and invoice never change (a trigger). */
export type RefundsTable = Override<
  G.Refunds,
  {
    tenant_id: TenantId;
    id: ColumnType<string, never, never>;
    rail: ColumnType<PaymentRail, PaymentRail, never>;
    status: ColumnType<RefundStatus, RefundStatus | undefined, RefundStatus>;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
export type CreditNoteCountersTable = Override<G.CreditNoteCounters, { tenant_id: TenantId }>;
export type InvoiceCountersTable = Override<G.InvoiceCounters, { tenant_id: TenantId }>;
/** Simulated time for a tenant's subscriptions (db/migrations/202611240005_payments.ts). */
export type TestClocksTable = Override<
  G.TestClocks,
  {
    tenant_id: TenantId;
    status: ColumnType<'ready' | 'advancing', 'ready' | 'advancing' | undefined, 'ready' | 'advancing'>;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
/** Moves only forward along its lifecycle; amount and invoice never change (a trigger). */
export type PaymentsTable = Override<
  G.Payments,
  {
    tenant_id: TenantId;
    rail: PaymentRail;
    status: ColumnType<PaymentStatus, PaymentStatus | undefined, PaymentStatus>;
    initiated_by: 'api' | 'renewal' | 'dunning' | 'purchase';
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
export type BillingSettingsTable = Override<
  G.BillingSettings,
  {
    tenant_id: TenantId;
    dunning_final_action: ColumnType<DunningFinalAction, DunningFinalAction | undefined, DunningFinalAction>;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
export type WebhookEndpointStatus = 'enabled' | 'disabled';
export type WebhookDeliveryStatus = 'pending' | 'succeeded' | 'failed';
/** Webhooks (db/migrations/202611240006_webhooks.ts); the version moves only with what the API shows. */
export type WebhookEndpointsTable = Override<
  G.WebhookEndpoints,
  {
    tenant_id: TenantId;
    status: ColumnType<WebhookEndpointStatus, WebhookEndpointStatus | undefined, WebhookEndpointStatus>;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
/** Made by a trigger on events (the outbox), never inserted by the app. */
export type WebhookDeliveriesTable = Override<
  G.WebhookDeliveries,
  {
    tenant_id: TenantId;
    endpoint_id: ColumnType<string, never, never>;
    event_id: ColumnType<string, never, never>;
    event_xid: ColumnType<string, never, never>;
    event_seq: ColumnType<string, never, never>;
    event_type: ColumnType<string, never, never>;
    status: ColumnType<WebhookDeliveryStatus, never, WebhookDeliveryStatus>;
    created_at: Timestamp;
    updated_at: UpdatedAt;
  }
>;
/** Append-only: the app role may insert and select. */
export type WebhookAttemptsTable = Override<G.WebhookAttempts, { tenant_id: TenantId }>;
/** Written only by triggers (db/migrations/202612010002_mrr.ts); the app reads them. */
export type SubscriptionVersionsTable = Override<G.SubscriptionVersions, { tenant_id: TenantId }>;
export type MrrDirtyTable = Override<G.MrrDirty, { tenant_id: TenantId }>;
export type MrrDirtySubscriptionsTable = Override<G.MrrDirtySubscriptions, { tenant_id: TenantId }>;
/** Written by the MRR engine only (db/migrations/202612030001_mrr_engine.ts). */
export type MrrDaysTable = Override<G.MrrDays, { tenant_id: TenantId }>;
export type MrrCountedTable = Override<G.MrrCounted, { tenant_id: TenantId }>;
export type Aggregation = 'count' | 'sum' | 'max' | 'unique_count' | 'latest';
/** A plan's usage charge as stored (plans.usage_charges), amounts canonical. */
export type StoredUsageCharge = {
  metric: string;
  billable_metric_id: string;
  dimension_value: string | null;
  model: 'per_unit' | 'graduated' | 'volume' | 'package';
  amount: string | null;
  package_size: number | null;
  tiers: Array<{ up_to: number | null; unit_amount: string; flat_amount: string }> | null;
  free_units: string;
  minimum_amount: string | null;
};
/** Usage (db/migrations/202612030004_usage.ts). */
export type BillableMetricsTable = Override<
  G.BillableMetrics,
  {
    tenant_id: TenantId;
    aggregation: ColumnType<Aggregation, Aggregation, never>;
    filters: ColumnType<Record<string, string[]>, string | undefined, never>;
    archived_at: Date | null;
    created_at: Timestamp;
    updated_at: UpdatedAt;
    version: Version;
  }
>;
/** The metrics a plan ever charged: added by plan writes, never removed (a delete of one is 409). */
export type ChargedBillableMetricsTable = Override<G.ChargedBillableMetrics, { tenant_id: TenantId }>;
/** Append-only: the app role may insert and select, a trigger refuses updates and deletes. */
export type UsageEventsTable = Override<
  G.UsageEvents,
  {
    tenant_id: TenantId;
    id: ColumnType<string, never, never>;
    properties: ColumnType<G.JsonObject, string, never>;
    received_at: Timestamp;
  }
>;
export type UsageTotalsTable = Override<G.UsageTotals, { tenant_id: TenantId }>;
export type UsageUniqueValuesTable = Override<G.UsageUniqueValues, { tenant_id: TenantId }>;
/** Prepaid credits (db/migrations/202612030006_wallets.ts); the queries are raw SQL (src/queries/wallets.ts). */
export type WalletsTable = Override<G.Wallets, { tenant_id: TenantId }>;
export type WalletGrantsTable = Override<G.WalletGrants, { tenant_id: TenantId }>;
export type WalletHoldsTable = Override<G.WalletHolds, { tenant_id: TenantId }>;
export type WalletHoldPartsTable = Override<G.WalletHoldParts, { tenant_id: TenantId }>;
/** Append-only: the app role may insert and select, a trigger refuses updates and deletes. */
export type WalletLedgerTable = Override<G.WalletLedger, { tenant_id: TenantId }>;

/** A wallet as read (credits as exact decimal text). */
export interface WalletRow {
  id: string;
  user_id: string;
  name: string;
  rate: string;
  low_balance_threshold: string | null;
  /** How far below zero its available balance may go (its overdraft grant's credits). */
  overdraft_limit: string;
  pays_usage: boolean;
  blocks_usage: boolean;
  test_clock_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}
export interface GrantRow {
  id: string;
  wallet_id: string;
  /** 'overdraft': the wallet's overdraft (see the migration 202612050002), never shown as a grant. */
  kind: 'free' | 'refund' | 'paid' | 'overdraft';
  credits: string;
  remaining: string;
  reserved: string;
  priority: number;
  expires_at: Date | null;
  expired_at: Date | null;
  /** A paid grant's invoice and price; null for others. */
  invoice_id: string | null;
  amount: string | null;
  /** When its credits became available: null while a paid grant's invoice is unpaid. */
  available_at: Date | null;
  /** When a paid grant was canceled, its invoice voided unpaid. */
  canceled_at: Date | null;
  created_at: Date;
}
export interface HoldRow {
  id: string;
  wallet_id: string;
  status: 'pending' | 'captured' | 'released' | 'expired';
  credits: string;
  captured: string | null;
  /** What a capture said its operation was: a billable metric and dimension value, or null. */
  billable_metric_id: string | null;
  dimension: string | null;
  expires_at: Date;
  settled_at: Date | null;
  created_at: Date;
}
export interface LedgerRow {
  id: string;
  wallet_id: string;
  type: 'grant' | 'hold' | 'capture' | 'release' | 'expiry' | 'usage' | 'refund';
  credits: string;
  available_after: string;
  held_after: string;
  grant_id: string | null;
  hold_id: string | null;
  invoice_id: string | null;
  /** An API key's id, or null for the system. */
  api_key_id: string | null;
  created_at: Date;
}

/** Rate-limit counts (db/migrations/202611240002_rate_limits.ts); not tenant data. */
export type RateLimitHitsTable = G.RateLimitHits;
/** Long transactions the event feed's horizon skips (queries/events.ts, exemptFromFeedHorizon). */
export type FeedExemptTransactionsTable = G.FeedExemptTransactions;

export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  users: UsersTable;
  features: FeaturesTable;
  subscriptions: SubscriptionsTable;
  subscription_features: SubscriptionFeaturesTable;
  subscription_rollups: SubscriptionRollupsTable;
  user_totals: UserTotalsTable;
  rate_limit_hits: RateLimitHitsTable;
  feed_exempt_transactions: FeedExemptTransactionsTable;
  events: EventsTable;
  idempotency_keys: IdempotencyKeysTable;
  plans: PlansTable;
  plan_versions: PlanVersionsTable;
  tax_rates: TaxRatesTable;
  coupons: CouponsTable;
  invoices: InvoicesTable;
  invoice_counters: InvoiceCountersTable;
  invoice_items: InvoiceItemsTable;
  credit_notes: CreditNotesTable;
  credit_note_counters: CreditNoteCountersTable;
  customer_balance_transactions: CustomerBalanceTransactionsTable;
  refunds: RefundsTable;
  test_clocks: TestClocksTable;
  payments: PaymentsTable;
  billing_settings: BillingSettingsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  subscription_versions: SubscriptionVersionsTable;
  mrr_dirty: MrrDirtyTable;
  mrr_dirty_subscriptions: MrrDirtySubscriptionsTable;
  mrr_days: MrrDaysTable;
  mrr_counted: MrrCountedTable;
  billable_metrics: BillableMetricsTable;
  charged_billable_metrics: ChargedBillableMetricsTable;
  usage_events: UsageEventsTable;
  usage_totals: UsageTotalsTable;
  usage_unique_values: UsageUniqueValuesTable;
  wallets: WalletsTable;
  wallet_grants: WalletGrantsTable;
  wallet_holds: WalletHoldsTable;
  wallet_hold_parts: WalletHoldPartsTable;
  wallet_ledger: WalletLedgerTable;
}

export type TenantRow = Selectable<TenantsTable>;
export type ApiKeyRow = Omit<Selectable<ApiKeysTable>, 'tenant_id' | 'key_hash'>;
// Rows as the API reads them: tenant_id is implied by the transaction's tenant, never selected.
export type UserRow = Omit<Selectable<UsersTable>, 'tenant_id' | 'email_key'>;
export type FeatureRow = Omit<Selectable<FeaturesTable>, 'tenant_id'>;
/** A subscription as read, with its test clock's time (null in real time). */
export type SubscriptionRow = Omit<Selectable<SubscriptionsTable>, 'tenant_id'> & { clock_time: Date | null };
export type NewSubscription = Insertable<SubscriptionsTable>;
export type EventRow = Omit<Selectable<EventsTable>, 'tenant_id'>;
export type PlanRow = Omit<Selectable<PlansTable>, 'tenant_id'>;
export type PlanVersionRow = Omit<Selectable<PlanVersionsTable>, 'tenant_id'>;
export type TaxRateRow = Omit<Selectable<TaxRatesTable>, 'tenant_id'>;
export type CouponRow = Omit<Selectable<CouponsTable>, 'tenant_id'>;
export type InvoiceRow = Omit<Selectable<InvoicesTable>, 'tenant_id' | 'discount_used'>;
export type InvoiceItemRow = Omit<Selectable<InvoiceItemsTable>, 'tenant_id'>;
export type CreditNoteRow = Omit<Selectable<CreditNotesTable>, 'tenant_id'>;
/** A credit note with the id of the refund it made, if any. */
export type CreditNoteView = CreditNoteRow & { refund_id: string | null };
/** An entry as the API shows it (its tax lines stay in the database: the tax report reads them). */
export type BalanceTransactionRow = Omit<
  Selectable<CustomerBalanceTransactionsTable>,
  'tenant_id' | 'taxes' | 'invoice_shares'
>;
export type RefundRow = Omit<Selectable<RefundsTable>, 'tenant_id'>;
export type TestClockRow = Omit<Selectable<TestClocksTable>, 'tenant_id'>;
export type PaymentRow = Omit<Selectable<PaymentsTable>, 'tenant_id'>;
export type BillingSettingsRow = Omit<Selectable<BillingSettingsTable>, 'tenant_id'>;
export type WebhookEndpointRow = Omit<Selectable<WebhookEndpointsTable>, 'tenant_id'>;
export type WebhookDeliveryRow = Omit<Selectable<WebhookDeliveriesTable>, 'tenant_id'>;
export type WebhookAttemptRow = Omit<Selectable<WebhookAttemptsTable>, 'tenant_id'>;
export type SubscriptionPatch = Updateable<SubscriptionsTable>;
export type BillableMetricRow = Omit<Selectable<BillableMetricsTable>, 'tenant_id'>;
export type UsageEventRow = Omit<Selectable<UsageEventsTable>, 'tenant_id'>;

// The overrides agree with the generated tables: the same tables, the same columns, and each
// column reads as (a narrowing of) what the database returns. A mismatch is a compile error here.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>] extends [never]
  ? [Exclude<keyof B, keyof A>] extends [never]
    ? true
    : false
  : false;
type ReadsAgree<Ours, Theirs> = {
  [C in keyof Theirs]: C extends keyof Ours
    ? Ours[C] extends Theirs[C]
      ? true
      : { column: C }
    : { column: C };
}[keyof Theirs];
type ColumnsAgree<Ours, Theirs> =
  SameKeys<Ours, Theirs> extends true
    ? ReadsAgree<Selectable<Ours>, Selectable<Theirs>>
    : { columns: [keyof Ours, keyof Theirs] };
type SchemaAgrees =
  SameKeys<Database, G.DB> extends true
    ? { [T in keyof G.DB]: ColumnsAgree<Database[T], G.DB[T]> }[keyof G.DB]
    : { tables: [keyof Database, keyof G.DB] };
type MustBeTrue<T extends true> = T;
export type SchemaCheck = MustBeTrue<SchemaAgrees>;
