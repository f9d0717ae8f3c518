import { Router } from 'express';
import { sql } from 'kysely';
import type { Schemas } from '../contract.js';
import type { Db } from '../db.js';
import { databaseUnavailable } from '../errors.js';

export function healthRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });
  const ok: Schemas['Health'] = { status: 'ok' };

  // Liveness never touches the database: a slow database must not get the process restarted.
  router.get('/healthz', (_req, res) => {
    res.json(ok);
  });

  router.get('/readyz', async (_req, res) => {
    try {
      await sql`select 1`.execute(db);
    } catch {
      throw databaseUnavailable();
    }
    res.json(ok);
  });

  return router;
}
