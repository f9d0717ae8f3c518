import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, unprocessable } from '../http/problems.js';
import { etag, ok, type Reply, send } from '../http/replies.js';
import { toBillingSettingsResponse, toPaymentResponse, toTestClockResponse } from '../responses/payments.js';
import { toRefundResponse } from '../responses/refunds.js';
import type { ServiceContext } from '../services/context.js';
import * as payments from '../services/payments.js';
import * as refunds from '../services/refunds.js';

const withEtag = (row: { version: number }) => ({ ETag: etag(row.version) });
const accepted = (location: string, body: unknown, headers: Record<string, string>): Reply => ({
  status: 202,
  headers: { Location: location, ...headers },
  body,
});

/** Mounted at /api/v1/invoices: an invoice's payments. */
export function invoicePaymentsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/:invoiceId/payments', async (req, res) => {
    const query = req.query as Query<'listInvoicePayments'>;
    const limit = query.limit ?? 20;
    const page = await payments.listInvoicePayments(ctx, actorOf(req), req.params.invoiceId, {
      limit,
      after: decodeCursor(req, query.cursor),
    });
    if (!page) throw notFound(`No invoice with id ${req.params.invoiceId}.`);
    res.json(toPageResponse(req, page, toPaymentResponse, (p) => p.id) satisfies Schemas['PaymentList']);
  });

  router.post('/:invoiceId/payments', async (req, res) => {
    const { invoiceId } = req.params;
    const body = req.body as RequestBody<'createPayment'>;
    const reply = (o: payments.CreatePaymentOutcome) =>
      o.kind === 'created'
        ? accepted(`/api/v1/payments/${o.payment.id}`, toPaymentResponse(o.payment), withEtag(o.payment))
        : undefined;
    const outcome = await payments.createPayment(ctx, idempotent(req, actorOf(req), reply), invoiceId, body);
    switch (outcome.kind) {
      case 'missing':
        throw notFound(`No invoice with id ${invoiceId}.`);
      case 'wrong-status':
        throw conflict(
          outcome.status === 'paid'
            ? 'The invoice is paid already.'
            : `The invoice is ${outcome.status}; only an open or uncollectible invoice can be paid.`,
        );
      case 'wrong-amount':
        throw unprocessable(
          `amount must be what is due on the invoice (its amount_due), ${outcome.balance}.`,
          [{ location: 'body', field: '/amount', message: `must be ${outcome.balance}` }],
        );
      case 'in-flight':
        throw conflict('A payment of this invoice is already pending or processing; wait for it to settle.');
      case 'lapsed':
        throw conflict(
          `The credits this invoice sells expired at ${outcome.expiredAt.toISOString()}, unpaid: ` +
            'the purchase has lapsed (the worker voids its invoice) and can no longer be paid.',
        );
      case 'created':
        return send(res, reply(outcome)!);
    }
  });

  router.get('/:invoiceId/refunds', async (req, res) => {
    const query = req.query as Query<'listInvoiceRefunds'>;
    const page = await refunds.listInvoiceRefunds(ctx, actorOf(req), {
      invoiceId: req.params.invoiceId,
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
    });
    if (!page) throw notFound(`No invoice with id ${req.params.invoiceId}.`);
    res.json(toPageResponse(req, page, toRefundResponse, (r) => r.id) satisfies Schemas['RefundList']);
  });

  return router;
}

/** Mounted at /api/v1/refunds. */
export function refundsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/:refundId', async (req, res) => {
    const refund = await refunds.getRefund(ctx, actorOf(req), req.params.refundId);
    if (!refund) throw notFound(`No refund with id ${req.params.refundId}.`);
    if (notModified(req, res, refund.version)) return;
    send(res, ok(toRefundResponse(refund), withEtag(refund)));
  });
  return router;
}

/** Mounted at /api/v1/payments. */
export function paymentsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listPayments'>;
    const page = await payments.listPayments(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      invoiceId: query.invoice_id,
      subscriptionId: query.subscription_id,
      statuses: query.status,
    });
    res.json(toPageResponse(req, page, toPaymentResponse, (p) => p.id) satisfies Schemas['PaymentList']);
  });

  router.get('/:paymentId', async (req, res) => {
    const payment = await payments.getPayment(ctx, actorOf(req), req.params.paymentId);
    if (!payment) throw notFound(`No payment with id ${req.params.paymentId}.`);
    if (notModified(req, res, payment.version)) return;
    send(res, ok(toPaymentResponse(payment), withEtag(payment)));
  });

  return router;
}

