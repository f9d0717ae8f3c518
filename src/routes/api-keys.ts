import { Router } from 'express';
import { inTenant } from '../auth/authenticate.js';
import { issueApiKey, toApiKeyResponse } from '../auth/issue.js';
import type { RequestBody, Schemas } from '../contract.js';
import type { Db } from '../db.js';
import { notFound, unprocessable } from '../errors.js';
import * as apiKeys from '../queries/api-keys.js';

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
    const revoked = await inTenant(db, req, (trx) => apiKeys.revokeApiKey(trx, keyId));
    if (!revoked) throw notFound(`No API key with id ${keyId}.`);
    res.status(204).end();
  });

  return router;
}
