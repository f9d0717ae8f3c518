import { sql } from 'kysely';
import type { Db } from '../database/connection.js';
import type {
  BillingInterval,
  PlanRow,
  PlanVersionRow,
  PriceModel,
  StoredUsageCharge,
} from '../database/schema.js';

const planColumns = [
  'id',
  'code',
  'name',
  'interval',
  'interval_count',
  'current_version',
  'usage_charges',
  'trial_days',
  'archived_at',
  'version',
  'created_at',
  'updated_at',
] as const;
const versionColumns = ['id', 'plan_id', 'number', 'price_model', 'amount', 'tiers', 'created_at'] as const;

/** A plan with the price new subscriptions get (its current version). */
export interface PlanWithPrice {
  plan: PlanRow;
  price: PlanVersionRow;
}

export interface PlanFilter {
  limit: number;
  after?: string | undefined;
  code?: string | undefined;
  archived?: boolean | undefined;
}

export function listPlans(db: Db, filter: PlanFilter): Promise<PlanRow[]> {
  let query = db
    .selectFrom('plans')
    .select(planColumns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.code !== undefined) query = query.where('code', '=', filter.code);
  if (filter.archived !== undefined) {
    query = query.where('archived_at', filter.archived ? 'is not' : 'is', null);
  }
  return query.execute();
}

/** The versions of these plans, by plan id and number. */
export async function planVersions(db: Db, planIds: readonly string[]): Promise<PlanVersionRow[]> {
  if (planIds.length === 0) return [];
  return db
    .selectFrom('plan_versions')
    .select(versionColumns)
    .where('plan_id', 'in', planIds)
    .orderBy('number')
    .execute();
}

export function findPlan(db: Db, id: string): Promise<PlanRow | undefined> {
  return db.selectFrom('plans').select(planColumns).where('id', '=', id).executeTakeFirst();
}

/** The plan, locked until the transaction ends: what a change starts from. */
export function lockPlan(db: Db, id: string): Promise<PlanRow | undefined> {
  return db.selectFrom('plans').select(planColumns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/** The plan and its current price, in one query. */
export async function findPlanWithPrice(db: Db, id: string): Promise<PlanWithPrice | undefined> {
  const row = await db
    .selectFrom('plans as p')
    .innerJoin('plan_versions as v', (join) =>
      join.onRef('v.plan_id', '=', 'p.id').onRef('v.number', '=', 'p.current_version'),
    )
    .select([
      ...planColumns.map((c) => `p.${c}` as const),
      sql<PlanVersionRow>`json_build_object('id', v.id, 'plan_id', v.plan_id, 'number', v.number,
        'price_model', v.price_model, 'amount', v.amount::text, 'tiers', v.tiers, 'created_at', v.created_at)`.as(
        'price',
      ),
    ])
    .where('p.id', '=', id)
    .executeTakeFirst();
  if (!row) return undefined;
  const { price, ...plan } = row;
  return { plan, price: { ...price, created_at: new Date(price.created_at) } };
}

export function findPlanVersion(db: Db, id: string): Promise<PlanVersionRow | undefined> {
  return db.selectFrom('plan_versions').select(versionColumns).where('id', '=', id).executeTakeFirst();
}

export interface NewPlan {
  code: string;
  name: string;
  interval: BillingInterval;
  interval_count: number;
  usage_charges: StoredUsageCharge[];
  trial_days: number | null;
}

export function insertPlan(db: Db, values: NewPlan): Promise<PlanRow> {
  return db
    .insertInto('plans')
    .values({ ...values, usage_charges: JSON.stringify(values.usage_charges) })
    .returning(planColumns)
    .executeTakeFirstOrThrow();
}

/** The plans' usage charges, by plan id. */
export async function usageChargesOf(
  db: Db,
  planIds: readonly string[],
): Promise<Map<string, StoredUsageCharge[]>> {
  if (planIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('plans')
    .select(['id', 'usage_charges'])
    .where('id', 'in', [...new Set(planIds)])
    .execute();
  return new Map(rows.map((r) => [r.id, r.usage_charges]));
}

/**
 * A plan's usage charges, its row share-locked: a PATCH of them (which locks the plan) waits for
 * a subscription moving onto it, or it for the PATCH, so each one's cap check sees the other.
 */
export async function lockUsageChargesOf(db: Db, planId: string): Promise<StoredUsageCharge[]> {
  const row = await db
    .selectFrom('plans')
    .select('usage_charges')
    .where('id', '=', planId)
    .forKeyShare()
    .executeTakeFirst();
  return row?.usage_charges ?? [];
}

/**
 * The usage charges of the plans of these customers' subscriptions (any of them: a superset of
 * what their usage may need), by plan id: independent of any other read, so it travels with them.
 */
export async function usageChargesOfCustomers(
  db: Db,
  userIds: readonly string[],
): Promise<Map<string, StoredUsageCharge[]>> {
  if (userIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('plans')
    .select(['id', 'usage_charges'])
    // Their plans, and the plans changes are scheduled to (an event ahead of now may be theirs).
    .where((eb) =>
      eb.or([
        eb(
          'id',
          'in',
          eb
            .selectFrom('subscriptions')
            .select('plan_id')
            .where('user_id', '=', (eb) => eb.fn.any(eb.val([...userIds]))),
        ),
        eb(
          'id',
          'in',
          eb
            .selectFrom('subscriptions')
            .select(sql<string>`(scheduled_change ->> 'plan_id')::uuid`.as('plan_id'))
            .where('user_id', '=', (eb) => eb.fn.any(eb.val([...userIds])))
            .where('scheduled_change', 'is not', null),
        ),
      ]),
    )
    // Until the events are recorded, a PATCH of these charges (which locks the plan) waits, and
    // we for one under way: its check of the open periods and our check of the cap see each other.
    .forKeyShare()
    .execute();
  return new Map(rows.map((r) => [r.id, r.usage_charges]));
}

export interface NewPrice {
  price_model: PriceModel;
  amount: string | null;
  tiers: unknown;
}

export function insertPlanVersion(
  db: Db,
  planId: string,
  number: number,
  price: NewPrice,
): Promise<PlanVersionRow> {
  return db
    .insertInto('plan_versions')
    .values({
      plan_id: planId,
      number,
      price_model: price.price_model,
      amount: price.amount,
      tiers: price.tiers === null ? null : JSON.stringify(price.tiers),
    })
    .returning(versionColumns)
    .executeTakeFirstOrThrow();
}

/** Run on a locked plan (lockPlan); the version trigger bumps `version`. */
export function updatePlan(
  db: Db,
  id: string,
  patch: {
    code?: string;
    name?: string;
    current_version?: number;
    /** Archived now: at the transaction's time, the same as updated_at. */
    archived?: boolean;
    usage_charges?: StoredUsageCharge[];
    trial_days?: number | null;
  },
): Promise<PlanRow> {
  const { usage_charges, archived, ...rest } = patch;
  return db
    .updateTable('plans')
    .set({
      ...rest,
      ...(archived === undefined ? {} : { archived_at: archived ? sql<Date>`now()` : null }),
      ...(usage_charges ? { usage_charges: JSON.stringify(usage_charges) } : {}),
      updated_at: sql`now()`,
    })
    .where('id', '=', id)
    .returning(planColumns)
    .executeTakeFirstOrThrow();
}

/** The deleted plan (its versions go with it); 23503 while a subscription uses a version. */
export function deletePlan(db: Db, id: string): Promise<PlanRow | undefined> {
  return db.deleteFrom('plans').where('id', '=', id).returning(planColumns).executeTakeFirst();
}
