import { Router } from 'express';
import { inTenant } from '../auth/authenticate.js';
import { findDifferences, rebuildAggregates } from '../analytics/maintenance.js';
import { readAnalytics } from '../analytics/metrics.js';
import type { Query, Schemas } from '../contract.js';
import type { Db } from '../db.js';

const today = () => new Date().toISOString().slice(0, 10); // UTC

export function analyticsRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'getAnalytics'>;
    const params = { asOf: query.as_of ?? today(), months: query.months ?? 12, top: query.top ?? 5 };
    res.json(await inTenant(db, req, (trx) => readAnalytics(trx, params)));
  });

  router.get('/consistency', async (req, res) => {
    const differences = await inTenant(db, req, (trx) => findDifferences(trx));
    res.json({ consistent: differences.length === 0, differences } satisfies Schemas['AnalyticsConsistency']);
  });

  router.post('/rebuild', async (req, res) => {
    await inTenant(db, req, (trx) => rebuildAggregates(trx));
    const differences = await inTenant(db, req, (trx) => findDifferences(trx));
    res.json({ consistent: differences.length === 0, differences } satisfies Schemas['AnalyticsConsistency']);
  });

  return router;
}
