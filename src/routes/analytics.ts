import { Router } from 'express';
import type { Query, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { badRequest } from '../http/problems.js';
import { ok, send } from '../http/replies.js';
import * as analytics from '../services/analytics.js';
import type { ServiceContext } from '../services/context.js';

const consistency = (
  differences: Schemas['AnalyticsConsistency']['differences'],
): Schemas['AnalyticsConsistency'] => ({ consistent: differences.length === 0, differences });

const today = () => new Date().toISOString().slice(0, 10); // UTC

export function analyticsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'getAnalytics'>;
    const params = { asOf: query.as_of ?? today(), months: query.months ?? 12, top: query.top ?? 5 };
    const outcome = await analytics.getAnalytics(ctx, actorOf(req), params);
    if (outcome.kind === 'window-before-year-1') {
      const message =
        'the months of the window, ending with the month of as_of, must start in year 1 or later';
      throw badRequest(`${message}.`, [
        { location: 'query', field: 'as_of', message },
        { location: 'query', field: 'months', message },
      ]);
    }
    res.json(outcome.analytics);
  });

  router.get('/consistency', async (req, res) => {
    res.json(consistency(await analytics.checkConsistency(ctx, actorOf(req))));
  });

  router.post('/rebuild', async (req, res) => {
    const reply = (differences: Schemas['AnalyticsConsistency']['differences']) =>
      ok(consistency(differences));
    send(res, reply(await analytics.rebuild(ctx, idempotent(req, actorOf(req), reply))));
  });

  return router;
}
