import { Router } from 'express';
import type { Query, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { unprocessable } from '../http/problems.js';
import type { ServiceContext } from '../services/context.js';
import * as metrics from '../services/metrics.js';

export function metricsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  /** The months asked for, and what every response of both operations says about them. */
  const read = async (query: Query<'getMrrMetrics'>, actor: ReturnType<typeof actorOf>) => {
    const filter: metrics.MetricsFilter = {
      planId: query.plan_id,
      featureId: query.feature_id,
      region: query.region,
    };
    const outcome = await metrics.getMetrics(ctx, actor, filter, query);
    if (outcome.kind === 'invalid') {
      throw unprocessable(
        outcome.errors.map((e) => `${e.field} ${e.message}`).join('; ') + '.',
        outcome.errors.map((e) => ({ location: 'query' as const, ...e })),
      );
    }
    const envelope = {
      from: outcome.from,
      to: outcome.to,
      as_of: outcome.asOf.toISOString(),
      filters: {
        plan_id: query.plan_id ?? null,
        feature_id: query.feature_id ?? null,
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
