// Plans: what a tenant sells, at a price the server computes. A price is never edited in place:
// changing it adds a plan version; subscriptions keep the version they are on until moved.
import { canonicalJson } from '../canonical-json.js';
import { formatPrice, parseAmount } from '../billing/money.js';
import {
  MAX_PERIOD_AMOUNT,
  type Price,
  type PriceModel,
  PriceTooHighError,
  priceErrors,
  type Quote,
  quote,
  type Tier,
} from '../billing/pricing.js';
import type { BillingInterval, PlanRow, PlanVersionRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import { noteChargedMetrics } from '../queries/billable-metrics.js';
import * as plans from '../queries/plans.js';
import { planInUse } from '../queries/subscriptions.js';
import { couponLimitedTo } from '../queries/coupons.js';
import { toPlanResponse, toPriceResponse } from '../responses/plans.js';
import { chargesOverLimitOnPlan } from './usage.js';
import { resolveUsageCharges, type UsageChargeInput } from './usage-charges.js';
import {
  type Actor,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type VersionCondition,
} from './context.js';

export type PlanWithPrice = plans.PlanWithPrice;

export interface PriceInput {
  model: PriceModel;
  amount?: string | null | undefined;
  tiers?: readonly Tier[] | null | undefined;
}

/** The price as stored: amounts written canonically ("5" → "5.00", "0.00250" → "0.0025"). */
function canonical(price: PriceInput): plans.NewPrice {
  const amount = (text: string) => formatPrice(parseAmount(text));
  return {
    price_model: price.model,
    amount: price.amount == null ? null : amount(price.amount),
    tiers:
      price.tiers == null
        ? null
        : price.tiers.map((t) => ({
            up_to: t.up_to,
            unit_amount: amount(t.unit_amount),
            flat_amount: amount(t.flat_amount),
          })),
  };
}

/** The price a plan version charges, for the pricing maths. */
export const priceOf = (version: PlanVersionRow): Price => ({
  model: version.price_model,
  amount: version.amount,
  tiers: version.tiers as Tier[] | null,
});

type PriceErrors = Array<{ field: string; message: string }>;

export async function listPlans(
  ctx: ServiceContext,
  actor: Actor,
  filter: plans.PlanFilter,
): Promise<Page<PlanWithPrice>> {
  return inTenant(ctx, actor, async (tx) => {
    const page = toPage(await plans.listPlans(tx.db, filter), filter.limit);
    const versions = await plans.planVersions(
      tx.db,
      page.rows.map((p) => p.id),
    );
    const current = (plan: PlanRow) =>
      versions.find((v) => v.plan_id === plan.id && v.number === plan.current_version)!;
    return { more: page.more, rows: page.rows.map((plan) => ({ plan, price: current(plan) })) };
  });
}

export function getPlan(ctx: ServiceContext, actor: Actor, id: string): Promise<PlanWithPrice | undefined> {
  return inTenant(ctx, actor, (tx) => plans.findPlanWithPrice(tx.db, id));
}

export interface NewPlanInput {
  code: string;
  name: string;
  interval: BillingInterval;
  interval_count?: number | undefined;
  price: PriceInput;
  usage_charges?: readonly UsageChargeInput[] | undefined;
  trial_days?: number | null | undefined;
}

export type CreatePlanOutcome =
  | { kind: 'created'; plan: PlanWithPrice }
  | { kind: 'invalid-price'; errors: PriceErrors }
  | { kind: 'invalid-charges'; errors: PriceErrors }
  | { kind: 'code-taken' };

export async function createPlan(
  ctx: ServiceContext,
  actor: Actor,
  input: NewPlanInput,
): Promise<CreatePlanOutcome> {
  const errors = priceErrors({ ...input.price });
  if (errors.length > 0) return { kind: 'invalid-price', errors };
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreatePlanOutcome> => {
      const charges = await resolveUsageCharges(tx.db, input.usage_charges ?? []);
      if ('errors' in charges) return { kind: 'invalid-charges', errors: charges.errors };
      const plan = await plans.insertPlan(tx.db, {
        code: input.code,
        name: input.name,
        interval: input.interval,
        interval_count: input.interval_count ?? 1,
        usage_charges: charges.charges,
        trial_days: input.trial_days ?? null,
      });
      await noteChargedMetrics(
        tx.db,
        charges.charges.map((c) => c.billable_metric_id),
      );
      const price = await plans.insertPlanVersion(tx.db, plan.id, 1, canonical(input.price));
      tx.emit({
        type: 'plan.created',
        resource_type: 'plan',
        resource_id: plan.id,
        data: toPlanResponse(plan, price),
      });
      return { kind: 'created', plan: { plan, price } };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'plans_tenant_id_code_key')) return { kind: 'code-taken' };
    throw error;
  }
}

