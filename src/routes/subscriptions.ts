import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { inTenant } from '../auth/authenticate.js';
import type { Db } from '../db.js';
import { isPgError, notFound, unprocessable } from '../errors.js';
import { decodeCursor, toPage } from '../pagination.js';
import { findFeature } from '../queries/features.js';
import * as subscriptions from '../queries/subscriptions.js';
import type { FeatureRow, SubscriptionRow } from '../schema.js';
import { noSuchFeature, toFeatureResponse } from './features.js';

export function toSubscriptionResponse(
  row: SubscriptionRow,
  features?: FeatureRow[],
): Schemas['Subscription'] {
  return {
    id: row.id,
    user_id: row.user_id,
    status: row.status,
    plan_cost: row.plan_cost,
    billing_interval: row.billing_interval,
    start_date: row.start_date,
    end_date: row.end_date,
    canceled_at: row.canceled_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(features ? { features: features.map(toFeatureResponse) } : {}),
  };
}

const noSuchSubscription = (id: string) => notFound(`No subscription with id ${id}.`);

export function subscriptionsRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listSubscriptions'>;
    const limit = query.limit ?? 20;
    const { rows, features } = await inTenant(db, req, async (trx) => {
      const rows = await subscriptions.listSubscriptions(trx, {
        limit,
        after: decodeCursor(query.cursor),
        userId: query.user_id,
        statuses: query.status,
        startDateGte: query.start_date_gte,
        startDateLte: query.start_date_lte,
      });
      const ids = rows.slice(0, limit).map((r) => r.id);
      const features =
        query.include === 'features' ? await subscriptions.featuresOfSubscriptions(trx, ids) : undefined;
      return { rows, features };
    });
    const page = toPage(rows, limit, (row) =>
      toSubscriptionResponse(row, features && (features.get(row.id) ?? [])),
    );
    res.json(page satisfies Schemas['SubscriptionList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createSubscription'>;
    try {
      const row = await inTenant(db, req, (trx) =>
        subscriptions.insertSubscription(trx, {
          user_id: body.user_id,
          status: body.status,
          plan_cost: body.plan_cost,
          billing_interval: body.billing_interval,
          start_date: body.start_date,
          end_date: body.end_date ?? null,
        }),
      );
      res.status(201).location(`${req.baseUrl}/${row.id}`).json(toSubscriptionResponse(row));
    } catch (error) {
      // The foreign key includes tenant_id, so another tenant's user is as unknown as a missing one.
      if (isPgError(error, '23503')) {
        throw unprocessable('user_id does not refer to an existing user.', [
          { location: 'body', field: '/user_id', message: 'no such user' },
        ]);
      }
      throw error;
    }
  });

  router.get('/:subscriptionId', async (req, res) => {
    const { subscriptionId } = req.params;
    const { include } = req.query as Query<'getSubscription'>;
    const found = await inTenant(db, req, async (trx) => {
      const row = await subscriptions.findSubscription(trx, subscriptionId);
      if (!row || include !== 'features') return { row };
      return {
        row,
        features: (await subscriptions.featuresOfSubscriptions(trx, [row.id])).get(row.id) ?? [],
      };
    });
    if (!found.row) throw noSuchSubscription(subscriptionId);
    res.json(toSubscriptionResponse(found.row, found.features));
  });

  router.patch('/:subscriptionId', async (req, res) => {
    const body = req.body as RequestBody<'updateSubscription'>;
    const row = await inTenant(db, req, (trx) =>
      subscriptions.updateSubscription(trx, req.params.subscriptionId, {
        status: body.status,
        plan_cost: body.plan_cost,
        billing_interval: body.billing_interval,
        start_date: body.start_date,
        end_date: body.end_date,
      }),
    );
    if (!row) throw noSuchSubscription(req.params.subscriptionId);
    res.json(toSubscriptionResponse(row));
  });

  router.delete('/:subscriptionId', async (req, res) => {
    const { subscriptionId } = req.params;
    if (!(await inTenant(db, req, (trx) => subscriptions.deleteSubscription(trx, subscriptionId)))) {
      throw noSuchSubscription(subscriptionId);
    }
    res.status(204).end();
  });

  router.get('/:subscriptionId/features', async (req, res) => {
    const { subscriptionId } = req.params;
    const features = await inTenant(db, req, async (trx) => {
      if (!(await subscriptions.findSubscription(trx, subscriptionId))) return undefined;
      return (await subscriptions.featuresOfSubscriptions(trx, [subscriptionId])).get(subscriptionId) ?? [];
    });
    if (!features) throw noSuchSubscription(subscriptionId);
    res.json({ data: features.map(toFeatureResponse) } satisfies Schemas['FeatureCollection']);
  });

  router.put('/:subscriptionId/features/:featureId', async (req, res) => {
    const { subscriptionId, featureId } = req.params;
    const { feature, outcome } = await inTenant(db, req, async (trx) => {
      const feature = await findFeature(trx, featureId);
      return {
        feature,
        outcome: feature && (await subscriptions.linkFeature(trx, subscriptionId, featureId)),
      };
    });
    if (!feature) throw noSuchFeature(featureId);
    if (outcome === 'missing') throw noSuchSubscription(subscriptionId);
    res.status(outcome === 'created' ? 201 : 200).json(toFeatureResponse(feature));
  });

  router.delete('/:subscriptionId/features/:featureId', async (req, res) => {
    const { subscriptionId, featureId } = req.params;
    if (!(await inTenant(db, req, (trx) => subscriptions.unlinkFeature(trx, subscriptionId, featureId)))) {
      throw notFound(
        `Subscription ${subscriptionId} is not linked to feature ${featureId}, or either does not exist.`,
      );
    }
    res.status(204).end();
  });

  return router;
}
