import { sql } from 'kysely';
import { runCompiled } from '../database/compiled.js';
import type { Db } from '../database/connection.js';
import type {
  FeatureRow,
  NewSubscription,
  SubscriptionPatch,
  SubscriptionRow,
  SubscriptionStatus,
} from '../database/schema.js';
import { featureColumns } from './features.js';

const tableColumns = [
  'id',
  'user_id',
  'status',
  'plan_cost',
  'billing_interval',
  'start_date',
  'end_date',
  'canceled_at',
  'cancel_at',
  'cancel_reason',
  'plan_id',
  'plan_version_id',
  'quantity',
  'interval_count',
  'price_breakdown',
  'billed_until',
  'billing_anchor',
  'scheduled_change',
  'trial_end',
  'trial_notified_at',
  'trial_ended_on',
  'discount',
  'ended_discount',
  'paused_charges',
  'paused_at',
  'resumes_at',
  'usage_invoiced_until',
  'test_clock_id',
  'payment_method',
  'payment_rail',
  'metadata',
  'version',
  'created_at',
  'updated_at',
] as const;

/**
 * The time of the subscription's test clock (null in real time): every date derived for a
 * subscription on a clock (its current period, a cancellation, the default invoice date) uses it.
 */
const clockTime = sql<Date | null>`case when subscriptions.test_clock_id is null then null else (
  select c.frozen_time from test_clocks c
  where c.tenant_id = subscriptions.tenant_id and c.id = subscriptions.test_clock_id) end`.as('clock_time');
const columns = [...tableColumns, clockTime] as const;

export interface SubscriptionFilter {
  limit: number;
  after?: string | undefined;
  userId?: string | undefined;
  planId?: string | undefined;
  statuses?: SubscriptionStatus[] | undefined;
  startDateGte?: string | undefined;
  startDateLte?: string | undefined;
}

/** Newest first; limit + 1 rows so the caller can tell whether another page follows. */
export function listSubscriptions(db: Db, filter: SubscriptionFilter): Promise<SubscriptionRow[]> {
  // Compiled once per combination of filters (and number of statuses); the values in query order.
  const statuses = filter.statuses?.length ?? 0;
  const shape = [filter.after, filter.userId, filter.planId, filter.startDateGte, filter.startDateLte].map(
    Boolean,
  );
  const values: unknown[] = [filter.limit + 1];
  if (filter.after) values.push(filter.after);
  if (filter.userId) values.push(filter.userId);
  if (filter.planId) values.push(filter.planId);
  if (statuses) values.push(...filter.statuses!);
  if (filter.startDateGte) values.push(filter.startDateGte);
  if (filter.startDateLte) values.push(filter.startDateLte);
  return runCompiled(db, `subscriptions.listSubscriptions:${shape.join(':')}:${statuses}`, values, (...v) => {
    let next = 0;
    const take = <T>() => v[next++] as T;
    let query = db.selectFrom('subscriptions').select(columns).orderBy('id', 'desc').limit(take<number>());
    if (filter.after) query = query.where('id', '<', take<string>());
    if (filter.userId) query = query.where('user_id', '=', take<string>());
    if (filter.planId) query = query.where('plan_id', '=', take<string>());
    if (statuses) {
      const listed = Array.from({ length: statuses }, () => take<SubscriptionStatus>());
      query = query.where('status', 'in', listed);
    }
    if (filter.startDateGte) query = query.where('start_date', '>=', take<string>());
    if (filter.startDateLte) query = query.where('start_date', '<=', take<string>());
    return query;
  });
}

export async function findSubscription(db: Db, id: string): Promise<SubscriptionRow | undefined> {
  const [row] = await runCompiled(db, 'subscriptions.findSubscription', [id] as const, (id) =>
    db.selectFrom('subscriptions').select(columns).where('id', '=', id),
  );
  return row;
}

/**
 * The customers' subscriptions, locked in share mode in id order until the transaction ends:
 * recording usage against them, while a renewal (which locks one for update) waits or is waited for.
 */
