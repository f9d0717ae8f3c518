import type { Schemas } from '../contract.js';
import type { UserRow } from '../database/schema.js';
import { metadataOf } from '../database/metadata.js';

export function toUserResponse(row: UserRow): Schemas['User'] {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    region: row.region,
    balance: row.balance,
    external_id: row.external_id,
    metadata: metadataOf(row.metadata),
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
