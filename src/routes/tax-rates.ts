import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { conflict, notFound, unprocessable } from '../http/problems.js';
import { created, ok, send } from '../http/replies.js';
import { toTaxRateResponse } from '../responses/tax-rates.js';
import type { ServiceContext } from '../services/context.js';
import * as taxRates from '../services/tax-rates.js';

const noSuchRate = (id: string) => notFound(`No tax rate with id ${id}.`);
const overlap = () =>
  conflict(
    'Another rate of this code and region applies during some of these dates: close it first (supersede).',
    [
      {
        location: 'body',
        field: '/effective_from',
        message: 'overlaps another rate of the same code and region',
      },
    ],
  );

export function taxRatesRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listTaxRates'>;
    const page = await taxRates.listTaxRates(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      code: query.code,
      region: query.region,
      on: query.on,
    });
    res.json(toPageResponse(req, page, toTaxRateResponse, (r) => r.id) satisfies Schemas['TaxRateList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createTaxRate'>;
    if (body.effective_until != null && body.effective_until <= body.effective_from) {
      throw unprocessable('effective_until must be after effective_from.', [
        { location: 'body', field: '/effective_until', message: 'must be after effective_from' },
      ]);
    }
    const reply = (o: taxRates.CreateTaxRateOutcome) =>
      o.kind === 'created' ? created(`${req.baseUrl}/${o.rate.id}`, toTaxRateResponse(o.rate)) : undefined;
    const outcome = await taxRates.createTaxRate(ctx, idempotent(req, actorOf(req), reply), body);
    if (outcome.kind === 'overlap') throw overlap();
    send(res, reply(outcome)!);
  });

  router.get('/:taxRateId', async (req, res) => {
    const rate = await taxRates.getTaxRate(ctx, actorOf(req), req.params.taxRateId);
    if (!rate) throw noSuchRate(req.params.taxRateId);
    res.json(toTaxRateResponse(rate));
  });

  router.post('/:taxRateId/supersede', async (req, res) => {
    const body = req.body as RequestBody<'supersedeTaxRate'>;
    const reply = (o: taxRates.SupersedeOutcome) =>
      o.kind === 'superseded'
        ? ok({
            closed: toTaxRateResponse(o.closed),
            rate: toTaxRateResponse(o.rate),
          } satisfies Schemas['TaxRateSuperseded'])
        : undefined;
    const outcome = await taxRates.supersedeTaxRate(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.taxRateId,
      body,
    );
    if (outcome.kind === 'missing') throw noSuchRate(req.params.taxRateId);
    if (outcome.kind === 'closed-already') {
      throw conflict(
        `The rate ends on ${outcome.current.effective_until}, where rate ${outcome.successor.id} follows it: supersede that one.`,
      );
    }
    if (outcome.kind === 'not-before-end') {
      const end = outcome.current.effective_until;
      throw unprocessable(`effective_from must be before the rate's own end, ${end}.`, [
        { location: 'body', field: '/effective_from', message: `must be before ${end}` },
      ]);
    }
    if (outcome.kind === 'not-after-start') {
      throw unprocessable(
        `effective_from must be after the rate's own start, ${outcome.current.effective_from}.`,
        [
          {
            location: 'body',
            field: '/effective_from',
            message: `must be after ${outcome.current.effective_from}`,
          },
        ],
      );
    }
    if (outcome.kind === 'overlap') throw overlap();
    send(res, reply(outcome)!);
  });

  return router;
}
