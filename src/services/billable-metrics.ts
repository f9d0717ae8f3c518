// Billable metrics: what usage events count, and how. Part of the catalog. What a metric counts
// (aggregation, field, grouping, filters) never changes once created: the totals already kept
// depend on it. A metric that was used is archived, never deleted.
import type { Aggregation, BillableMetricRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import * as metrics from '../queries/billable-metrics.js';
import { toBillableMetricResponse } from '../responses/usage.js';
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

export function listBillableMetrics(
  ctx: ServiceContext,
  actor: Actor,
  filter: metrics.BillableMetricFilter,
): Promise<Page<BillableMetricRow>> {
  return inTenant(ctx, actor, async (tx) =>
    toPage(await metrics.listBillableMetrics(tx.db, filter), filter.limit),
  );
}

export function getBillableMetric(ctx: ServiceContext, actor: Actor, id: string) {
  return inTenant(ctx, actor, (tx) => metrics.findBillableMetric(tx.db, id));
}

export interface BillableMetricInput {
  code: string;
  name: string;
  aggregation: Aggregation;
  field?: string | undefined;
  group_by?: string | undefined;
  filters?: Record<string, string[]> | undefined;
}

type FieldErrors = Array<{ field: string; message: string }>;

export type CreateBillableMetricOutcome =
  | { kind: 'created'; metric: BillableMetricRow }
  | { kind: 'invalid'; errors: FieldErrors }
  | { kind: 'code-taken' };

export async function createBillableMetric(
  ctx: ServiceContext,
  actor: Actor,
  input: BillableMetricInput,
): Promise<CreateBillableMetricOutcome> {
  const errors: FieldErrors = [];
  if (input.aggregation === 'count' && input.field !== undefined)
    errors.push({ field: '/field', message: 'must be absent for count: it counts events' });
  if (input.aggregation !== 'count' && input.field === undefined)
    errors.push({
      field: '/field',
      message: `is required for ${input.aggregation}: the property it aggregates`,
    });
  if (errors.length > 0) return { kind: 'invalid', errors };
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateBillableMetricOutcome> => {
      const metric = await metrics.insertBillableMetric(tx.db, {
        code: input.code,
        name: input.name,
        aggregation: input.aggregation,
        field: input.field ?? null,
        group_by: input.group_by ?? null,
        filters: input.filters ?? {},
      });
      tx.emit({
        type: 'billable_metric.created',
        resource_type: 'billable_metric',
        resource_id: metric.id,
        data: toBillableMetricResponse(metric),
      });
      return { kind: 'created', metric };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'billable_metrics_tenant_id_code_key')) return { kind: 'code-taken' };
    throw error;
  }
}

export type UpdateBillableMetricOutcome =
  | { kind: 'updated'; metric: BillableMetricRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: BillableMetricRow };

/** Renames or archives; a PATCH that changes nothing writes nothing. */
export function updateBillableMetric(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: { name?: string | undefined; archived?: boolean | undefined },
  ifMatch?: VersionCondition,
): Promise<UpdateBillableMetricOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<UpdateBillableMetricOutcome> => {
    const before = await metrics.lockBillableMetric(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    const changes = {
      ...(patch.name !== undefined && patch.name !== before.name ? { name: patch.name } : {}),
      ...(patch.archived !== undefined && patch.archived !== (before.archived_at !== null)
        ? { archived: patch.archived }
        : {}),
    };
    if (Object.keys(changes).length === 0) return { kind: 'updated', metric: before };
    const after = await metrics.updateBillableMetric(tx.db, id, changes);
    const data = toBillableMetricResponse(after);
    tx.emit({
      type: 'billable_metric.updated',
      resource_type: 'billable_metric',
      resource_id: id,
      data,
      previous: previousValues(toBillableMetricResponse(before), data),
    });
    return { kind: 'updated', metric: after };
  });
}

export type DeleteBillableMetricOutcome =
  | { kind: 'deleted' }
  | { kind: 'missing' }
  | { kind: 'stale'; current: BillableMetricRow }
  | { kind: 'in-use' };

export async function deleteBillableMetric(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeleteBillableMetricOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<DeleteBillableMetricOutcome> => {
      // Locked: an event, a hold or a plan's charge naming it cannot slip in between the check and
      // the delete (events and holds fail on their foreign key; a plan's write holds the metric
      // in key share mode, shareBillableMetricsByCode).
      const before = await metrics.lockBillableMetric(tx.db, id);
      if (!before) return { kind: 'missing' };
      if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
      if (await metrics.billableMetricInUse(tx.db, id)) return { kind: 'in-use' };
      await metrics.deleteBillableMetric(tx.db, id);
      tx.emit({
        type: 'billable_metric.deleted',
        resource_type: 'billable_metric',
        resource_id: id,
        data: toBillableMetricResponse(before),
      });
      return { kind: 'deleted' };
    });
  } catch (error) {
    if (isForeignKeyViolation(error)) return { kind: 'in-use' };
    throw error;
  }
}
