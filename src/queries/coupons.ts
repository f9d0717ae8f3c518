import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { CouponDuration, CouponRow } from '../database/schema.js';

const columns = [
  'id',
  'name',
  'percent_off',
  'amount_off',
  'duration',
  'duration_in_months',
  'max_redemptions',
  'redeem_by',
  'plan_ids',
  'times_redeemed',
  'deleted_at',
  'created_at',
] as const;

export function listCoupons(
  db: Db,
  filter: { limit: number; after?: string | undefined },
): Promise<CouponRow[]> {
  let query = db
    .selectFrom('coupons')
    .select(columns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  return query.execute();
}

export function findCoupon(db: Db, id: string): Promise<CouponRow | undefined> {
  return db.selectFrom('coupons').select(columns).where('id', '=', id).executeTakeFirst();
}

/** For a redemption or a deletion: redemptions of one coupon are counted one at a time. */
export function lockCoupon(db: Db, id: string): Promise<CouponRow | undefined> {
  return db.selectFrom('coupons').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

export interface NewCoupon {
  name: string;
  percent_off: string | null;
  amount_off: string | null;
  duration: CouponDuration;
  duration_in_months: number | null;
  max_redemptions: number | null;
  redeem_by: string | null;
  plan_ids: string[];
}

export function insertCoupon(db: Db, values: NewCoupon): Promise<CouponRow> {
  return db.insertInto('coupons').values(values).returning(columns).executeTakeFirstOrThrow();
}

export function countRedemption(db: Db, id: string): Promise<CouponRow> {
  return db
    .updateTable('coupons')
    .set((eb) => ({ times_redeemed: eb('times_redeemed', '+', 1) }))
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/** One redemption less (never below none): its subscription was deleted, never invoiced. */
export function uncountRedemption(db: Db, id: string): Promise<CouponRow> {
  return db
    .updateTable('coupons')
    .set({ times_redeemed: sql<number>`greatest(times_redeemed - 1, 0)` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

export function markCouponDeleted(db: Db, id: string, at: Date): Promise<CouponRow> {
  return db
    .updateTable('coupons')
    .set({ deleted_at: at })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/**
 * Which of these plan ids are the tenant's, key-share locked: a plan being deleted is waited for
 * (and then not found), and one found is not deleted before the coupon naming it commits.
 */
export async function existingPlanIds(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom('plans').select('id').where('id', 'in', ids).forKeyShare().execute();
  return new Set(rows.map((r) => r.id));
}

/** A coupon, not deleted, limited to this plan (among others, maybe): its id, or undefined. */
export async function couponLimitedTo(db: Db, planId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('coupons')
    .select('id')
    .where('deleted_at', 'is', null)
    .where(sql<boolean>`${planId}::uuid = any(plan_ids)`)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  return row?.id;
}
