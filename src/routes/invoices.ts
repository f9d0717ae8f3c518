import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import {
  badRequest,
  conflict,
  notFound,
  preconditionFailed,
  ProblemError,
  unprocessable,
} from '../http/problems.js';
import { created, etag, ok, send } from '../http/replies.js';
import { toCreditNoteResponse, toInvoiceResponse } from '../responses/invoices.js';
import { type CreditNoteOutcome, createCreditNote, listCreditNotes } from '../services/credit-notes.js';
import type { ServiceContext } from '../services/context.js';
import * as invoices from '../services/invoices.js';

const noSuchInvoice = (id: string) => notFound(`No invoice with id ${id}.`);

/** Amounts of one-off charges: more than zero (a credit is a credit note's), as JSON pointers. */
export function zeroAmounts(amounts: readonly string[], field: (i: number) => string) {
  return amounts.flatMap((amount, i) =>
    /^0*(\.0*)?$/.test(amount)
      ? [{ location: 'body' as const, field: field(i), message: 'must be more than zero' }]
      : [],
  );
}

/** Refusals of a one-off charge or invoice. */
export function oneOffProblem(
  outcome: { kind: 'no-subscription' | 'canceled' | 'needs-admin' } | { kind: 'ended'; lastDay: string },
  subscriptionId: string,
  unknownSubscription: () => ProblemError,
): ProblemError {
  if (outcome.kind === 'needs-admin')
    return new ProblemError(
      403,
      'forbidden',
      'Amounts set by hand (one-off charges) need an admin key (the admin scope).',
    );
  if (outcome.kind === 'canceled')
    return conflict(`Subscription ${subscriptionId} is canceled: nothing more is billed on it.`);
  if (outcome.kind === 'ended')
    return conflict(
      `Subscription ${subscriptionId} ended on ${outcome.lastDay} (its end_date): no next invoice will bill a pending charge. Bill it on a one-off invoice (POST /invoices) instead.`,
    );
  return unknownSubscription();
}
const withEtag = (invoice: { version: number }) => ({ ETag: etag(invoice.version) });