export interface PlanPatch {
  code?: string | undefined;
  name?: string | undefined;
  archived?: boolean | undefined;
  price?: PriceInput | undefined;
  usage_charges?: readonly UsageChargeInput[] | undefined;
  trial_days?: number | null | undefined;
}

export type UpdatePlanOutcome =
  | { kind: 'updated'; plan: PlanWithPrice }
  | { kind: 'missing' }
  | { kind: 'stale'; current: PlanRow }
  | { kind: 'invalid-price'; errors: PriceErrors }
  | { kind: 'invalid-charges'; errors: PriceErrors }
  | { kind: 'code-taken' };

/**
 * Changes a plan. A new price becomes a new version, which new subscriptions get; existing
 * subscriptions keep the version they are on until moved to the plan again. Archiving keeps the
 * plan and its subscriptions, and refuses new subscriptions on it.
 */
export async function updatePlan(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: PlanPatch,
  ifMatch?: VersionCondition,
): Promise<UpdatePlanOutcome> {
  if (patch.price) {
    const errors = priceErrors({ ...patch.price });
    if (errors.length > 0)
      return { kind: 'invalid-price', errors: errors.map((e) => ({ ...e, field: `/price${e.field}` })) };
  }
  try {
    return await inTenant(ctx, actor, async (tx): Promise<UpdatePlanOutcome> => {
      const locked = await plans.lockPlan(tx.db, id);
      if (!locked) return { kind: 'missing' };
      if (!satisfies(ifMatch, locked.version)) return { kind: 'stale', current: locked };
      const before = (await plans.findPlanWithPrice(tx.db, id))!;
      let usageCharges: plans.NewPlan['usage_charges'] | undefined;
      if (patch.usage_charges) {
        const resolved = await resolveUsageCharges(tx.db, patch.usage_charges, locked.usage_charges);
        if ('errors' in resolved) return { kind: 'invalid-charges', errors: resolved.errors };
        // jsonb returns the stored charges' keys in an order of its own.
        if (canonicalJson(resolved.charges) !== canonicalJson(locked.usage_charges)) {
          // They price the current periods too: none may bill one past what a line carries.
          const over = await chargesOverLimitOnPlan(tx, id, resolved.charges);
          if (over.length > 0)
            return {
              kind: 'invalid-charges',
              errors: over.map((o) => ({ field: `/usage_charges/${o.index}`, message: o.message })),
            };
          usageCharges = resolved.charges;
          await noteChargedMetrics(
            tx.db,
            usageCharges.map((c) => c.billable_metric_id),
          );
        }
      }
      const newPrice = patch.price && canonical(patch.price);
      // Compared in canonical form: "5" is "5.00", and jsonb keeps tiers' keys in its own order.
      const priceChanged =
        newPrice !== undefined &&
        JSON.stringify(newPrice) !==
          JSON.stringify(
            canonical({
              model: before.price.price_model,
              amount: before.price.amount,
              tiers: before.price.tiers as PriceInput['tiers'],
            }),
          );
      const changes = {
        ...(patch.code !== undefined && patch.code !== locked.code ? { code: patch.code } : {}),
        ...(patch.name !== undefined && patch.name !== locked.name ? { name: patch.name } : {}),
        ...(patch.archived !== undefined && patch.archived !== (locked.archived_at !== null)
          ? { archived: patch.archived }
          : {}),
        ...(usageCharges ? { usage_charges: usageCharges } : {}),
        ...(patch.trial_days !== undefined && patch.trial_days !== locked.trial_days
          ? { trial_days: patch.trial_days }
          : {}),
      };
      if (!priceChanged && Object.keys(changes).length === 0) return { kind: 'updated', plan: before };
      const price = priceChanged
        ? await plans.insertPlanVersion(tx.db, id, locked.current_version + 1, newPrice)
        : before.price;
      const plan = await plans.updatePlan(tx.db, id, {
        ...changes,
        ...(priceChanged ? { current_version: price.number } : {}),
      });
      const data = toPlanResponse(plan, price);
      tx.emit({
        type: changes.archived === true ? 'plan.archived' : 'plan.updated',
        resource_type: 'plan',
        resource_id: id,
        data,
        previous: previousValues(toPlanResponse(before.plan, before.price), data),
      });
      return { kind: 'updated', plan: { plan, price } };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'plans_tenant_id_code_key')) return { kind: 'code-taken' };
    throw error;
  }
}

