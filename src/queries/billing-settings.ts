import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type { BillingSettingsRow, DunningFinalAction } from '../database/schema.js';

const columns = ['dunning_retry_days', 'dunning_final_action', 'version', 'updated_at'] as const;

/** The tenant's settings; the defaults (a row is created on first read) until changed. */
export async function billingSettings(db: Db): Promise<BillingSettingsRow> {
  const found = await db.selectFrom('billing_settings').select(columns).executeTakeFirst();
  if (found) return found;
  await db
    .insertInto('billing_settings')
    .defaultValues()
    .onConflict((oc) => oc.column('tenant_id').doNothing())
    .execute();
  return db.selectFrom('billing_settings').select(columns).executeTakeFirstOrThrow();
}

export async function lockBillingSettings(db: Db): Promise<BillingSettingsRow> {
  await billingSettings(db);
  return db.selectFrom('billing_settings').select(columns).forUpdate().executeTakeFirstOrThrow();
}

export function updateBillingSettings(
  db: Db,
  values: { dunning_retry_days: number[]; dunning_final_action: DunningFinalAction },
): Promise<BillingSettingsRow> {
  return db
    .updateTable('billing_settings')
    .set({ ...values, updated_at: sql`now()` })
    .returning(columns)
    .executeTakeFirstOrThrow();
}
