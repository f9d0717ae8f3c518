import { Router } from 'express';
import { requirePlatform } from '../auth/authenticate.js';
import { issueApiKey } from '../auth/issue.js';
import type { RequestBody, Schemas } from '../contract.js';
import { type Db, withTenant } from '../db.js';
import { insertTenant, newTenantId } from '../queries/tenants.js';

/** Creates a tenant with its first admin key, in one transaction. */
export async function createTenant(db: Db, name: string): Promise<Schemas['TenantWithKey']> {
  const id = await newTenantId(db);
  return withTenant(db, id, async (trx) => {
    const tenant = await insertTenant(trx, { id, name });
    const apiKey = await issueApiKey(trx, { name: 'first admin key', role: 'admin', expiresAt: null });
    return {
      tenant: { id: tenant.id, name: tenant.name, created_at: tenant.created_at.toISOString() },
      api_key: apiKey,
    };
  });
}

export function tenantsRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });
  router.post('/', async (req, res) => {
    requirePlatform(req);
    const body = req.body as RequestBody<'createTenant'>;
    res.status(201).json(await createTenant(db, body.name));
  });
  return router;
}
