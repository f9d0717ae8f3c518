// Features: capabilities a subscription can include.
import type { FeatureRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import * as features from '../queries/features.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage } from './context.js';

export interface FeatureInput {
  name: string;
  description?: string | null | undefined;
}

export async function listFeatures(
  ctx: ServiceContext,
  actor: Actor,
  filter: features.FeatureFilter,
): Promise<Page<FeatureRow>> {
  return toPage(await inTenant(ctx, actor, (trx) => features.listFeatures(trx, filter)), filter.limit);
}

export function getFeature(ctx: ServiceContext, actor: Actor, id: string): Promise<FeatureRow | undefined> {
  return inTenant(ctx, actor, (trx) => features.findFeature(trx, id));
}

export type CreateFeatureOutcome = { kind: 'created'; feature: FeatureRow } | { kind: 'name-taken' };

export async function createFeature(
  ctx: ServiceContext,
  actor: Actor,
  input: FeatureInput,
): Promise<CreateFeatureOutcome> {
  try {
    return {
      kind: 'created',
      feature: await inTenant(ctx, actor, (trx) => features.insertFeature(trx, input)),
    };
  } catch (error) {
    if (isUniqueViolation(error, 'features_name_key')) return { kind: 'name-taken' };
    throw error;
  }
}

export type UpdateFeatureOutcome =
  { kind: 'updated'; feature: FeatureRow } | { kind: 'missing' } | { kind: 'name-taken' };

export async function updateFeature(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: Partial<FeatureInput>,
): Promise<UpdateFeatureOutcome> {
  try {
    const feature = await inTenant(ctx, actor, (trx) => features.updateFeature(trx, id, patch));
    return feature ? { kind: 'updated', feature } : { kind: 'missing' };
  } catch (error) {
    if (isUniqueViolation(error, 'features_name_key')) return { kind: 'name-taken' };
    throw error;
  }
}

export type DeleteFeatureOutcome = { kind: 'deleted' } | { kind: 'missing' } | { kind: 'linked' };

export async function deleteFeature(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<DeleteFeatureOutcome> {
  try {
    const deleted = await inTenant(ctx, actor, (trx) => features.deleteFeature(trx, id));
    return deleted ? { kind: 'deleted' } : { kind: 'missing' };
  } catch (error) {
    if (isForeignKeyViolation(error)) return { kind: 'linked' };
    throw error;
  }
}