export type DeletePlanOutcome =
  | { kind: 'deleted' }
  | { kind: 'missing' }
  | { kind: 'stale'; current: PlanRow }
  | { kind: 'in-use' }
  | { kind: 'coupon-limited'; couponId: string };

/**
 * A plan that any subscription uses (any version of it) is never deleted: archive it instead. Nor
 * one that a coupon (not deleted) is limited to.
 */
export async function deletePlan(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeletePlanOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<DeletePlanOutcome> => {
      // Locked first: a concurrent DELETE waits, then finds it gone (404), not deleted again.
      if (!(await plans.lockPlan(tx.db, id))) return { kind: 'missing' };
      const before = (await plans.findPlanWithPrice(tx.db, id))!;
      if (!satisfies(ifMatch, before.plan.version)) return { kind: 'stale', current: before.plan };
      if (await planInUse(tx.db, id)) return { kind: 'in-use' };
      // A coupon limited to it would name a plan that is gone (catalog7 #3).
      const couponId = await couponLimitedTo(tx.db, id);
      if (couponId) return { kind: 'coupon-limited', couponId };
      await plans.deletePlan(tx.db, id);
      tx.emit({
        type: 'plan.deleted',
        resource_type: 'plan',
        resource_id: id,
        data: toPlanResponse(before.plan, before.price),
      });
      return { kind: 'deleted' };
    });
  } catch (error) {
    // A subscription put on it at the same moment: the foreign key refuses, the plan stays.
    if (isForeignKeyViolation(error)) return { kind: 'in-use' };
    throw error;
  }
}

export type QuoteOutcome =
  { kind: 'quoted'; plan: PlanWithPrice; quote: Quote; quantity: number } | { kind: 'missing' };

/** What `quantity` units of the plan cost now, with the breakdown; creates nothing. */
export function quotePlan(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  quantity: number,
): Promise<QuoteOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<QuoteOutcome> => {
    const plan = await plans.findPlanWithPrice(tx.db, id);
    if (!plan) return { kind: 'missing' };
    return { kind: 'quoted', plan, quantity, quote: quote(priceOf(plan.price), quantity) };
  });
}

/**
 * What a subscription on this plan version costs for `quantity`, and the snapshot that explains it.
 * Over MAX_PERIOD_AMOUNT it throws PriceTooHighError (answered 422, naming the quantity).
 */
export function priceSubscription(planId: string, version: PlanVersionRow, quantity: number) {
  const priced = quote(priceOf(version), quantity);
  if (parseAmount(priced.amount) > parseAmount(MAX_PERIOD_AMOUNT)) {
    throw new PriceTooHighError(quantity, priced.amount);
  }
  return {
    plan_id: planId,
    plan_version_id: version.id,
    quantity,
    plan_cost: priced.amount,
    price_breakdown: JSON.stringify({
      plan_id: planId,
      plan_version: version.number,
      price: toPriceResponse(version),
      quantity,
      amount: priced.amount,
      breakdown: priced.breakdown,
    }),
  };
}
