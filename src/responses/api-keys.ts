import { ROLE_SCOPES } from '../auth/roles.js';
import type { Schemas } from '../contract.js';
import type { ApiKeyRow } from '../database/schema.js';

export function toApiKeyResponse(row: ApiKeyRow): Schemas['ApiKey'] {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    scopes: [...ROLE_SCOPES[row.role]],
    expires_at: row.expires_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}

/** The key with its secret: only in the response that creates it. */
export function toApiKeyWithSecretResponse(row: ApiKeyRow, key: string): Schemas['ApiKeyWithSecret'] {
  return { ...toApiKeyResponse(row), key };
}
