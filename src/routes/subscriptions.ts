import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { notFound, unprocessable } from '../http/problems.js';
import { toFeatureResponse } from '../responses/features.js';
import { toSubscriptionResponse } from '../responses/subscriptions.js';
import type { ServiceContext } from '../services/context.js';
import * as subscriptions from '../services/subscriptions.js';
import { noSuchFeature } from './features.js';

const noSuchSubscription = (id: string) => notFound(`No subscription with id ${id}.`);
const endBeforeStart = () =>
  unprocessable('end_date must be on or after start_date.', [
    { location: 'body', field: '/end_date', message: 'must be on or after start_date' },
  ]);
const withFeatures = ({ subscription, features }: subscriptions.WithFeatures) =>
  toSubscriptionResponse(subscription, features);

export function subscriptionsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listSubscriptions'>;
    const page = await subscriptions.listSubscriptions(
      ctx,
      actorOf(req),
      {
        limit: query.limit ?? 20,
        after: decodeCursor(query.cursor),
        userId: query.user_id,
        statuses: query.status,
        startDateGte: query.start_date_gte,
        startDateLte: query.start_date_lte,
      },
      query.include === 'features',
    );
    res.json(
      toPageResponse(page, withFeatures, (s) => s.subscription.id) satisfies Schemas['SubscriptionList'],
    );
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createSubscription'>;
    const outcome = await subscriptions.createSubscription(ctx, actorOf(req), {
      user_id: body.user_id,
      status: body.status,
      plan_cost: body.plan_cost,
      billing_interval: body.billing_interval,
      start_date: body.start_date,
      end_date: body.end_date ?? null,
    });
    if (outcome.kind === 'unknown-user') {
      throw unprocessable('user_id does not refer to an existing user.', [
        { location: 'body', field: '/user_id', message: 'no such user' },
      ]);
    }
    if (outcome.kind === 'end-before-start') throw endBeforeStart();
    res
      .status(201)
      .location(`${req.baseUrl}/${outcome.subscription.id}`)
      .json(toSubscriptionResponse(outcome.subscription));
  });

  router.get('/:subscriptionId', async (req, res) => {
    const { subscriptionId } = req.params;
    const { include } = req.query as Query<'getSubscription'>;
    const found = await subscriptions.getSubscription(
      ctx,
      actorOf(req),
      subscriptionId,
      include === 'features',
    );
    if (!found) throw noSuchSubscription(subscriptionId);
    res.json(withFeatures(found));
  });

  router.patch('/:subscriptionId', async (req, res) => {
    const body = req.body as RequestBody<'updateSubscription'>;
    const outcome = await subscriptions.updateSubscription(ctx, actorOf(req), req.params.subscriptionId, {
      status: body.status,
      plan_cost: body.plan_cost,
      billing_interval: body.billing_interval,
      start_date: body.start_date,
      end_date: body.end_date,
    });
    if (outcome.kind === 'missing') throw noSuchSubscription(req.params.subscriptionId);
    if (outcome.kind === 'end-before-start') throw endBeforeStart();
    res.json(toSubscriptionResponse(outcome.subscription));
  });

  router.delete('/:subscriptionId', async (req, res) => {
    const { subscriptionId } = req.params;
    if (!(await subscriptions.deleteSubscription(ctx, actorOf(req), subscriptionId))) {
      throw noSuchSubscription(subscriptionId);
    }
    res.status(204).end();
  });

  router.get('/:subscriptionId/features', async (req, res) => {
    const { subscriptionId } = req.params;
    const features = await subscriptions.listSubscriptionFeatures(ctx, actorOf(req), subscriptionId);
    if (!features) throw noSuchSubscription(subscriptionId);
    res.json({ data: features.map(toFeatureResponse) } satisfies Schemas['FeatureCollection']);
  });

  router.put('/:subscriptionId/features/:featureId', async (req, res) => {
    const { subscriptionId, featureId } = req.params;
    const outcome = await subscriptions.linkFeature(ctx, actorOf(req), subscriptionId, featureId);
    if (outcome.kind === 'no-feature') throw noSuchFeature(featureId);
    if (outcome.kind === 'no-subscription') throw noSuchSubscription(subscriptionId);
    res.status(outcome.kind === 'linked' ? 201 : 200).json(toFeatureResponse(outcome.feature));
  });

  router.delete('/:subscriptionId/features/:featureId', async (req, res) => {
    const { subscriptionId, featureId } = req.params;
    if (!(await subscriptions.unlinkFeature(ctx, actorOf(req), subscriptionId, featureId))) {
      throw notFound(
        `Subscription ${subscriptionId} is not linked to feature ${featureId}, or either does not exist.`,
      );
    }
    res.status(204).end();
  });

  return router;
}
