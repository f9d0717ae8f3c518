import type { Schemas } from '../contract.js';
import type { BillableMetricRow, UsageEventRow } from '../database/schema.js';

export function toBillableMetricResponse(row: BillableMetricRow): Schemas['BillableMetric'] {
  return {
    id: row.id,
    code: row.code,
    name: row.name,
    aggregation: row.aggregation,
    field: row.field,
    group_by: row.group_by,
    filters: row.filters,
    archived: row.archived_at !== null,
    archived_at: row.archived_at?.toISOString() ?? null,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** `metric`: the code of the event's metric (codes never change). */
export function toUsageEventResponse(row: UsageEventRow, metric: string): Schemas['UsageEvent'] {
  return {
    id: row.id,
    event_id: row.event_id,
    user_id: row.user_id,
    subscription_id: row.subscription_id,
    metric,
    billable_metric_id: row.billable_metric_id,
    timestamp: row.timestamp.toISOString(),
    properties: row.properties as Schemas['UsageEvent']['properties'],
    cost: row.cost,
    value: row.value,
    dimension_value: row.dimension,
    counted: row.counted,
    period_start: row.period_start,
    received_at: row.received_at.toISOString(),
  };
}
