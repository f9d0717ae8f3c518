import { Router } from 'express';
import type { Query, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { badRequest } from '../http/problems.js';
import type { ServiceContext } from '../services/context.js';
import * as metrics from '../services/metrics.js';

export function metricsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  /** The months asked for, and what every response of both operations says about them. */
  const read = async (query: Query<'getMrrMetrics'>, actor: ReturnType<typeof actorOf>) => {
    // Ids are taken in lower case, as they are stored and shown: the filters echo them so.
    const planId = query.plan_id?.toLowerCase();
    const featureId = query.feature_id?.toLowerCase();
    const filter: metrics.MetricsFilter = { planId, featureId, region: query.region };
    const outcome = await metrics.getMetrics(ctx, actor, filter, query);
    if (outcome.kind === 'invalid') {
      // A query that cannot be answered as asked: 400, as the reports' and analytics' windows.
      throw badRequest(
        outcome.errors.map((e) => `${e.field} ${e.message}`).join('; ') + '.',
        outcome.errors.map((e) => ({ location: 'query' as const, ...e })),
      );
    }
    const envelope = {
      from: outcome.from,
      to: outcome.to,
      as_of: outcome.asOf.toISOString(),
      filters: {
        plan_id: planId ?? null,
        feature_id: featureId ?? null,
        region: query.region ?? null,
      },
    };
    return { envelope, months: outcome.months };
  };

  router.get('/mrr', async (req, res) => {
    const { envelope, months } = await read(req.query, actorOf(req));
    const body: Schemas['MrrMetrics'] = { ...envelope, months: months.mrr };
    res.json(body);
  });
  router.get('/churn', async (req, res) => {
    const { envelope, months } = await read(req.query, actorOf(req));
    const body: Schemas['ChurnMetrics'] = { ...envelope, months: months.churn };
    res.json(body);
  });

  return router;
}
