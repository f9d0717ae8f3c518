import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, unprocessable } from '../http/problems.js';
import { created, etag, noContent, ok, send } from '../http/replies.js';
import {
  toWebhookDeliveryResponse,
  toWebhookEndpointResponse,
  toWebhookEndpointWithSecretResponse,
} from '../responses/webhooks.js';
import type { ServiceContext } from '../services/context.js';
import * as endpoints from '../services/webhook-endpoints.js';
import type { UrlPolicy } from '../webhooks/ssrf.js';

const noSuchEndpoint = (id: string) => notFound(`No webhook endpoint with id ${id}.`);
const invalidUrl = (message: string) =>
  unprocessable(`The webhook URL ${message}.`, [{ location: 'body', field: '/url', message }]);
const withEtag = (endpoint: { version: number }) => ({ ETag: etag(endpoint.version) });
const toDelivery = ({ delivery, attempts }: endpoints.DeliveryWithAttempts) =>
  toWebhookDeliveryResponse(delivery, attempts);

export function webhookEndpointsRouter(ctx: ServiceContext, policy: UrlPolicy): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listWebhookEndpoints'>;
    const page = await endpoints.listWebhookEndpoints(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      status: query.status,
    });
    res.json(
      toPageResponse(
        req,
        page,
        toWebhookEndpointResponse,
        (e) => e.id,
      ) satisfies Schemas['WebhookEndpointList'],
    );
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createWebhookEndpoint'>;
    const reply = (o: endpoints.CreateEndpointOutcome) =>
      o.kind === 'created'
        ? created(
            `${req.baseUrl}/${o.endpoint.id}`,
            toWebhookEndpointWithSecretResponse(o.endpoint, o.secret),
            withEtag(o.endpoint),
          )
        : undefined;
    const outcome = await endpoints.createWebhookEndpoint(
      ctx,
      idempotent(req, actorOf(req), reply),
      { url: body.url, description: body.description, enabled_events: body.enabled_events },
      policy,
    );
    if (outcome.kind === 'invalid-url') throw invalidUrl(outcome.message);
    send(res, reply(outcome)!);
  });

  router.get('/:endpointId', async (req, res) => {
    const endpoint = await endpoints.getWebhookEndpoint(ctx, actorOf(req), req.params.endpointId);
    if (!endpoint) throw noSuchEndpoint(req.params.endpointId);
    if (notModified(req, res, endpoint.version)) return;
    send(res, ok(toWebhookEndpointResponse(endpoint), withEtag(endpoint)));
  });

  router.patch('/:endpointId', async (req, res) => {
    const body = req.body as RequestBody<'updateWebhookEndpoint'>;
    const reply = (o: endpoints.UpdateEndpointOutcome) =>
      o.kind === 'updated' ? ok(toWebhookEndpointResponse(o.endpoint), withEtag(o.endpoint)) : undefined;
    const outcome = await endpoints.updateWebhookEndpoint(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.endpointId,
      {
        url: body.url,
        description: body.description,
        enabled_events: body.enabled_events,
        status: body.status,
      },
      policy,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchEndpoint(req.params.endpointId);
    if (outcome.kind === 'stale') throw preconditionFailed('webhook endpoint', outcome.current.version);
    if (outcome.kind === 'invalid-url') throw invalidUrl(outcome.message);
    send(res, reply(outcome)!);
  });

  router.delete('/:endpointId', async (req, res) => {
    const reply = (o: endpoints.DeleteEndpointOutcome) => (o.kind === 'deleted' ? noContent() : undefined);
    const outcome = await endpoints.deleteWebhookEndpoint(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.endpointId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchEndpoint(req.params.endpointId);
    if (outcome.kind === 'stale') throw preconditionFailed('webhook endpoint', outcome.current.version);
    send(res, reply(outcome)!);
  });

  router.post('/:endpointId/rotate-secret', async (req, res) => {
    const body = (req.body ?? {}) as NonNullable<RequestBody<'rotateWebhookEndpointSecret'>>;
    const reply = (o: endpoints.RotateSecretOutcome) =>
      o.kind === 'rotated'
        ? ok(toWebhookEndpointWithSecretResponse(o.endpoint, o.secret), withEtag(o.endpoint))
        : undefined;
    const outcome = await endpoints.rotateWebhookEndpointSecret(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.endpointId,
      body.grace_period_seconds ?? endpoints.DEFAULT_GRACE_SECONDS,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchEndpoint(req.params.endpointId);
    if (outcome.kind === 'stale') throw preconditionFailed('webhook endpoint', outcome.current.version);
    send(res, reply(outcome)!);
  });

  router.get('/:endpointId/deliveries', async (req, res) => {
    const query = req.query as Query<'listWebhookDeliveries'>;
    const outcome = await endpoints.listWebhookDeliveries(ctx, actorOf(req), req.params.endpointId, {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      status: query.status,
      eventId: query.event_id,
    });
    if (outcome.kind === 'missing') throw noSuchEndpoint(req.params.endpointId);
    res.json(
      toPageResponse(
        req,
        outcome.page,
        toDelivery,
        (d) => d.delivery.id,
      ) satisfies Schemas['WebhookDeliveryList'],
    );
  });

  return router;
}

export function webhookDeliveriesRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/:deliveryId', async (req, res) => {
    const found = await endpoints.getWebhookDelivery(ctx, actorOf(req), req.params.deliveryId);
    if (!found) throw notFound(`No webhook delivery with id ${req.params.deliveryId}.`);
    res.json(toDelivery(found) satisfies Schemas['WebhookDelivery']);
  });

  router.post('/:deliveryId/retry', async (req, res) => {
    const { deliveryId } = req.params;
    const reply = (o: endpoints.RetryDeliveryOutcome) =>
      o.kind === 'queued'
        ? { status: 202, headers: {}, body: toDelivery(o.found) satisfies Schemas['WebhookDelivery'] }
        : undefined;
    const outcome = await endpoints.retryWebhookDelivery(
      ctx,
      idempotent(req, actorOf(req), reply),
      deliveryId,
    );
    if (outcome.kind === 'missing') throw notFound(`No webhook delivery with id ${deliveryId}.`);
    if (outcome.kind === 'endpoint-disabled')
      throw conflict("The delivery's endpoint is disabled: enable it (PATCH status: enabled) first.");
    if (outcome.kind === 'in-flight')
      throw conflict('An attempt of this delivery is in progress: see its outcome before retrying.');
    send(res, reply(outcome)!);
  });

  return router;
}
