import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { conflict, notFound } from '../http/problems.js';
import { toFeatureResponse } from '../responses/features.js';
import type { ServiceContext } from '../services/context.js';
import * as features from '../services/features.js';

export const noSuchFeature = (id: string) => notFound(`No feature with id ${id}.`);
const nameTaken = () =>
  conflict('A feature with this name already exists.', [
    { location: 'body', field: '/name', message: 'already taken by another feature' },
  ]);

export function featuresRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listFeatures'>;
    const page = await features.listFeatures(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(query.cursor),
      name: query.name,
    });
    res.json(toPageResponse(page, toFeatureResponse, (f) => f.id) satisfies Schemas['FeatureList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createFeature'>;
    const outcome = await features.createFeature(ctx, actorOf(req), {
      name: body.name,
      description: body.description,
    });
    if (outcome.kind === 'name-taken') throw nameTaken();
    res.status(201).location(`${req.baseUrl}/${outcome.feature.id}`).json(toFeatureResponse(outcome.feature));
  });

  router.get('/:featureId', async (req, res) => {
    const feature = await features.getFeature(ctx, actorOf(req), req.params.featureId);
    if (!feature) throw noSuchFeature(req.params.featureId);
    res.json(toFeatureResponse(feature));
  });

  router.patch('/:featureId', async (req, res) => {
    const body = req.body as RequestBody<'updateFeature'>;
    const outcome = await features.updateFeature(ctx, actorOf(req), req.params.featureId, {
      name: body.name,
      description: body.description,
    });
    if (outcome.kind === 'missing') throw noSuchFeature(req.params.featureId);
    if (outcome.kind === 'name-taken') throw nameTaken();
    res.json(toFeatureResponse(outcome.feature));
  });

  router.delete('/:featureId', async (req, res) => {
    const outcome = await features.deleteFeature(ctx, actorOf(req), req.params.featureId);
    if (outcome.kind === 'missing') throw noSuchFeature(req.params.featureId);
    if (outcome.kind === 'linked') {
      throw conflict('The feature is linked to subscriptions; unlink it from them first.');
    }
    res.status(204).end();
  });

  return router;
}
