// Tenants: the businesses using the API, each created with its first admin key.
import type { ApiKeyRow, TenantRow } from '../database/schema.js';
import { insertTenant, newTenantId } from '../queries/tenants.js';
import { issueApiKey } from './api-keys.js';
import { inTenant, type ServiceContext } from './context.js';

export interface NewTenant {
  tenant: TenantRow;
  apiKey: { row: ApiKeyRow; key: string };
}

/** Creates a tenant with its first admin key, in one transaction, as the system acting for it. */
export async function createTenant(ctx: ServiceContext, name: string): Promise<NewTenant> {
  const id = await newTenantId(ctx.db);
  return inTenant(ctx, { tenantId: id, keyId: 'system' }, async (tx) => {
    const tenant = await insertTenant(tx.db, { id, name });
    tx.emit({
      type: 'tenant.created',
      resource_type: 'tenant',
      resource_id: id,
      data: { id, name: tenant.name, created_at: tenant.created_at.toISOString() },
    });
    const apiKey = await issueApiKey(tx, { name: 'first admin key', role: 'admin', expiresAt: null });
    return { tenant, apiKey };
  });
}
