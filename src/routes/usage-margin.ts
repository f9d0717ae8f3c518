import { Router } from 'express';
import type { Query } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { badRequest } from '../http/problems.js';
import type { ServiceContext } from '../services/context.js';
import * as margins from '../services/usage-margin.js';

/** Mounted at /api/v1/reports, next to the taxes report. */
export function usageMarginRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/usage-margin', async (req, res) => {
    const query = req.query as Query<'getUsageMarginReport'>;
    const outcome = await margins.getUsageMarginReport(ctx, actorOf(req), {
      from: query.from,
      to: query.to,
      groupBy: query.group_by ?? 'metric',
    });
    if (outcome.kind === 'bad-range') {
      throw badRequest(`to ${outcome.message}.`, [
        { location: 'query', field: 'to', message: outcome.message },
      ]);
    }
    res.json(outcome.report);
  });
  return router;
}
