import type { Schemas } from '../contract.js';
import type { ApiKeyRow, TenantRow } from '../database/schema.js';
import { toApiKeyWithSecretResponse } from './api-keys.js';

export function toTenantWithKeyResponse({
  tenant,
  apiKey,
}: {
  tenant: TenantRow;
  apiKey: { row: ApiKeyRow; key: string };
}): Schemas['TenantWithKey'] {
  return {
    tenant: { id: tenant.id, name: tenant.name, created_at: tenant.created_at.toISOString() },
    api_key: toApiKeyWithSecretResponse(apiKey.row, apiKey.key),
  };
}
