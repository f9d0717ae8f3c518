import { Router } from 'express';
import type { Schemas } from '../contract.js';
import { requireDeclaredMediaType } from '../http/media-type.js';
import { databaseUnavailable, ProblemError } from '../http/problems.js';
import { isReady } from '../services/health.js';
import type { ServiceContext } from '../services/context.js';

export function healthRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true, strict: true });
  const ok: Schemas['Health'] = { status: 'ok' };

  // Liveness never touches the database: a slow database must not get the process restarted.
  // They take no body: one sent is refused, as on every operation (the others check after auth).
  router.get('/healthz', requireDeclaredMediaType, (_req, res) => {
    res.json(ok);
  });

  router.get('/readyz', requireDeclaredMediaType, async (_req, res) => {
    if (!(await isReady(ctx))) throw databaseUnavailable();
    res.json(ok);
  });

  // Express would answer OPTIONS itself (200, text/plain): 405, as every other method gets here
  // and every operation answers OPTIONS.
  router.options(['/healthz', '/readyz'], () => {
    throw new ProblemError(405, 'method-not-allowed', 'OPTIONS method not allowed', undefined, {
      Allow: 'GET, HEAD',
    });
  });

  return router;
}