export function invoicesRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listInvoices'>;
    const page = await invoices.listInvoices(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      subscriptionId: query.subscription_id,
      userId: query.user_id,
      statuses: query.status,
      periodOn: query.period,
      number: query.number,
    });
    res.json(toPageResponse(req, page, toInvoiceResponse, (i) => i.id) satisfies Schemas['InvoiceList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createOneOffInvoice'>;
    const zero = zeroAmounts(
      body.lines.map((line) => line.amount),
      (i) => `/lines/${i}/amount`,
    );
    if (zero.length > 0) throw unprocessable('A one-off line must charge more than zero.', zero);
    const reply = (o: invoices.OneOffOutcome<Parameters<typeof toInvoiceResponse>[0]>) =>
      o.kind === 'created'
        ? created(`${req.baseUrl}/${o.value.id}`, toInvoiceResponse(o.value), withEtag(o.value))
        : undefined;
    const outcome = await invoices.createOneOffInvoice(
      ctx,
      idempotent(req, actorOf(req), reply),
      body.subscription_id,
      body.lines.map((line) => ({ description: line.description, amount: line.amount })),
    );
    if (outcome.kind !== 'created')
      throw oneOffProblem(outcome, body.subscription_id, () =>
        unprocessable('subscription_id does not refer to a subscription of this tenant.', [
          { location: 'body', field: '/subscription_id', message: 'no such subscription' },
        ]),
      );
    send(res, reply(outcome)!);
  });

  router.post('/:invoiceId/credit-notes', async (req, res) => {
    const { invoiceId } = req.params;
    const body = req.body as RequestBody<'createCreditNote'>;
    if ((body.amount === undefined) === (body.lines === undefined)) {
      const message = 'send either amount or lines';
      throw unprocessable(`A credit note credits an amount or lines: ${message}.`, [
        { location: 'body', field: body.amount === undefined ? '/amount' : '/lines', message },
      ]);
    }
    const reply = (o: CreditNoteOutcome) =>
      o.kind === 'created' ? { ...ok(toCreditNoteResponse(o.creditNote)), status: 201 } : undefined;
    const outcome = await createCreditNote(
      ctx,
      idempotent(req, actorOf(req), reply),
      invoiceId,
      body.amount !== undefined
        ? { reason: body.reason, amount: body.amount, refund_to: body.refund_to }
        : { reason: body.reason, lines: body.lines!, refund_to: body.refund_to },
    );
    if (outcome.kind === 'missing') throw noSuchInvoice(invoiceId);
    if (outcome.kind === 'needs-admin')
      throw new ProblemError(
        403,
        'forbidden',
        'Crediting an invoice forgives an amount: it needs an admin key (the admin scope).',
      );
    if (outcome.kind === 'wrong-status') {
      const why = {
        draft: 'a draft is changed by voiding it and invoicing again, or finalized first',
        void: 'it is void: nothing is owed',
        paid: '',
        open: '',
        uncollectible: '',
      }[outcome.status];
      throw conflict(`The invoice cannot be credited: ${why}.`);
    }
    if (outcome.kind === 'payment-in-flight')
      throw conflict(
        `Payment ${outcome.payment.id} of this invoice is ${outcome.payment.status}: it cannot be credited while a payment of it may still move money.`,
      );
    if (outcome.kind === 'purchase')
      throw conflict(
        'The invoice is a purchase of credits: a credit note would give the money back and leave the credits in the wallet. Void it while it is unpaid, which cancels its grant.',
      );
    if (outcome.kind === 'invalid')
      throw unprocessable(
        outcome.errors.map((e) => `${e.field.slice(1)} ${e.message}`).join('; ') + '.',
        outcome.errors.map((e) => ({ location: 'body' as const, ...e })),
      );
    send(res, reply(outcome)!);
  });

  router.get('/:invoiceId/credit-notes', async (req, res) => {
    const notes = await listCreditNotes(ctx, actorOf(req), req.params.invoiceId);
    if (!notes) throw noSuchInvoice(req.params.invoiceId);
    res.json({ data: notes.map(toCreditNoteResponse) } satisfies Schemas['CreditNoteList']);
  });

  router.get('/:invoiceId', async (req, res) => {
    const invoice = await invoices.getInvoice(ctx, actorOf(req), req.params.invoiceId);
    if (!invoice) throw noSuchInvoice(req.params.invoiceId);
    if (notModified(req, res, invoice.version)) return;
    send(res, ok(toInvoiceResponse(invoice), withEtag(invoice)));
  });

  /** finalize and void: the same shape, another status move. */
  const change = (name: 'finalize' | 'void', run: typeof invoices.finalizeInvoice) =>
    router.post(`/:invoiceId/${name}`, async (req, res) => {
      const { invoiceId } = req.params;
      const reply = (o: invoices.InvoiceChangeOutcome) =>
        o.kind === 'changed' ? ok(toInvoiceResponse(o.invoice), withEtag(o.invoice)) : undefined;
      const outcome = await run(ctx, idempotent(req, actorOf(req), reply), invoiceId, ifMatch(req));
      if (outcome.kind === 'missing') throw noSuchInvoice(invoiceId);
      if (outcome.kind === 'stale') throw preconditionFailed('invoice', outcome.current.version);
      if (outcome.kind === 'wrong-status') {
        // A paid invoice of 0.00 that prepaid credits alone paid is voided too (services/invoices.ts).
        const alsoPaid = name === 'void' ? ', or a paid one of 0.00 that prepaid credits alone paid,' : '';
        throw conflict(
          `The invoice is ${outcome.current.status}; only a ${outcome.allowedFrom.join(', ')} invoice${alsoPaid} can be ${name === 'void' ? 'voided' : 'finalized'}.`,
        );
      }
      if (outcome.kind === 'payment-in-flight') {
        throw conflict(
          `Payment ${outcome.payment.id} of this invoice is ${outcome.payment.status}: an invoice cannot be voided while a payment of it may still move money. Wait until it has succeeded or failed.`,
        );
      }
      if (outcome.kind === 'credited') {
        throw conflict(
          `${outcome.current.amount_credited} of this invoice is credited by credit notes, which are final: it cannot be voided. Credit what is left with another credit note instead.`,
        );
      }
      send(res, reply(outcome)!);
    });
  change('finalize', invoices.finalizeInvoice);
  change('void', invoices.voidInvoice);

  return router;
}

export function reportsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/taxes', async (req, res) => {
    const { from, to } = req.query as Query<'getTaxReport'>;
    const months = monthsBetween(from, to);
    if (months.length === 0 || months.length > 120) {
      const message = 'must be on or after from, at most 120 months later';
      throw badRequest(`to ${message}.`, [{ location: 'query', field: 'to', message }]);
    }
    const rows = await invoices.taxReport(ctx, actorOf(req), from, to);
    res.json({
      from,
      to,
      months: months.map((month) => ({
        month,
        taxes: rows
          .filter((r) => r.month === month)
          .map((r) => ({
            code: r.code,
            region: r.region,
            taxable_amount: r.taxable_amount,
            tax_amount: r.tax_amount,
            invoice_count: Number(r.invoice_count),
            credit_note_count: Number(r.credit_note_count),
            ending_credit_count: Number(r.ending_credit_count),
          })),
      })),
    } satisfies Schemas['TaxReport']);
  });
  return router;
}

/** 'YYYY-MM' months from `from` to `to` inclusive; empty when `to` is before `from`. */
function monthsBetween(from: string, to: string): string[] {
  const index = (m: string) => Number(m.slice(0, 4)) * 12 + Number(m.slice(5, 7)) - 1;
  const months: string[] = [];
  for (let i = index(from); i <= index(to) && months.length <= 120; i++) {
    months.push(`${String(Math.floor(i / 12)).padStart(4, '0')}-${String((i % 12) + 1).padStart(2, '0')}`);
  }
  return months;
}
