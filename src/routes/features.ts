import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed } from '../http/problems.js';
import { created, etag, noContent, ok, send } from '../http/replies.js';
import { toFeatureResponse } from '../responses/features.js';
import type { ServiceContext } from '../services/context.js';
import * as features from '../services/features.js';

export const noSuchFeature = (id: string) => notFound(`No feature with id ${id}.`);
const nameTaken = () =>
  conflict('A feature with this name already exists.', [
    { location: 'body', field: '/name', message: 'already taken by another feature' },
  ]);
const stale = (current: { version: number }) => preconditionFailed('feature', current.version);
const withEtag = (feature: { version: number }) => ({ ETag: etag(feature.version) });

export function featuresRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listFeatures'>;
    const page = await features.listFeatures(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      name: query.name,
    });
    res.json(toPageResponse(req, page, toFeatureResponse, (f) => f.id) satisfies Schemas['FeatureList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createFeature'>;
    const reply = (o: features.CreateFeatureOutcome) =>
      o.kind === 'created'
        ? created(`${req.baseUrl}/${o.feature.id}`, toFeatureResponse(o.feature), withEtag(o.feature))
        : undefined;
    const outcome = await features.createFeature(ctx, idempotent(req, actorOf(req), reply), {
      name: body.name,
      description: body.description,
    });
    if (outcome.kind === 'name-taken') throw nameTaken();
    send(res, reply(outcome)!);
  });

  router.get('/:featureId', async (req, res) => {
    const feature = await features.getFeature(ctx, actorOf(req), req.params.featureId);
    if (!feature) throw noSuchFeature(req.params.featureId);
    if (notModified(req, res, feature.version)) return;
    send(res, ok(toFeatureResponse(feature), withEtag(feature)));
  });

  router.patch('/:featureId', async (req, res) => {
    const body = req.body as RequestBody<'updateFeature'>;
    const reply = (o: features.UpdateFeatureOutcome) =>
      o.kind === 'updated' ? ok(toFeatureResponse(o.feature), withEtag(o.feature)) : undefined;
    const outcome = await features.updateFeature(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.featureId,
      { name: body.name, description: body.description },
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchFeature(req.params.featureId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'name-taken') throw nameTaken();
    send(res, reply(outcome)!);
  });

  router.delete('/:featureId', async (req, res) => {
    const reply = (o: features.DeleteFeatureOutcome) => (o.kind === 'deleted' ? noContent() : undefined);
    const outcome = await features.deleteFeature(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.featureId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchFeature(req.params.featureId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'linked') {
      throw conflict('The feature is linked to subscriptions; unlink it from them first.');
    }
    send(res, reply(outcome)!);
  });

  return router;
}
