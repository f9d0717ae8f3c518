import type { Schemas } from '../contract.js';
import type { CouponRow } from '../database/schema.js';

/** Whether it can be applied at `now`: not deleted, not past redeem_by, not at max_redemptions. */
export function couponValid(row: CouponRow, now: Date): boolean {
  return (
    row.deleted_at === null &&
    (row.redeem_by === null || now <= row.redeem_by) &&
    (row.max_redemptions === null || row.times_redeemed < row.max_redemptions)
  );
}

export function toCouponResponse(row: CouponRow, now: Date = new Date()): Schemas['Coupon'] {
  return {
    id: row.id,
    name: row.name,
    percent_off: row.percent_off,
    amount_off: row.amount_off,
    duration: row.duration,
    duration_in_months: row.duration_in_months,
    max_redemptions: row.max_redemptions,
    redeem_by: row.redeem_by?.toISOString() ?? null,
    plan_ids: row.plan_ids,
    times_redeemed: row.times_redeemed,
    valid: couponValid(row, now),
    deleted_at: row.deleted_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}
