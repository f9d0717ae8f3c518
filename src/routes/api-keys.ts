import { Router } from 'express';
import type { RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotencyKey, idempotent } from '../http/idempotency.js';
import { conflict, notFound, unprocessable } from '../http/problems.js';
import { noContent, send } from '../http/replies.js';
import { toApiKeyResponse, toApiKeyWithSecretResponse } from '../responses/api-keys.js';
import * as apiKeys from '../services/api-keys.js';
import type { ServiceContext } from '../services/context.js';

export function apiKeysRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const rows = await apiKeys.listApiKeys(ctx, actorOf(req));
    res.json({ data: rows.map(toApiKeyResponse) } satisfies Schemas['ApiKeyCollection']);
  });

  router.post('/', async (req, res) => {
    idempotencyKey(req); // refused here: the answer carries the key's secret, which is never stored
    const body = req.body as RequestBody<'createApiKey'>;
    const outcome = await apiKeys.createApiKey(ctx, actorOf(req), {
      name: body.name,
      role: body.role,
      expiresAt: body.expires_at ? new Date(body.expires_at) : null,
    });
    if (outcome.kind === 'expiry-in-past') {
      throw unprocessable('expires_at must be in the future.', [
        { location: 'body', field: '/expires_at', message: 'must be in the future' },
      ]);
    }
    res.status(201).json(toApiKeyWithSecretResponse(outcome.row, outcome.key));
  });

  router.delete('/:keyId', async (req, res) => {
    const { keyId } = req.params;
    const reply = (o: apiKeys.RevokeOutcome) => (o === 'revoked' ? noContent() : undefined);
    const outcome = await apiKeys.revokeApiKey(ctx, idempotent(req, actorOf(req), reply), keyId);
    if (outcome === 'missing') throw notFound(`No API key with id ${keyId}.`);
    if (outcome === 'last-admin') {
      throw conflict(
        "This is the tenant's last admin key that is unrevoked and never expires: revoking it would " +
          'leave nobody able to manage keys once the others expire. Create another admin key without ' +
          'expires_at first.',
      );
    }
    send(res, reply(outcome)!);
  });

  return router;
}
