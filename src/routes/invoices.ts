import { Router } from 'express';
import type { Query, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { badRequest, conflict, notFound, preconditionFailed } from '../http/problems.js';
import { etag, ok, send } from '../http/replies.js';
import { toInvoiceResponse } from '../responses/invoices.js';
import type { ServiceContext } from '../services/context.js';
import * as invoices from '../services/invoices.js';

const noSuchInvoice = (id: string) => notFound(`No invoice with id ${id}.`);
const withEtag = (invoice: { version: number }) => ({ ETag: etag(invoice.version) });

export function invoicesRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listInvoices'>;
    const page = await invoices.listInvoices(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(query.cursor),
      subscriptionId: query.subscription_id,
      userId: query.user_id,
      statuses: query.status,
      periodOn: query.period,
      number: query.number,
    });
    res.json(toPageResponse(page, toInvoiceResponse, (i) => i.id) satisfies Schemas['InvoiceList']);
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
        throw conflict(
          `The invoice is ${outcome.current.status}; only a ${outcome.allowedFrom.join(', ')} invoice can be ${name === 'void' ? 'voided' : 'finalized'}.`,
        );
      }
      if (outcome.kind === 'payment-in-flight') {
        throw conflict(
          `Payment ${outcome.payment.id} of this invoice is ${outcome.payment.status}: an invoice cannot be voided while a payment of it may still move money. Wait until it has succeeded or failed.`,
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
