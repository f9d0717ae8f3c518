import { Router } from 'express';
import { inTenant } from '../auth/authenticate.js';
import { findDifferences, rebuildAggregates } from '../analytics/maintenance.js';
import { readAnalytics } from '../analytics/metrics.js';
import type { Query, Schemas } from '../contract.js';
import type { Db } from '../db.js';

const consistency = (
  differences: Schemas['AnalyticsConsistency']['differences'],
): Schemas['AnalyticsConsistency'] => ({ consistent: differences.length === 0, differences });

const today = () => new Date().toISOString().slice(0, 10); // UTC

export function analyticsRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'getAnalytics'>;
    const params = { asOf: query.as_of ?? today(), months: query.months ?? 12, top: query.top ?? 5 };
    res.json(await inTenant(db, req, (trx) => readAnalytics(trx, params)));
  });

  router.get('/consistency', async (req, res) => {
    res.json(consistency(await inTenant(db, req, (trx) => findDifferences(trx))));
  });

  router.post('/rebuild', async (req, res) => {
    // The check runs in the rebuild's transaction, while its lock still keeps writers out.
    const differences = await inTenant(db, req, async (trx) => {
      await rebuildAggregates(trx);
      return findDifferences(trx);
    });
    res.json(consistency(differences));
  });

  return router;
}