export function shareLockSubscriptionsOf(db: Db, userIds: readonly string[]): Promise<SubscriptionRow[]> {
  if (userIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('subscriptions')
    .select(columns)
    .where('user_id', 'in', [...userIds])
    .orderBy('id')
    .forShare()
    .execute();
}

/** The subscription, locked until the transaction ends: what a change starts from. */
export function lockSubscription(db: Db, id: string): Promise<SubscriptionRow | undefined> {
  return db.selectFrom('subscriptions').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/** An unknown user_id raises 23503 (foreign key). */
export function insertSubscription(db: Db, values: NewSubscription): Promise<SubscriptionRow> {
  return db.insertInto('subscriptions').values(values).returning(columns).executeTakeFirstOrThrow();
}

/** Run on a locked row (lockSubscription): the version trigger bumps `version`. */
export function updateSubscription(db: Db, id: string, patch: SubscriptionPatch): Promise<SubscriptionRow> {
  return db
    .updateTable('subscriptions')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/**
 * Cancellations scheduled for now or earlier, performed: canceled_at is the scheduled time.
 * Returns the canceled subscriptions with the status each had before. The database function
 * (db/migrations/202612040003) checks first and updates only when one is due, as it rarely is.
 */
export function performDueCancellations(
  db: Db,
): Promise<Array<SubscriptionRow & { previous_status: SubscriptionStatus }>> {
  return runCompiled(
    db,
    'subscriptions.performDueCancellations',
    [],
    () => sql<SubscriptionRow & { previous_status: SubscriptionStatus }>`
      select ${sql.join(tableColumns.map((column) => sql`(c.subscription).${sql.id(column)}`))},
        null::timestamptz as clock_time, c.previous_status
      from perform_due_cancellations() c`,
  );
}

/** The deleted subscription, undefined when there was none; its feature links go with it (cascade). */
export function deleteSubscription(db: Db, id: string): Promise<SubscriptionRow | undefined> {
  return db.deleteFrom('subscriptions').where('id', '=', id).returning(columns).executeTakeFirst();
}

/** The features of each given subscription, by name; subscriptions without any are absent. */
export async function featuresOfSubscriptions(
  db: Db,
  subscriptionIds: readonly string[],
): Promise<Map<string, FeatureRow[]>> {
  const bySubscription = new Map<string, FeatureRow[]>();
  if (subscriptionIds.length === 0) return bySubscription;
  const rows = await db
    .selectFrom('subscription_features as sf')
    .innerJoin('features', 'features.id', 'sf.feature_id')
    .select(['sf.subscription_id', ...featureColumns.map((c) => `features.${c}` as const)])
    .where('sf.subscription_id', 'in', subscriptionIds)
    .orderBy('features.name')
    .execute();
  for (const { subscription_id, ...feature } of rows) {
    const list = bySubscription.get(subscription_id) ?? [];
    list.push(feature);
    bySubscription.set(subscription_id, list);
  }
  return bySubscription;
}

/** Links both when they exist; 'created' only when this call made the link. Run on a locked subscription. */
export async function linkFeature(
  db: Db,
  subscriptionId: string,
  featureId: string,
): Promise<'created' | 'missing' | 'existed'> {
  const inserted = await db
    .insertInto('subscription_features')
    .columns(['subscription_id', 'feature_id'])
    .expression((eb) =>
      eb
        .selectFrom(['subscriptions as s', 'features as f'])
        .select(['s.id as subscription_id', 'f.id as feature_id'])
        .where('s.id', '=', subscriptionId)
        .where('f.id', '=', featureId),
    )
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  if (inserted.numInsertedOrUpdatedRows && inserted.numInsertedOrUpdatedRows > 0n) return 'created';
  const link = await db
    .selectFrom('subscription_features')
    .select('subscription_id')
    .where('subscription_id', '=', subscriptionId)
    .where('feature_id', '=', featureId)
    .executeTakeFirst();
  return link ? 'existed' : 'missing';
}

/**
 * Removes every feature link of the subscription and answers the features it removed: those
 * this statement deleted, not those a concurrent transaction (a feature's delete) took first.
 */
export async function unlinkAllFeatures(db: Db, subscriptionId: string): Promise<FeatureRow[]> {
  const { rows } = await sql<FeatureRow>`
    with gone as (
      delete from subscription_features where subscription_id = ${subscriptionId} returning feature_id)
    select ${sql.join(featureColumns.map((c) => sql.ref(`f.${c}`)))}
    from features f join gone on f.id = gone.feature_id
    order by f.name`.execute(db);
  return rows;
}

export async function unlinkFeature(db: Db, subscriptionId: string, featureId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('subscription_features')
    .where('subscription_id', '=', subscriptionId)
    .where('feature_id', '=', featureId)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Whether any subscription is on a version of this plan. */
export async function planInUse(db: Db, planId: string): Promise<boolean> {
  const row = await db
    .selectFrom('subscriptions')
    .select('id')
    .where('plan_id', '=', planId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
