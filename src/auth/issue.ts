import type { Schemas } from '../contract.js';
import type { Db } from '../db.js';
import { insertApiKey } from '../queries/api-keys.js';
import type { ApiKeyRole, ApiKeyRow } from '../schema.js';
import { generateKey } from './keys.js';
import { ROLE_SCOPES } from './roles.js';

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

/** Creates a key for the transaction's tenant; the only time its secret exists outside a hash. */
export async function issueApiKey(
  trx: Db,
  input: { name: string; role: ApiKeyRole; expiresAt: Date | null },
): Promise<Schemas['ApiKeyWithSecret']> {
  const { key, prefix, hash } = generateKey();
  const row = await insertApiKey(trx, {
    name: input.name,
    role: input.role,
    prefix,
    key_hash: hash,
    expires_at: input.expiresAt,
  });
  return { ...toApiKeyResponse(row), key };
}