const outsideClockYears = () => {
  const message = `must be in the years ${payments.CLOCK_YEARS.first} to ${payments.CLOCK_YEARS.last}`;
  return unprocessable(`frozen_time ${message}.`, [{ location: 'body', field: '/frozen_time', message }]);
};

/** Mounted at /api/v1/test-clocks. */
export function testClocksRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  const noSuchClock = (id: string) => notFound(`No test clock with id ${id}.`);

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listTestClocks'>;
    const limit = query.limit ?? 20;
    const page = await payments.listTestClocks(ctx, actorOf(req), limit, decodeCursor(req, query.cursor));
    res.json(toPageResponse(req, page, toTestClockResponse, (c) => c.id) satisfies Schemas['TestClockList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createTestClock'>;
    const frozen = body.frozen_time ? new Date(body.frozen_time) : new Date();
    if (!payments.inClockYears(frozen)) throw outsideClockYears();
    const reply = (clock: Parameters<typeof toTestClockResponse>[0]): Reply => ({
      status: 201,
      headers: { Location: `${req.baseUrl}/${clock.id}`, ...withEtag(clock) },
      body: toTestClockResponse(clock),
    });
    const clock = await payments.createTestClock(ctx, idempotent(req, actorOf(req), reply), {
      name: body.name,
      frozen_time: frozen,
    });
    send(res, reply(clock));
  });

  router.get('/:testClockId', async (req, res) => {
    const clock = await payments.getTestClock(ctx, actorOf(req), req.params.testClockId);
    if (!clock) throw noSuchClock(req.params.testClockId);
    if (notModified(req, res, clock.version)) return;
    send(res, ok(toTestClockResponse(clock), withEtag(clock)));
  });

  router.post('/:testClockId/advance', async (req, res) => {
    const { testClockId } = req.params;
    const body = req.body as RequestBody<'advanceTestClock'>;
    const reply = (o: payments.AdvanceOutcome): Reply | undefined =>
      o.kind === 'advancing'
        ? { status: 202, headers: withEtag(o.clock), body: toTestClockResponse(o.clock) }
        : undefined;
    const outcome = await payments.advanceTestClock(
      ctx,
      idempotent(req, actorOf(req), reply),
      testClockId,
      new Date(body.frozen_time),
      ifMatch(req),
    );
    switch (outcome.kind) {
      case 'missing':
        throw noSuchClock(testClockId);
      case 'stale':
        throw preconditionFailed('test clock', outcome.current.version);
      case 'busy':
        throw conflict('The clock is still advancing; wait until its status is ready.');
      case 'beyond-years':
        throw outsideClockYears();
      case 'not-later':
      case 'too-far': {
        const message =
          outcome.kind === 'not-later'
            ? `must be later than the clock's time, ${outcome.current.frozen_time.toISOString()}`
            : `must be at most ${payments.MAX_ADVANCE_YEARS} years after the clock's time, ` +
              `${outcome.latest.toISOString()} at the latest`;
        throw unprocessable(`frozen_time ${message}.`, [
          { location: 'body', field: '/frozen_time', message },
        ]);
      }
      case 'advancing':
        return send(res, reply(outcome)!);
    }
  });

  return router;
}

/** Mounted at /api/v1/billing-settings. */
export function billingSettingsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const settings = await payments.getBillingSettings(ctx, actorOf(req));
    send(res, ok(toBillingSettingsResponse(settings), withEtag(settings)));
  });

  router.put('/', async (req, res) => {
    const { version, ...body } = req.body as RequestBody<'putBillingSettings'>;
    const reply = (o: payments.PutSettingsOutcome) =>
      o.kind === 'updated' ? ok(toBillingSettingsResponse(o.settings), withEtag(o.settings)) : undefined;
    // The version read, sent back with the body (trials1 #6): a condition as If-Match is.
    const header = ifMatch(req);
    const condition =
      version === undefined
        ? header
        : header === undefined || header === '*' || header.includes(version)
          ? [version]
          : [];
    const outcome = await payments.putBillingSettings(
      ctx,
      idempotent(req, actorOf(req), reply),
      body,
      condition,
    );
    if (outcome.kind === 'stale')
      throw preconditionFailed(
        'billing settings',
        outcome.current.version,
        version === undefined ? undefined : 'If-Match or the body names',
      );
    if (outcome.kind === 'not-ascending') {
      throw unprocessable('dunning_retry_days must be ascending.', [
        { location: 'body', field: '/dunning_retry_days', message: 'must be ascending, without repeats' },
      ]);
    }
    send(res, reply(outcome)!);
  });

  return router;
}
