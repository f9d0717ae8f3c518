// Kysely's view of the tables created by db/migrations; test/db/schema.test.ts checks the two agree.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, never, never>;
type UpdatedAt = ColumnType<Date, never, Date | string>;

export type SubscriptionStatus = 'trialing' | 'active' | 'past_due' | 'canceled';
export type BillingInterval = 'month' | 'year';

export interface UsersTable {
  id: Generated<string>;
  name: string;
  email: string;
  created_at: Timestamp;
  updated_at: UpdatedAt;
}

export interface FeaturesTable {
  id: Generated<string>;
  name: string;
  description: string | null;
  created_at: Timestamp;
  updated_at: UpdatedAt;
}

export interface SubscriptionsTable {
  id: Generated<string>;
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
  subscription_id: string;
  feature_id: string;
  created_at: Timestamp;
}

export interface Database {
  users: UsersTable;
  features: FeaturesTable;
  subscriptions: SubscriptionsTable;
  subscription_features: SubscriptionFeaturesTable;
}

export type UserRow = Selectable<UsersTable>;
export type FeatureRow = Selectable<FeaturesTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type NewSubscription = Insertable<SubscriptionsTable>;
export type SubscriptionPatch = Updateable<SubscriptionsTable>;
