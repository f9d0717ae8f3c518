import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, ProblemError, unprocessable } from '../http/problems.js';
import { created, etag, noContent, ok, send } from '../http/replies.js';
import { toFeatureResponse } from '../responses/features.js';
import {
  amountDue,
  toInvoiceItemResponse,
  toInvoiceResponse,
  toUpcomingInvoiceResponse,
} from '../responses/invoices.js';
import { toSubscriptionResponse } from '../responses/subscriptions.js';
import type { ServiceContext } from '../services/context.js';
import type { ProrationRefusal } from '../services/prorations.js';
import {
  cancelScheduledChange,
  type ScheduleOutcome,
  scheduleChange,
} from '../services/scheduled-changes.js';
import * as coupons from '../services/coupons.js';
import * as invoices from '../services/invoices.js';
import * as pauses from '../services/pauses.js';
import * as subscriptions from '../services/subscriptions.js';
import { upcomingInvoice } from '../services/upcoming-invoice.js';
import { listEventsPage } from './events.js';
import { oneOffProblem, zeroAmounts } from './invoices.js';
import { noSuchFeature } from './features.js';

const noSuchSubscription = (id: string) => notFound(`No subscription with id ${id}.`);
const endBeforeStart = () =>
  unprocessable('end_date must be on or after start_date.', [
    { location: 'body', field: '/end_date', message: 'must be on or after start_date' },
  ]);
const stale = (current: { version: number }) => preconditionFailed('subscription', current.version);
const canceledFeatures = () =>
  conflict('The subscription is canceled, which is final: its features stay as they were.');
const illegal = ({ from, to, allowed }: subscriptions.IllegalTransition) =>
  conflict(
    `${/^[aeiou]/.test(from) ? 'An' : 'A'} ${from} subscription cannot become ${to}; from ${from} it can become ${allowed.length ? allowed.join(' or ') : 'nothing (canceled is final)'}.`,
    [{ location: 'body', field: '/status', message: `not allowed after ${from}` }],
  );
/** The answer to a price the server refuses to take from the client. */
function pricingProblem(
  refusal:
    | subscriptions.PricingRefusal
    | ProrationRefusal
    | subscriptions.PeriodEndPending
    | subscriptions.CanceledFinal,
): ProblemError {
  switch (refusal.kind) {
    case 'canceled-final':
      return conflict(
        `The subscription is canceled, which is final: its invoices, MRR and analytics were made of it as it was. Only its metadata may change, not ${refusal.fields.join(', ')}.`,
        refusal.fields.map((field) => ({
          location: 'body' as const,
          field: `/${field}`,
          message: 'cannot change on a canceled subscription',
        })),
      );
    case 'period-end-pending':
      if (refusal.what === 'canceled')
        return conflict(
          `The subscription is canceled: the last period it served, to ${refusal.at}, is final, and this change would make it end on ${refusal.newEnd}.`,
        );
      return conflict(
        refusal.what === 'cancellation'
          ? `A cancellation is scheduled for ${refusal.at}, the end of the current period, and this change would move that end to ${refusal.newEnd}: the subscription would be billed for a period it ends in the middle of. Undo the cancellation first (DELETE /subscriptions/{id}/cancel), or cancel at once.`
          : `A change is scheduled for ${refusal.at}, the end of the current period, and this change would move that end to ${refusal.newEnd}, a date the scheduled change was not made for. Cancel the scheduled change first (DELETE /subscriptions/{id}/scheduled-change).`,
      );
    case 'interval-change-with-usage':
      return unprocessable(
        "The plan charges usage, which is counted by billing period: its interval cannot change in the middle of a period already invoiced. Schedule it for the period's end (POST /subscriptions/{id}/scheduled-change) instead.",
        [
          {
            location: 'body',
            field: '/plan_id',
            message: 'changes the billing interval of a usage plan mid-period',
          },
        ],
      );
    case 'usage-charges-change':
      return unprocessable(
        `The plan charges usage (${refusal.metrics.join(', ')}) that the new plan does not charge at the same price. Usage is billed when its period ends, so the usage recorded in this period would be billed at other prices or not at all: schedule the change for the period's end (POST /subscriptions/{id}/scheduled-change) instead.`,
        [
          {
            location: 'body',
            field: '/plan_id',
            message: 'changes the usage charges in the middle of a period',
          },
        ],
      );
    case 'invalid':
      return unprocessable(
        refusal.errors.map((e) => `${e.field.slice(1)} ${e.message}`).join('; ') + '.',
        refusal.errors.map((e) => ({ location: 'body' as const, ...e })),
      );
    case 'unknown-plan':
      return unprocessable('plan_id does not refer to a plan of this tenant.', [
        { location: 'body', field: '/plan_id', message: 'no such plan' },
      ]);
    case 'plan-archived':
      return unprocessable('The plan is archived: it takes no new subscriptions.', [
        { location: 'body', field: '/plan_id', message: 'archived' },
      ]);
    case 'needs-admin':
      return new ProblemError(
        403,
        'forbidden',
        'A custom price (plan_cost and billing_interval without a plan) is set by an admin key only (the admin scope); put the subscription on a plan instead.',
      );
  }
}

