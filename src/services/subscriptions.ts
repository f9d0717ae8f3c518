// Subscriptions and the features linked to them.
import type { FeatureRow, NewSubscription, SubscriptionPatch, SubscriptionRow } from '../database/schema.js';
import { isCheckViolation, isForeignKeyViolation } from '../database/errors.js';
import { findFeature } from '../queries/features.js';
import * as subscriptions from '../queries/subscriptions.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage } from './context.js';

export interface WithFeatures {
  subscription: SubscriptionRow;
  /** Present when asked for: the linked features, by name. */
  features?: FeatureRow[];
}

export async function listSubscriptions(
  ctx: ServiceContext,
  actor: Actor,
  filter: subscriptions.SubscriptionFilter,
  includeFeatures: boolean,
): Promise<Page<WithFeatures>> {
  return inTenant(ctx, actor, async (trx) => {
    const page = toPage(await subscriptions.listSubscriptions(trx, filter), filter.limit);
    const features = includeFeatures
      ? await subscriptions.featuresOfSubscriptions(
          trx,
          page.rows.map((r) => r.id),
        )
      : undefined;
    return {
      more: page.more,
      rows: page.rows.map((subscription) => ({
        subscription,
        ...(features ? { features: features.get(subscription.id) ?? [] } : {}),
      })),
    };
  });
}

export function getSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  includeFeatures: boolean,
): Promise<WithFeatures | undefined> {
  return inTenant(ctx, actor, async (trx) => {
    const subscription = await subscriptions.findSubscription(trx, id);
    if (!subscription || !includeFeatures) return subscription && { subscription };
    const features = (await subscriptions.featuresOfSubscriptions(trx, [id])).get(id) ?? [];
    return { subscription, features };
  });
}

/** end_date before start_date (checked by the database, whichever write caused it). */
const END_BEFORE_START = 'subscriptions_end_date_check';

export type CreateSubscriptionOutcome =
  | { kind: 'created'; subscription: SubscriptionRow }
  | { kind: 'unknown-user' }
  | { kind: 'end-before-start' };

export async function createSubscription(
  ctx: ServiceContext,
  actor: Actor,
  input: NewSubscription,
): Promise<CreateSubscriptionOutcome> {
  try {
    const subscription = await inTenant(ctx, actor, (trx) => subscriptions.insertSubscription(trx, input));
    return { kind: 'created', subscription };
  } catch (error) {
    // The foreign key includes tenant_id, so another tenant's user is as unknown as a missing one.
    if (isForeignKeyViolation(error)) return { kind: 'unknown-user' };
    if (isCheckViolation(error, END_BEFORE_START)) return { kind: 'end-before-start' };
    throw error;
  }
}

export type UpdateSubscriptionOutcome =
  { kind: 'updated'; subscription: SubscriptionRow } | { kind: 'missing' } | { kind: 'end-before-start' };

export async function updateSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: SubscriptionPatch,
): Promise<UpdateSubscriptionOutcome> {
  try {
    const subscription = await inTenant(ctx, actor, (trx) =>
      subscriptions.updateSubscription(trx, id, patch),
    );
    return subscription ? { kind: 'updated', subscription } : { kind: 'missing' };
  } catch (error) {
    if (isCheckViolation(error, END_BEFORE_START)) return { kind: 'end-before-start' };
    throw error;
  }
}

export async function deleteSubscription(ctx: ServiceContext, actor: Actor, id: string): Promise<boolean> {
  return inTenant(ctx, actor, (trx) => subscriptions.deleteSubscription(trx, id));
}

/** The subscription's features by name; undefined when there is no such subscription. */
export function listSubscriptionFeatures(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<FeatureRow[] | undefined> {
  return inTenant(ctx, actor, async (trx) => {
    if (!(await subscriptions.findSubscription(trx, id))) return undefined;
    return (await subscriptions.featuresOfSubscriptions(trx, [id])).get(id) ?? [];
  });
}

export type LinkOutcome =
  | { kind: 'linked' | 'already-linked'; feature: FeatureRow }
  | { kind: 'no-feature' }
  | { kind: 'no-subscription' };

/** Idempotent: the state afterwards is the same whether or not the link existed. */
export function linkFeature(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  featureId: string,
): Promise<LinkOutcome> {
  return inTenant(ctx, actor, async (trx) => {
    const feature = await findFeature(trx, featureId);
    if (!feature) return { kind: 'no-feature' };
    const outcome = await subscriptions.linkFeature(trx, subscriptionId, featureId);
    if (outcome === 'missing') return { kind: 'no-subscription' };
    return { kind: outcome === 'created' ? 'linked' : 'already-linked', feature };
  });
}

/** False when they were not linked (or either does not exist). */
export function unlinkFeature(
  ctx: ServiceContext,
  actor: Actor,
  subscriptionId: string,
  featureId: string,
): Promise<boolean> {
  return inTenant(ctx, actor, (trx) => subscriptions.unlinkFeature(trx, subscriptionId, featureId));
}
