import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { inTenant } from '../auth/authenticate.js';
import type { Db } from '../db.js';
import { conflict, isPgError, notFound } from '../errors.js';
import { decodeCursor, toPage } from '../pagination.js';
import * as features from '../queries/features.js';
import type { FeatureRow } from '../schema.js';

export function toFeatureResponse(row: FeatureRow): Schemas['Feature'] {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export const noSuchFeature = (id: string) => notFound(`No feature with id ${id}.`);

export function featuresRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listFeatures'>;
    const limit = query.limit ?? 20;
    const rows = await inTenant(db, req, (trx) =>
      features.listFeatures(trx, {
        limit,
        after: decodeCursor(query.cursor),
        name: query.name,
      }),
    );
    res.json(toPage(rows, limit, toFeatureResponse) satisfies Schemas['FeatureList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createFeature'>;
    const feature = await inTenant(db, req, (trx) =>
      features.insertFeature(trx, { name: body.name, description: body.description }),
    );
    res.status(201).location(`${req.baseUrl}/${feature.id}`).json(toFeatureResponse(feature));
  });

  router.get('/:featureId', async (req, res) => {
    const feature = await inTenant(db, req, (trx) => features.findFeature(trx, req.params.featureId));
    if (!feature) throw noSuchFeature(req.params.featureId);
    res.json(toFeatureResponse(feature));
  });

  router.patch('/:featureId', async (req, res) => {
    const body = req.body as RequestBody<'updateFeature'>;
    const feature = await inTenant(db, req, (trx) =>
      features.updateFeature(trx, req.params.featureId, {
        name: body.name,
        description: body.description,
      }),
    );
    if (!feature) throw noSuchFeature(req.params.featureId);
    res.json(toFeatureResponse(feature));
  });

  router.delete('/:featureId', async (req, res) => {
    try {
      if (!(await inTenant(db, req, (trx) => features.deleteFeature(trx, req.params.featureId))))
        throw noSuchFeature(req.params.featureId);
    } catch (error) {
      if (isPgError(error, '23503')) {
        throw conflict('The feature is linked to subscriptions; unlink it from them first.');
      }
      throw error;
    }
    res.status(204).end();
  });

  return router;
}