const withEtag = (subscription: { version: number }) => ({ ETag: etag(subscription.version) });
const withFeatures = ({ subscription, features }: subscriptions.WithFeatures, now?: Date) =>
  toSubscriptionResponse(subscription, features, now);

export function subscriptionsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listSubscriptions'>;
    const page = await subscriptions.listSubscriptions(
      ctx,
      actorOf(req),
      {
        limit: query.limit ?? 20,
        after: decodeCursor(req, query.cursor),
        userId: query.user_id,
        planId: query.plan_id,
        statuses: query.status,
        startDateGte: query.start_date_gte,
        startDateLte: query.start_date_lte,
      },
      query.include === 'features',
    );
    // One "now" for the whole page: every row's current period is of the same instant.
    const now = new Date();
    res.json(
      toPageResponse(
        req,
        page,
        (s) => withFeatures(s, now),
        (s) => s.subscription.id,
      ) satisfies Schemas['SubscriptionList'],
    );
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createSubscription'>;
    const reply = (o: subscriptions.CreateSubscriptionOutcome) =>
      o.kind === 'created'
        ? created(
            `${req.baseUrl}/${o.subscription.id}`,
            toSubscriptionResponse(o.subscription),
            withEtag(o.subscription),
          )
        : undefined;
    const outcome = await subscriptions.createSubscription(ctx, idempotent(req, actorOf(req), reply), {
      user_id: body.user_id,
      status: body.status,
      plan_id: body.plan_id,
      quantity: body.quantity,
      plan_cost: body.plan_cost,
      billing_interval: body.billing_interval,
      start_date: body.start_date,
      end_date: body.end_date ?? null,
      test_clock_id: body.test_clock_id,
      payment_method: body.payment_method,
      payment_rail: body.payment_rail,
      trial_end: body.trial_end,
      coupon_id: body.coupon_id,
      billed_until: body.billed_until,
      metadata: body.metadata,
    });
    if (outcome.kind === 'unknown-user') {
      throw unprocessable('user_id does not refer to an existing user.', [
        { location: 'body', field: '/user_id', message: 'no such user' },
      ]);
    }
    if (outcome.kind === 'end-before-start') throw endBeforeStart();
    if (outcome.kind !== 'created') throw pricingProblem(outcome);
    send(res, reply(outcome)!);
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
    // The representation with features embeds other resources' versions too: no ETag for it.
    if (include === 'features') return send(res, ok(withFeatures(found)));
    if (notModified(req, res, found.subscription.version)) return;
    send(res, ok(withFeatures(found), withEtag(found.subscription)));
  });

  router.patch('/:subscriptionId', async (req, res) => {
    const body = req.body as RequestBody<'updateSubscription'>;
    const reply = (o: subscriptions.UpdateSubscriptionOutcome) =>
      o.kind === 'updated' ? ok(toSubscriptionResponse(o.subscription), withEtag(o.subscription)) : undefined;
    const outcome = await subscriptions.updateSubscription(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.subscriptionId,
      {
        status: body.status,
        plan_id: body.plan_id,
        quantity: body.quantity,
        plan_cost: body.plan_cost,
        billing_interval: body.billing_interval,
        start_date: body.start_date,
        end_date: body.end_date,
        payment_method: body.payment_method,
        payment_rail: body.payment_rail,
        trial_end: body.trial_end,
        proration_behavior: body.proration_behavior,
        metadata: body.metadata,
      },
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchSubscription(req.params.subscriptionId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'illegal-transition') throw illegal(outcome);
    if (outcome.kind === 'end-before-start') throw endBeforeStart();
    if (outcome.kind !== 'updated') throw pricingProblem(outcome);
    send(res, reply(outcome)!);
  });

  router.post('/:subscriptionId/preview-change', async (req, res) => {
    const body = req.body as RequestBody<'previewSubscriptionChange'>;
    const outcome = await subscriptions.previewChange(ctx, actorOf(req), req.params.subscriptionId, {
      plan_id: body.plan_id,
      quantity: body.quantity,
      plan_cost: body.plan_cost,
      billing_interval: body.billing_interval,
      proration_behavior: body.proration_behavior,
    });
    if (outcome.kind === 'missing') throw noSuchSubscription(req.params.subscriptionId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'illegal-transition') throw illegal(outcome);
    if (outcome.kind === 'end-before-start') throw endBeforeStart();
    if (outcome.kind !== 'preview') throw pricingProblem(outcome);
    const { invoice } = outcome;
    res.json({
      proration_date: outcome.day,
      proration_behavior: body.proration_behavior ?? 'create_prorations',
      subscription: toSubscriptionResponse(outcome.subscription),
      items: outcome.items.map((item) => ({
        kind: item.kind,
        description: item.description,
        amount: item.amount,
        period_start: item.period_start,
        period_end: item.period_end,
      })),
      invoice: invoice
        ? (({ kind, period_start, period_end, invoice_date, lines, subtotal, taxes, tax_total, total }) => ({
            kind: kind as 'period' | 'proration',
            period_start,
            period_end,
            invoice_date,
            // The items the lines bill were rolled back with the preview: no ids to show.
            lines: lines.map(({ invoice_item_id: _, ...line }) => line),
            subtotal,
            taxes,
            tax_total,
            total,
            amount_from_balance: invoice.amount_from_balance,
            // As issued, before any payment (the preview's may be paid already, by the balance).
            amount_due: amountDue({ ...invoice, status: 'open' }),
          }))(toInvoiceResponse(invoice))
        : null,
    } satisfies Schemas['SubscriptionChangePreview']);
  });

  /** Scheduling and canceling a change answer the same way. */
  const scheduledChangeReply = (o: ScheduleOutcome) =>
    o.kind === 'scheduled' || o.kind === 'canceled'
      ? ok(toSubscriptionResponse(o.subscription), withEtag(o.subscription))
      : undefined;
  const scheduledChangeProblem = (
    id: string,
    outcome: Exclude<ScheduleOutcome, { kind: 'scheduled' | 'canceled' }>,
  ) => {
    if (outcome.kind === 'missing') return noSuchSubscription(id);
    if (outcome.kind === 'stale') return stale(outcome.current);
    if (outcome.kind === 'not-scheduled') return notFound(`Subscription ${id} has no scheduled change.`);
    if (outcome.kind === 'not-renewing') {
      const why = {
        canceled: 'it is canceled',
        cancel_at: 'its cancellation is scheduled (withdraw it first with DELETE .../cancel)',
        'no-renewals': 'it is not renewed automatically (billed_until is null)',
        end_date: 'its end_date ends it with this period, so no period follows (move the end_date first)',
      }[outcome.why];
      return conflict(`A change cannot be scheduled for the end of the period: ${why}.`);
    }
    return pricingProblem(outcome);
  };

  router.post('/:subscriptionId/scheduled-change', async (req, res) => {
    const body = req.body as RequestBody<'scheduleSubscriptionChange'>;
    const outcome = await scheduleChange(
      ctx,
      idempotent(req, actorOf(req), scheduledChangeReply),
      req.params.subscriptionId,
      {
        plan_id: body.plan_id,
        quantity: body.quantity,
        plan_cost: body.plan_cost,
        billing_interval: body.billing_interval,
      },
      ifMatch(req),
    );
    if (outcome.kind !== 'scheduled')
      throw scheduledChangeProblem(req.params.subscriptionId, outcome as never);
    send(res, scheduledChangeReply(outcome)!);
  });

  router.delete('/:subscriptionId/scheduled-change', async (req, res) => {
    const outcome = await cancelScheduledChange(
      ctx,
      idempotent(req, actorOf(req), scheduledChangeReply),
      req.params.subscriptionId,
      ifMatch(req),
    );
    if (outcome.kind !== 'canceled')
      throw scheduledChangeProblem(req.params.subscriptionId, outcome as never);
    send(res, scheduledChangeReply(outcome)!);
  });

  const discountReply = (o: coupons.DiscountOutcome) =>
    o.kind === 'changed' ? ok(toSubscriptionResponse(o.subscription), withEtag(o.subscription)) : undefined;
  const discountProblem = (id: string, outcome: Exclude<coupons.DiscountOutcome, { kind: 'changed' }>) => {
    switch (outcome.kind) {
      case 'missing':
        return noSuchSubscription(id);
      case 'stale':
        return stale(outcome.current);
      case 'canceled':
        return conflict(`Subscription ${id} is canceled: a coupon would discount nothing.`);
      case 'no-discount':
        return notFound(`Subscription ${id} has no discount.`);
      case 'invalid':
        return pricingProblem(outcome);
    }
  };

  router.post('/:subscriptionId/discount', async (req, res) => {
    const body = req.body as RequestBody<'applySubscriptionDiscount'>;
    const outcome = await coupons.applyDiscount(
      ctx,
      idempotent(req, actorOf(req), discountReply),
      req.params.subscriptionId,
      body.coupon_id,
      ifMatch(req),
    );
    if (outcome.kind !== 'changed') throw discountProblem(req.params.subscriptionId, outcome);
    send(res, discountReply(outcome)!);
  });

  router.delete('/:subscriptionId/discount', async (req, res) => {
    const outcome = await coupons.removeDiscount(
      ctx,
      idempotent(req, actorOf(req), discountReply),
      req.params.subscriptionId,
      ifMatch(req),
    );
    if (outcome.kind !== 'changed') throw discountProblem(req.params.subscriptionId, outcome);
    send(res, discountReply(outcome)!);
  });

  const pauseReply = (o: pauses.PauseOutcome) =>
    o.kind === 'changed' ? ok(toSubscriptionResponse(o.subscription), withEtag(o.subscription)) : undefined;
  const pauseProblem = (id: string, outcome: Exclude<pauses.PauseOutcome, { kind: 'changed' }>) => {
    switch (outcome.kind) {
      case 'missing':
        return noSuchSubscription(id);
      case 'stale':
        return stale(outcome.current);
      case 'wrong-status':
        return conflict(
          outcome.allowed === 'active'
            ? `Only an active subscription can be paused; this one is ${outcome.status}.`
            : `Only a paused subscription can be resumed; this one is ${outcome.status}.`,
        );
      case 'cancellation-scheduled':
        return conflict(
          `Subscription ${id} is canceled at the end of its period: cancel it now instead of pausing it, or withdraw the cancellation (DELETE .../cancel) first.`,
        );
      case 'ended':
        return conflict(
          `Subscription ${id} ended on ${outcome.lastDay} (its end_date): nothing is left to pause.`,
        );
      case 'invalid':
        return pricingProblem(outcome);
    }
  };

  router.post('/:subscriptionId/pause', async (req, res) => {
    const body = (req.body ?? {}) as RequestBody<'pauseSubscription'>;
    const outcome = await pauses.pauseSubscription(
      ctx,
      idempotent(req, actorOf(req), pauseReply),
      req.params.subscriptionId,
      { resumes_at: body.resumes_at },
      ifMatch(req),
    );
    if (outcome.kind !== 'changed') throw pauseProblem(req.params.subscriptionId, outcome);
    send(res, pauseReply(outcome)!);
  });

  router.post('/:subscriptionId/resume', async (req, res) => {
    const outcome = await pauses.resumeSubscription(
      ctx,
      idempotent(req, actorOf(req), pauseReply),
      req.params.subscriptionId,
      ifMatch(req),
    );
    if (outcome.kind !== 'changed') throw pauseProblem(req.params.subscriptionId, outcome);
    send(res, pauseReply(outcome)!);
  });

  router.post('/:subscriptionId/invoice-items', async (req, res) => {
    const { subscriptionId } = req.params;
    const body = req.body as RequestBody<'createInvoiceItem'>;
    const zero = zeroAmounts([body.amount], () => '/amount');
    if (zero.length > 0) throw unprocessable('A one-off charge must be more than zero.', zero);
    const reply = (o: invoices.OneOffOutcome<Parameters<typeof toInvoiceItemResponse>[0]>) =>
      o.kind === 'created' ? { ...ok(toInvoiceItemResponse(o.value)), status: 201 } : undefined;
    const outcome = await invoices.createOneOffItem(
      ctx,
      idempotent(req, actorOf(req), reply),
      subscriptionId,
      {
        description: body.description,
        amount: body.amount,
      },
    );
    if (outcome.kind !== 'created')
      throw oneOffProblem(outcome, subscriptionId, () => noSuchSubscription(subscriptionId));
    send(res, reply(outcome)!);
  });

  router.get('/:subscriptionId/invoice-items', async (req, res) => {
    const query = req.query as Query<'listInvoiceItems'>;
    const page = await invoices.listInvoiceItems(ctx, actorOf(req), {
      subscriptionId: req.params.subscriptionId,
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      pending: query.pending,
    });
    if (!page) throw noSuchSubscription(req.params.subscriptionId);
    res.json(
      toPageResponse(req, page, toInvoiceItemResponse, (i) => i.id) satisfies Schemas['InvoiceItemList'],
    );
  });

  router.post('/:subscriptionId/cancel', async (req, res) => {
    const body = req.body as RequestBody<'cancelSubscription'>;
    const reply = (o: subscriptions.CancelOutcome) =>
      o.kind === 'canceled' || o.kind === 'scheduled'
        ? ok(toSubscriptionResponse(o.subscription), withEtag(o.subscription))
        : undefined;
    const outcome = await subscriptions.cancelSubscription(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.subscriptionId,
      { at: body.at, reason: body.reason },
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchSubscription(req.params.subscriptionId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'already-canceled')
      throw conflict('The subscription is already canceled; canceled is final.');
    send(res, reply(outcome)!);
  });

  router.delete('/:subscriptionId/cancel', async (req, res) => {
    const { subscriptionId } = req.params;
    const reply = (o: subscriptions.WithdrawCancellationOutcome) =>
      o.kind === 'withdrawn'
        ? ok(toSubscriptionResponse(o.subscription), withEtag(o.subscription))
        : undefined;
    const outcome = await subscriptions.withdrawCancellation(
      ctx,
      idempotent(req, actorOf(req), reply),
      subscriptionId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchSubscription(subscriptionId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'not-scheduled')
      throw notFound(`Subscription ${subscriptionId} has no scheduled cancellation.`);
    if (outcome.kind === 'already-canceled')
      throw conflict('The subscription is already canceled; canceled is final: subscribe anew instead.');
    send(res, reply(outcome)!);
  });

  router.delete('/:subscriptionId', async (req, res) => {
    const { subscriptionId } = req.params;
    const reply = (o: subscriptions.DeleteSubscriptionOutcome) =>
      o.kind === 'deleted' ? noContent() : undefined;
    const outcome = await subscriptions.deleteSubscription(
      ctx,
      idempotent(req, actorOf(req), reply),
      subscriptionId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchSubscription(subscriptionId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'has-invoices') {
      throw conflict('The subscription has invoices, which must stay with it: cancel it instead.');
    }
    if (outcome.kind === 'has-usage') {
      throw conflict(
        'The subscription has counted usage events, which must stay billed to it: cancel it instead.',
      );
    }
    send(res, reply(outcome)!);
  });

  router.post('/:subscriptionId/invoices', async (req, res) => {
    const { subscriptionId } = req.params;
    const body = (req.body ?? {}) as RequestBody<'createInvoice'>;
    const location = (id: string) => `${req.baseUrl.replace(/\/subscriptions$/, '')}/invoices/${id}`;
    const reply = (o: invoices.CreateInvoiceOutcome) =>
      o.kind === 'created'
        ? created(location(o.invoice.id), toInvoiceResponse(o.invoice), withEtag(o.invoice))
        : o.kind === 'existing'
          ? ok(toInvoiceResponse(o.invoice), withEtag(o.invoice))
          : undefined;
    const outcome = await invoices.createInvoice(
      ctx,
      idempotent(req, actorOf(req), reply),
      subscriptionId,
      body.date,
    );
    if (outcome.kind === 'no-subscription') throw noSuchSubscription(subscriptionId);
    if (outcome.kind === 'before-start') {
      throw unprocessable(
        `The subscription starts on ${outcome.startDate}: there is no period to invoice before it.`,
        [{ location: 'body', field: '/date', message: `before the start date ${outcome.startDate}` }],
      );
    }
    if (outcome.kind === 'before-anchor') {
      const message = `before ${outcome.anchor}, where its billing periods start`;
      throw unprocessable(
        outcome.why === 'trial'
          ? `The subscription is in a free trial until ${outcome.anchor}: nothing before it is invoiced.`
          : `The subscription's billing periods start on ${outcome.anchor} (a change of interval): the days before were billed on its former schedule.`,
        body.date ? [{ location: 'body', field: '/date', message }] : undefined,
      );
    }
    if (outcome.kind === 'after-end') {
      const why = {
        end_date: 'its end_date',
        canceled: 'the day it was canceled',
        cancel_at: 'the day before its scheduled cancellation',
      }[outcome.why];
      const message = `after ${outcome.lastDay}, the last day served`;
      throw unprocessable(
        `The subscription is served until ${outcome.lastDay} (${why}): nothing after it is invoiced.`,
        body.date ? [{ location: 'body', field: '/date', message }] : undefined,
      );
    }
    if (outcome.kind === 'overlaps') {
      const { period, invoice } = outcome;
      const from = invoice.period_start > period.start ? invoice.period_start : period.start;
      const to = invoice.period_end < period.end ? invoice.period_end : period.end;
      throw unprocessable(
        `The days ${from} to ${to} of the period ${period.start} to ${period.end} are billed by invoice ${invoice.id} (${invoice.period_start} to ${invoice.period_end}, a period of its schedule before a change of start_date or interval): invoiced again, they would be billed twice. Its renewals bill from billed_until on.`,
        body.date
          ? [
              {
                location: 'body',
                field: '/date',
                message: `in a period whose days invoice ${invoice.id} bills in part`,
              },
            ]
          : undefined,
      );
    }
    if (outcome.kind === 'paused') {
      const { start, end } = outcome.period;
      throw unprocessable(
        outcome.why === 'paused'
          ? `The subscription was paused during the period ${start} to ${end}: nothing is invoiced for time paused, and a resume invoices the rest of its period itself, so the period is not invoiced whole.`
          : `The period ${start} to ${end}, whose price no invoice billed, has items of its own (a change, a pause or a resume prorated in it): its price invoiced whole would bill days those items bill.`,
        body.date
          ? [
              {
                location: 'body',
                field: '/date',
                message:
                  outcome.why === 'paused'
                    ? `in the period ${start} to ${end}, paused in part or whole`
                    : `in the period ${start} to ${end}, which has items of its own`,
              },
            ]
          : undefined,
      );
    }
    if (outcome.kind === 'ahead') {
      const start = outcome.periodStart;
      throw unprocessable(
        outcome.why === 'renewal'
          ? `The period starting on ${start} has not started: its renewal invoices it then, at the price, with the items and the discount in force then. GET /subscriptions/${subscriptionId}/upcoming-invoice shows what it will bill.`
          : `The invoice of the period starting on ${start} bills the usage of the period before it, in arrears, and that period has not ended: invoice it on or after ${start}.`,
        [{ location: 'body', field: '/date', message: `in a period that starts on ${start}, after today` }],
      );
    }
    send(res, reply(outcome)!);
  });

  router.get('/:subscriptionId/upcoming-invoice', async (req, res) => {
    const { subscriptionId } = req.params;
    const outcome = await upcomingInvoice(ctx, actorOf(req), subscriptionId);
    if (outcome.kind === 'missing') throw noSuchSubscription(subscriptionId);
    if (outcome.kind === 'none') {
      const why = {
        canceled: 'it is canceled and has nothing left to bill',
        ends: 'it ends (cancel_at or end_date) before its next renewal and has nothing left to bill',
        'not-renewing': 'it is not renewed automatically (billed_until is null)',
        paused: 'it is paused: nothing is invoiced for time paused',
        'nothing-billed': 'its next renewals bill nothing',
        'past-calendar': 'its next billing period would end after 9999-12-31, so no renewal can make it',
      }[outcome.why];
      throw notFound(`Subscription ${subscriptionId} has no upcoming invoice: ${why}.`);
    }
    res.json(
      toUpcomingInvoiceResponse(outcome.invoice, outcome.issuesAt) satisfies Schemas['UpcomingInvoice'],
    );
  });

  router.get('/:subscriptionId/events', async (req, res) => {
    const page = await listEventsPage(ctx, req, req.params.subscriptionId);
    if (!page) throw noSuchSubscription(req.params.subscriptionId);
    res.json(page);
  });

  router.get('/:subscriptionId/features', async (req, res) => {
    const { subscriptionId } = req.params;
    const features = await subscriptions.listSubscriptionFeatures(ctx, actorOf(req), subscriptionId);
    if (!features) throw noSuchSubscription(subscriptionId);
    res.json({ data: features.map(toFeatureResponse) } satisfies Schemas['FeatureCollection']);
  });

  router.put('/:subscriptionId/features/:featureId', async (req, res) => {
    const { subscriptionId, featureId } = req.params;
    const reply = (o: subscriptions.LinkOutcome) =>
      o.kind === 'linked' || o.kind === 'already-linked'
        ? { ...ok(toFeatureResponse(o.feature)), status: o.kind === 'linked' ? 201 : 200 }
        : undefined;
    const outcome = await subscriptions.linkFeature(
      ctx,
      idempotent(req, actorOf(req), reply),
      subscriptionId,
      featureId,
      ifMatch(req),
    );
    if (outcome.kind === 'no-feature') throw noSuchFeature(featureId);
    if (outcome.kind === 'no-subscription') throw noSuchSubscription(subscriptionId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'canceled') throw canceledFeatures();
    send(res, reply(outcome)!);
  });

  router.delete('/:subscriptionId/features/:featureId', async (req, res) => {
    const { subscriptionId, featureId } = req.params;
    const reply = (o: subscriptions.UnlinkOutcome) => (o.kind === 'unlinked' ? noContent() : undefined);
    const outcome = await subscriptions.unlinkFeature(
      ctx,
      idempotent(req, actorOf(req), reply),
      subscriptionId,
      featureId,
      ifMatch(req),
    );
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'canceled') throw canceledFeatures();
    if (outcome.kind === 'not-linked') {
      throw notFound(
        `Subscription ${subscriptionId} is not linked to feature ${featureId}, or either does not exist.`,
      );
    }
    send(res, reply(outcome)!);
  });

  return router;
}
