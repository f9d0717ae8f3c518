// Features: capabilities a subscription can include.
import type { FeatureRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import * as features from '../queries/features.js';
import { toFeatureResponse } from '../responses/features.js';
import {
  type Actor,
  defined,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type VersionCondition,
} from './context.js';

export interface FeatureInput {
  name: string;
  description?: string | null | undefined;
}

export async function listFeatures(
  ctx: ServiceContext,
  actor: Actor,
  filter: features.FeatureFilter,
): Promise<Page<FeatureRow>> {
  return toPage(await inTenant(ctx, actor, (tx) => features.listFeatures(tx.db, filter)), filter.limit);
}

export function getFeature(ctx: ServiceContext, actor: Actor, id: string): Promise<FeatureRow | undefined> {
  return inTenant(ctx, actor, (tx) => features.findFeature(tx.db, id));
}

export type CreateFeatureOutcome = { kind: 'created'; feature: FeatureRow } | { kind: 'name-taken' };

export async function createFeature(
  ctx: ServiceContext,
  actor: Actor,
  input: FeatureInput,
): Promise<CreateFeatureOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateFeatureOutcome> => {
      const feature = await features.insertFeature(tx.db, input);
      tx.emit({
        type: 'feature.created',
        resource_type: 'feature',
        resource_id: feature.id,
        data: toFeatureResponse(feature),
      });
      return { kind: 'created', feature };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'features_name_key')) return { kind: 'name-taken' };
    throw error;
  }
}

export type UpdateFeatureOutcome =
  | { kind: 'updated'; feature: FeatureRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: FeatureRow }
  | { kind: 'name-taken' };

/** Changes only what differs; a PATCH that changes nothing writes nothing and keeps the version. */
export async function updateFeature(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: Partial<FeatureInput>,
  ifMatch?: VersionCondition,
): Promise<UpdateFeatureOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<UpdateFeatureOutcome> => {
      const before = await features.lockFeature(tx.db, id);
      if (!before) return { kind: 'missing' };
      if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
      if (Object.keys(previousValues(before, { ...before, ...defined(patch) })).length === 0) {
        return { kind: 'updated', feature: before };
      }
      const after = await features.updateFeature(tx.db, id, patch);
      const data = toFeatureResponse(after);
      tx.emit({
        type: 'feature.updated',
        resource_type: 'feature',
        resource_id: id,
        data,
        previous: previousValues(toFeatureResponse(before), data),
      });
      return { kind: 'updated', feature: after };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'features_name_key')) return { kind: 'name-taken' };
    throw error;
  }
}

export type DeleteFeatureOutcome =
  { kind: 'deleted' } | { kind: 'missing' } | { kind: 'stale'; current: FeatureRow } | { kind: 'linked' };

export async function deleteFeature(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeleteFeatureOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<DeleteFeatureOutcome> => {
      if (ifMatch !== undefined) {
        const current = await features.lockFeature(tx.db, id);
        if (current && !satisfies(ifMatch, current.version)) return { kind: 'stale', current };
      }
      // Its links to canceled subscriptions go with it (a canceled one's features cannot be
      // unlinked); any other link keeps it (409).
      const unlinked = await features.unlinkFromCanceledSubscriptions(tx.db, id);
      const deleted = await features.deleteFeature(tx.db, id);
      if (!deleted) return { kind: 'missing' };
      for (const subscriptionId of unlinked)
        tx.emit({
          type: 'subscription_feature.unlinked',
          resource_type: 'subscription',
          resource_id: subscriptionId,
          data: { subscription_id: subscriptionId, feature: toFeatureResponse(deleted) },
        });
      tx.emit({
        type: 'feature.deleted',
        resource_type: 'feature',
        resource_id: id,
        data: toFeatureResponse(deleted),
      });
      return { kind: 'deleted' };
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) return { kind: 'linked' };
    throw error;
  }
}
