// Kysely's view of the tables created by db/migrations; test/db/schema.test.ts checks the two agree.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, never, never>;
type UpdatedAt = ColumnType<Date, never, Date | string>;

export type SubscriptionStatus = 'trialing' | 'active' | 'past_due' | 'canceled';
export type BillingInterval = 'month' | 'year';

/** Set by the column default from app.tenant_id, the transaction's tenant; never written by the app. */
type TenantId = ColumnType<string, never, never>;

export type ApiKeyRole = 'viewer' | 'editor' | 'analyst' | 'admin';

export interface TenantsTable {
  id: string;
  name: string;
  created_at: Timestamp;
}

export interface ApiKeysTable {
  id: Generated<string>;
  tenant_id: TenantId;
  name: string;
  prefix: string;
  key_hash: Buffer;
  role: ApiKeyRole;
  expires_at: Date | null;
  revoked_at: ColumnType<Date | null, never, Date>;
  created_at: Timestamp;
}

export interface UsersTable {
  id: Generated<string>;
  tenant_id: TenantId;
  name: string;
  email: string;
  created_at: Timestamp;
  updated_at: UpdatedAt;
}

export interface FeaturesTable {
  id: Generated<string>;
  tenant_id: TenantId;
  name: string;
  description: string | null;
  created_at: Timestamp;
  updated_at: UpdatedAt;
}

export interface SubscriptionsTable {
  id: Generated<string>;
  tenant_id: TenantId;
  user_id: ColumnType<string, string, never>;
  status: SubscriptionStatus;
  /** numeric(12,2): read as an exact decimal string. */
  plan_cost: string;
  billing_interval: Generated<BillingInterval>;
  /** date: read as 'YYYY-MM-DD'. */
  start_date: string;
  end_date: string | null;
  canceled_at: ColumnType<Date | null, never, never>;
  created_at: Timestamp;
  updated_at: UpdatedAt;
}

export interface SubscriptionFeaturesTable {
  tenant_id: TenantId;
  subscription_id: string;
  feature_id: string;
  created_at: Timestamp;
}

/** Maintained by triggers on subscriptions (db/migrations/202611230003_analytics.ts), never by the app. */
export interface SubscriptionRollupsTable {
  tenant_id: TenantId;
  month: string;
  status: SubscriptionStatus;
  shard: number;
  subscription_count: string;
  plan_cost_total: string;
}

export interface UserTotalsTable {
  tenant_id: TenantId;
  user_id: string;
  subscription_count: string;
  total_value: string;
}

/** Rate-limit counts (db/migrations/202611240002_rate_limits.ts); not tenant data. */
export interface RateLimitHitsTable {
  key: string;
  window_start: Date;
  instance: string;
  hits: string;
}

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
}

export type TenantRow = Selectable<TenantsTable>;
export type ApiKeyRow = Omit<Selectable<ApiKeysTable>, 'tenant_id' | 'key_hash'>;
// Rows as the API reads them: tenant_id is implied by the transaction's tenant, never selected.
export type UserRow = Omit<Selectable<UsersTable>, 'tenant_id'>;
export type FeatureRow = Omit<Selectable<FeaturesTable>, 'tenant_id'>;
export type SubscriptionRow = Omit<Selectable<SubscriptionsTable>, 'tenant_id'>;
export type NewSubscription = Insertable<SubscriptionsTable>;
export type SubscriptionPatch = Updateable<SubscriptionsTable>;
