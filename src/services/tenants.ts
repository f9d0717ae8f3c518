// Tenants: the businesses using the API, each created with its first admin key.
import { withTenant } from '../database/connection.js';
import type { ApiKeyRow, TenantRow } from '../database/schema.js';
import { insertTenant, newTenantId } from '../queries/tenants.js';
import { issueApiKey } from './api-keys.js';
import type { ServiceContext } from './context.js';

export interface NewTenant {
  tenant: TenantRow;
  apiKey: { row: ApiKeyRow; key: string };
}

/** Creates a tenant with its first admin key, in one transaction. */
export async function createTenant(ctx: ServiceContext, name: string): Promise<NewTenant> {
  const id = await newTenantId(ctx.db);
  return withTenant(ctx.db, { tenantId: id }, async (trx) => {
    const tenant = await insertTenant(trx, { id, name });
    const apiKey = await issueApiKey(trx, { name: 'first admin key', role: 'admin', expiresAt: null });
    return { tenant, apiKey };
  });
}
