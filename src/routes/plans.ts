import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, unprocessable } from '../http/problems.js';
import { created, etag, noContent, ok, send } from '../http/replies.js';
import { toPlanResponse } from '../responses/plans.js';
import type { ServiceContext } from '../services/context.js';
import * as plans from '../services/plans.js';

const noSuchPlan = (id: string) => notFound(`No plan with id ${id}.`);
const codeTaken = () =>
  conflict('A plan with this code already exists.', [
    { location: 'body', field: '/code', message: 'already taken' },
  ]);
const invalidPrice = (errors: Array<{ field: string; message: string }>) =>
  unprocessable(
    `The price is not valid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
    errors.map((e) => ({ location: 'body' as const, ...e })),
  );
const invalidCharges = (errors: Array<{ field: string; message: string }>) =>
  unprocessable(
    `The usage charges are not valid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
    errors.map((e) => ({ location: 'body' as const, ...e })),
  );
const withEtag = (plan: { version: number }) => ({ ETag: etag(plan.version) });
const toResponse = ({ plan, price }: plans.PlanWithPrice) => toPlanResponse(plan, price);

export function plansRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listPlans'>;
    const page = await plans.listPlans(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      code: query.code,
      archived: query.archived,
    });
    res.json(toPageResponse(req, page, toResponse, (p) => p.plan.id) satisfies Schemas['PlanList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createPlan'>;
    const reply = (o: plans.CreatePlanOutcome) =>
      o.kind === 'created'
        ? created(`${req.baseUrl}/${o.plan.plan.id}`, toResponse(o.plan), withEtag(o.plan.plan))
        : undefined;
    const outcome = await plans.createPlan(ctx, idempotent(req, actorOf(req), reply), {
      code: body.code,
      name: body.name,
      interval: body.interval,
      interval_count: body.interval_count,
      price: { model: body.price.model, amount: body.price.amount, tiers: body.price.tiers },
      usage_charges: body.usage_charges,
      trial_days: body.trial_days,
    });
    if (outcome.kind === 'code-taken') throw codeTaken();
    if (outcome.kind === 'invalid-charges') throw invalidCharges(outcome.errors);
    if (outcome.kind === 'invalid-price')
      throw invalidPrice(outcome.errors.map((e) => ({ ...e, field: `/price${e.field}` })));
    send(res, reply(outcome)!);
  });

  router.get('/:planId', async (req, res) => {
    const plan = await plans.getPlan(ctx, actorOf(req), req.params.planId);
    if (!plan) throw noSuchPlan(req.params.planId);
    if (notModified(req, res, plan.plan.version)) return;
    send(res, ok(toResponse(plan), withEtag(plan.plan)));
  });

  router.patch('/:planId', async (req, res) => {
    const body = req.body as RequestBody<'updatePlan'>;
    const reply = (o: plans.UpdatePlanOutcome) =>
      o.kind === 'updated' ? ok(toResponse(o.plan), withEtag(o.plan.plan)) : undefined;
    const outcome = await plans.updatePlan(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.planId,
      {
        code: body.code,
        name: body.name,
        archived: body.archived,
        price: body.price && { model: body.price.model, amount: body.price.amount, tiers: body.price.tiers },
        usage_charges: body.usage_charges,
        trial_days: body.trial_days,
      },
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchPlan(req.params.planId);
    if (outcome.kind === 'stale') throw preconditionFailed('plan', outcome.current.version);
    if (outcome.kind === 'code-taken') throw codeTaken();
    if (outcome.kind === 'invalid-price') throw invalidPrice(outcome.errors);
    if (outcome.kind === 'invalid-charges') throw invalidCharges(outcome.errors);
    send(res, reply(outcome)!);
  });

  router.delete('/:planId', async (req, res) => {
    const reply = (o: plans.DeletePlanOutcome) => (o.kind === 'deleted' ? noContent() : undefined);
    const outcome = await plans.deletePlan(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.planId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchPlan(req.params.planId);
    if (outcome.kind === 'stale') throw preconditionFailed('plan', outcome.current.version);
    if (outcome.kind === 'in-use') {
      throw conflict(
        'Subscriptions are on this plan: archive it instead (PATCH archived: true), which refuses new ones.',
      );
    }
    if (outcome.kind === 'coupon-limited') {
      throw conflict(
        `Coupon ${outcome.couponId} is limited to this plan: delete the coupon first, or archive the plan instead (PATCH archived: true).`,
      );
    }
    send(res, reply(outcome)!);
  });

  router.post('/:planId/quote', async (req, res) => {
    const { quantity } = req.body as RequestBody<'quotePlan'>;
    const outcome = await plans.quotePlan(ctx, actorOf(req), req.params.planId, quantity);
    if (outcome.kind === 'missing') throw noSuchPlan(req.params.planId);
    res.json({
      plan_id: outcome.plan.plan.id,
      price_version: outcome.plan.price.number,
      quantity: outcome.quantity,
      amount: outcome.quote.amount,
      breakdown: outcome.quote.breakdown,
    } satisfies Schemas['Quote']);
  });

  return router;
}
