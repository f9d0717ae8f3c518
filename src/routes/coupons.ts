import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { notFound, unprocessable } from '../http/problems.js';
import { created, send } from '../http/replies.js';
import { toCouponResponse } from '../responses/coupons.js';
import type { ServiceContext } from '../services/context.js';
import * as coupons from '../services/coupons.js';

const noSuchCoupon = (id: string) => notFound(`No coupon with id ${id}.`);

export function couponsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listCoupons'>;
    const page = await coupons.listCoupons(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
    });
    const now = new Date();
    res.json(
      toPageResponse(
        req,
        page,
        (c) => toCouponResponse(c, now),
        (c) => c.id,
      ) satisfies Schemas['CouponList'],
    );
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createCoupon'>;
    const reply = (o: coupons.CreateCouponOutcome) =>
      o.kind === 'created' ? created(`${req.baseUrl}/${o.coupon.id}`, toCouponResponse(o.coupon)) : undefined;
    const outcome = await coupons.createCoupon(ctx, idempotent(req, actorOf(req), reply), body);
    if (outcome.kind === 'invalid') {
      throw unprocessable(
        outcome.errors.map((e) => `${e.field.slice(1)} ${e.message}`).join('; ') + '.',
        outcome.errors.map((e) => ({ location: 'body' as const, ...e })),
      );
    }
    send(res, reply(outcome)!);
  });

  router.get('/:couponId', async (req, res) => {
    const coupon = await coupons.getCoupon(ctx, actorOf(req), req.params.couponId);
    if (!coupon) throw noSuchCoupon(req.params.couponId);
    res.json(toCouponResponse(coupon));
  });

  router.delete('/:couponId', async (req, res) => {
    const coupon = await coupons.deleteCoupon(ctx, actorOf(req), req.params.couponId);
    if (!coupon) throw noSuchCoupon(req.params.couponId);
    res.json(toCouponResponse(coupon));
  });

  return router;
}
