import { Router } from 'express';
import { inTenant } from '../auth/authenticate.js';
import { issueApiKey, toApiKeyResponse } from '../auth/issue.js';
import type { RequestBody, Schemas } from '../contract.js';
import type { Db } from '../db.js';
import { conflict, notFound, unprocessable } from '../errors.js';
import * as apiKeys from '../queries/api-keys.js';
import { revokeApiKey } from '../services/api-keys.js';

export function apiKeysRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const rows = await inTenant(db, req, (trx) => apiKeys.listApiKeys(trx));
    res.json({ data: rows.map(toApiKeyResponse) } satisfies Schemas['ApiKeyCollection']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createApiKey'>;
    const expiresAt = body.expires_at ? new Date(body.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) {
      throw unprocessable('expires_at must be in the future.', [
        { location: 'body', field: '/expires_at', message: 'must be in the future' },
      ]);
    }
    const created = await inTenant(db, req, (trx) =>
      issueApiKey(trx, { name: body.name, role: body.role, expiresAt }),
    );
    res.status(201).json(created);
  });

  router.delete('/:keyId', async (req, res) => {
    const { keyId } = req.params;
    const outcome = await inTenant(db, req, (trx) => revokeApiKey(trx, keyId));
    if (outcome === 'missing') throw notFound(`No API key with id ${keyId}.`);
    if (outcome === 'last-admin') {
      throw conflict(
        "This is the tenant's last active admin key: revoking it would leave nobody able to manage keys. Create another admin key first.",
      );
    }
    res.status(204).end();
  });

  return router;
}
