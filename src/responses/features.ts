import type { Schemas } from '../contract.js';
import type { FeatureRow } from '../database/schema.js';

export function toFeatureResponse(row: FeatureRow): Schemas['Feature'] {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
