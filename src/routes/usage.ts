import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, unprocessable } from '../http/problems.js';
import { created, etag, noContent, ok, send } from '../http/replies.js';
import { toBillableMetricResponse, toUsageEventResponse } from '../responses/usage.js';
import * as billableMetrics from '../services/billable-metrics.js';
import type { ServiceContext } from '../services/context.js';
import * as usage from '../services/usage.js';

const noSuchMetric = (id: string) => notFound(`No billable metric with id ${id}.`);
const withEtag = (metric: { version: number }) => ({ ETag: etag(metric.version) });

export function billableMetricsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listBillableMetrics'>;
    const page = await billableMetrics.listBillableMetrics(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      code: query.code,
      archived: query.archived,
    });
    res.json(
      toPageResponse(
        req,
        page,
        toBillableMetricResponse,
        (m) => m.id,
      ) satisfies Schemas['BillableMetricList'],
    );
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createBillableMetric'>;
    const reply = (o: billableMetrics.CreateBillableMetricOutcome) =>
      o.kind === 'created'
        ? created(`${req.baseUrl}/${o.metric.id}`, toBillableMetricResponse(o.metric), withEtag(o.metric))
        : undefined;
    const outcome = await billableMetrics.createBillableMetric(ctx, idempotent(req, actorOf(req), reply), {
      code: body.code,
      name: body.name,
      aggregation: body.aggregation,
      field: body.field,
      group_by: body.group_by,
      filters: body.filters,
    });
    if (outcome.kind === 'code-taken') {
      throw conflict('A billable metric with this code already exists.', [
        { location: 'body', field: '/code', message: 'already taken' },
      ]);
    }
    if (outcome.kind === 'invalid') {
      throw unprocessable(
        `The metric is not valid: ${outcome.errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
        outcome.errors.map((e) => ({ location: 'body' as const, ...e })),
      );
    }
    send(res, reply(outcome)!);
  });

  router.get('/:billableMetricId', async (req, res) => {
    const metric = await billableMetrics.getBillableMetric(ctx, actorOf(req), req.params.billableMetricId);
    if (!metric) throw noSuchMetric(req.params.billableMetricId);
    if (notModified(req, res, metric.version)) return;
    send(res, ok(toBillableMetricResponse(metric), withEtag(metric)));
  });

  router.patch('/:billableMetricId', async (req, res) => {
    const body = req.body as RequestBody<'updateBillableMetric'>;
    const reply = (o: billableMetrics.UpdateBillableMetricOutcome) =>
      o.kind === 'updated' ? ok(toBillableMetricResponse(o.metric), withEtag(o.metric)) : undefined;
    const outcome = await billableMetrics.updateBillableMetric(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.billableMetricId,
      { name: body.name, archived: body.archived },
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchMetric(req.params.billableMetricId);
    if (outcome.kind === 'stale') throw preconditionFailed('billable metric', outcome.current.version);
    send(res, reply(outcome)!);
  });

  router.delete('/:billableMetricId', async (req, res) => {
    const reply = (o: billableMetrics.DeleteBillableMetricOutcome) =>
      o.kind === 'deleted' ? noContent() : undefined;
    const outcome = await billableMetrics.deleteBillableMetric(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.billableMetricId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchMetric(req.params.billableMetricId);
    if (outcome.kind === 'stale') throw preconditionFailed('billable metric', outcome.current.version);
    if (outcome.kind === 'in-use') {
      throw conflict(
        'The metric has usage events, is or was charged by a plan, or is named by a wallet hold (for its margin): archive it instead (PATCH archived: true).',
      );
    }
    send(res, reply(outcome)!);
  });

  return router;
}

type EventBody = RequestBody<'createUsageEvent'>;

const toInput = (e: EventBody): usage.UsageEventInput => ({
  event_id: e.event_id,
  user_id: e.user_id,
  external_customer_id: e.external_customer_id,
  subscription_id: e.subscription_id,
  metric: e.metric,
  timestamp: e.timestamp,
  properties: e.properties,
  cost: e.cost,
});

const invalidEvents = (errors: usage.EventError[], batch: boolean) =>
  unprocessable(
    batch
      ? `${new Set(errors.map((e) => e.index)).size} event(s) of the batch break a rule; nothing was recorded: ${errors
          .slice(0, 5)
          .map((e) => `events[${e.index}]${e.field} ${e.message}`)
          .join('; ')}${errors.length > 5 ? '; …' : ''}.`
      : `The event breaks a rule; it was not recorded: ${errors.map((e) => (e.field ? `${e.field} ${e.message}` : e.message)).join('; ')}.`,
    errors.map((e) => ({
      location: 'body' as const,
      field: batch ? `/events/${e.index}${e.field}` : e.field,
      message: e.message,
    })),
  );

export function usageEventsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listUsageEvents'>;
    const page = await usage.listUsageEvents(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      userId: query.user_id,
      subscriptionId: query.subscription_id,
      metric: query.metric,
      eventId: query.event_id,
      from: query.from === undefined ? undefined : new Date(query.from),
      to: query.to === undefined ? undefined : new Date(query.to),
    });
    res.json(
      toPageResponse(
        req,
        page,
        (r) => toUsageEventResponse(r.event, r.metric),
        (r) => r.event.id,
      ) satisfies Schemas['UsageEventList'],
    );
  });

  router.post('/', async (req, res) => {
    const outcome = await usage.recordUsageEvent(ctx, actorOf(req), toInput(req.body as EventBody));
    if (outcome.kind === 'invalid') throw invalidEvents(outcome.errors, false);
    const { result } = outcome;
    const body = toUsageEventResponse(result.event, result.metric);
    send(res, result.status === 'created' ? created(`${req.baseUrl}/${body.id}`, body) : ok(body));
  });

  router.post('/batch', async (req, res) => {
    const { events } = req.body as RequestBody<'createUsageEvents'>;
    const outcome = await usage.recordUsageEvents(ctx, actorOf(req), events.map(toInput));
    if (outcome.kind === 'invalid') throw invalidEvents(outcome.errors, true);
    const data = outcome.results.map((r, index) => ({
      index,
      status: r.status,
      event: toUsageEventResponse(r.event, r.metric),
    }));
    res.json({
      created: data.filter((d) => d.status === 'created').length,
      duplicates: data.filter((d) => d.status === 'duplicate').length,
      data,
    } satisfies Schemas['UsageEventBatchResult']);
  });

  router.get('/:usageEventId', async (req, res) => {
    const found = await usage.getUsageEvent(ctx, actorOf(req), req.params.usageEventId);
    if (!found) throw notFound(`No usage event with id ${req.params.usageEventId}.`);
    res.json(toUsageEventResponse(found.event, found.metric) satisfies Schemas['UsageEvent']);
  });

  return router;
}

/** GET /subscriptions/{id}/usage (mounted under /api/v1/subscriptions). */
export function subscriptionUsageRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/:subscriptionId/usage', async (req, res) => {
    const query = req.query as Query<'getSubscriptionUsage'>;
    const outcome = await usage.getSubscriptionUsage(
      ctx,
      actorOf(req),
      req.params.subscriptionId,
      query.period_start,
    );
    if (outcome.kind === 'missing') throw notFound(`No subscription with id ${req.params.subscriptionId}.`);
    if (outcome.kind === 'never-billed') {
      const message = `the usage of the period ${outcome.period.start} to ${outcome.period.end} is never billed: this subscription's usage is billed from ${outcome.billedFrom}, and events before that day are refused`;
      throw unprocessable(`Usage not billed: ${message}.`, [
        { location: 'query', field: 'period_start', message },
      ]);
    }
    if (outcome.kind === 'no-such-period') {
      throw unprocessable(`No such billing period: ${outcome.message}.`, [
        { location: 'query', field: 'period_start', message: outcome.message },
      ]);
    }
    res.json({
      subscription_id: outcome.subscription.id,
      period_start: outcome.period.start,
      period_end: outcome.period.end,
      trial: outcome.trial,
      invoiced: outcome.invoiced,
      charges: outcome.charges.map((c) => ({
        metric: c.charge.metric,
        billable_metric_id: c.charge.billable_metric_id,
        dimension_value: c.charge.dimension_value,
        aggregation: c.aggregation,
        quantity: c.quantity,
        billable_quantity: c.billable_quantity,
        amount: c.amount,
        breakdown: c.breakdown,
      })),
      amount: outcome.amount,
    } satisfies Schemas['SubscriptionUsage']);
  });
  return router;
}
