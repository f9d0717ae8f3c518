import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { FeatureRow } from '../database/schema.js';

export const featureColumns = ['id', 'name', 'description', 'version', 'created_at', 'updated_at'] as const;

export interface FeatureFilter {
  limit: number;
  after?: string | undefined;
  name?: string | undefined;
}

export function listFeatures(db: Db, { limit, after, name }: FeatureFilter): Promise<FeatureRow[]> {
  let query = db
    .selectFrom('features')
    .select(featureColumns)
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (after) query = query.where('id', '<', after);
  if (name !== undefined) query = query.where('name', '=', name);
  return query.execute();
}

export function findFeature(db: Db, id: string): Promise<FeatureRow | undefined> {
  return db.selectFrom('features').select(featureColumns).where('id', '=', id).executeTakeFirst();
}

/** The feature, locked until the transaction ends: what an update starts from. */
export function lockFeature(db: Db, id: string): Promise<FeatureRow | undefined> {
  return db.selectFrom('features').select(featureColumns).where('id', '=', id).forUpdate().executeTakeFirst();
}

export function insertFeature(
  db: Db,
  values: { name: string; description?: string | null | undefined },
): Promise<FeatureRow> {
  return db
    .insertInto('features')
    .values({ name: values.name, description: values.description ?? null })
    .returning(featureColumns)
    .executeTakeFirstOrThrow();
}

/** Run on a locked row (lockFeature): the version trigger bumps `version`. */
export function updateFeature(
  db: Db,
  id: string,
  patch: { name?: string | undefined; description?: string | null | undefined },
): Promise<FeatureRow> {
  return db
    .updateTable('features')
    .set({ ...patch, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(featureColumns)
    .executeTakeFirstOrThrow();
}

/** The deleted feature, undefined when there was none. A linked feature raises 23503 (restrict). */
export function deleteFeature(db: Db, id: string): Promise<FeatureRow | undefined> {
  return db.deleteFrom('features').where('id', '=', id).returning(featureColumns).executeTakeFirst();
}

/**
 * Removes the feature's links to canceled subscriptions (whose features no longer matter, and can
 * no longer be unlinked one by one), and answers those subscriptions' ids.
 */
export async function unlinkFromCanceledSubscriptions(db: Db, featureId: string): Promise<string[]> {
  const rows = await db
    .deleteFrom('subscription_features')
    .where('feature_id', '=', featureId)
    .where('subscription_id', 'in', (q) =>
      q.selectFrom('subscriptions').select('id').where('status', '=', 'canceled'),
    )
    .returning('subscription_id')
    .execute();
  return rows.map((r) => r.subscription_id);
}
