import { Router } from 'express';
import type { RequestBody } from '../contract.js';
import { requirePlatform } from '../http/authenticate.js';
import { idempotencyKey } from '../http/idempotency.js';
import { toTenantWithKeyResponse } from '../responses/tenants.js';
import type { ServiceContext } from '../services/context.js';
import { createTenant } from '../services/tenants.js';

export function tenantsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.post('/', async (req, res) => {
    requirePlatform(req);
    idempotencyKey(req); // refused here: the answer carries the first key's secret, never stored
    const body = req.body as RequestBody<'createTenant'>;
    res.status(201).json(toTenantWithKeyResponse(await createTenant(ctx, body.name)));
  });
  return router;
}
