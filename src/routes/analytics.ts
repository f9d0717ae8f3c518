import { Router } from 'express';
import { inTenant } from '../auth/authenticate.js';
import { findDifferences, rebuildAggregates } from '../analytics/maintenance.js';
import { readAnalytics } from '../analytics/metrics.js';
import type { Query, Schemas } from '../contract.js';
import type { Db } from '../db.js';
import { ProblemError } from '../errors.js';

const consistency = (
  differences: Schemas['AnalyticsConsistency']['differences'],
): Schemas['AnalyticsConsistency'] => ({ consistent: differences.length === 0, differences });

const today = () => new Date().toISOString().slice(0, 10); // UTC

/** The window of months must not reach before January of year 1, which has no 'YYYY-MM' label. */
function checkWindow(asOf: string, months: number): void {
  const [year = 0, month = 0] = asOf.split('-').map(Number);
  if (year * 12 + (month - 1) - (months - 1) >= 12) return;
  const message = 'the months of the window, ending with the month of as_of, must start in year 1 or later';
  throw new ProblemError(400, 'validation-error', `${message}.`, [
    { location: 'query', field: 'as_of', message },
    { location: 'query', field: 'months', message },
  ]);
}

export function analyticsRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'getAnalytics'>;
    const params = { asOf: query.as_of ?? today(), months: query.months ?? 12, top: query.top ?? 5 };
    checkWindow(params.asOf, params.months);
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
