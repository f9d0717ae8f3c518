import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, ProblemError, unprocessable } from '../http/problems.js';
import { created, etag, ok, send } from '../http/replies.js';
import { toGrantResponse, toHoldResponse, toLedgerResponse, toWalletResponse } from '../responses/wallets.js';
import type { ServiceContext } from '../services/context.js';
import { buyCredits, type PurchaseOutcome } from '../services/credit-purchases.js';
import * as holds from '../services/wallet-ops.js';
import * as wallets from '../services/wallets.js';

const noSuchWallet = (id: string) => notFound(`No wallet with id ${id}.`);
const noSuchHold = (id: string) => notFound(`No hold with id ${id}.`);
const invalid = (errors: Array<{ field: string; message: string }>) =>
  unprocessable(
    `The request breaks a rule: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
    errors.map((e) => ({ location: 'body' as const, ...e })),
  );
const withEtag = (v: { wallet: { version: number } }) => ({ ETag: etag(v.wallet.version) });
const insufficient = (detail: string) => new ProblemError(409, 'insufficient-credits', detail);
const overdraftNeedsAdmin = () =>
  new ProblemError(
    403,
    'forbidden',
    'An overdraft lets the customer spend credits never granted: setting or raising overdraft_limit needs an admin key (the admin scope), as a grant does.',
  );
const withOverdraft = (o: { overdraft: boolean }) =>
  o.overdraft ? ', counting what is left of its overdraft' : '';

export function walletsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listWallets'>;
    const page = await wallets.listWallets(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      userId: query.user_id,
    });
    res.json(toPageResponse(req, page, toWalletResponse, (w) => w.wallet.id) satisfies Schemas['WalletList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createWallet'>;
    const reply = (o: wallets.CreateWalletOutcome) =>
      o.kind === 'created'
        ? created(`${req.baseUrl}/${o.wallet.wallet.id}`, toWalletResponse(o.wallet), withEtag(o.wallet))
        : undefined;
    const outcome = await wallets.createWallet(ctx, idempotent(req, actorOf(req), reply), body);
    if (outcome.kind === 'needs-admin')
      throw outcome.what === 'overdraft'
        ? overdraftNeedsAdmin()
        : new ProblemError(
            403,
            'forbidden',
            "A wallet's rate prices its credits (what a credit pays of usage, and buys for money): a rate other than 1 needs an admin key (the admin scope), as a grant does.",
          );
    if (outcome.kind === 'invalid') throw invalid(outcome.errors);
    if (outcome.kind === 'no-clock') {
      throw unprocessable(`test_clock_id does not refer to an existing test clock.`, [
        { location: 'body', field: '/test_clock_id', message: 'no such test clock' },
      ]);
    }
    if (outcome.kind === 'no-user') {
      throw unprocessable(`user_id does not refer to an existing user.`, [
        { location: 'body', field: '/user_id', message: 'no such user' },
      ]);
    }
    send(res, reply(outcome)!);
  });

  router.get('/:walletId', async (req, res) => {
    const wallet = await wallets.getWallet(ctx, actorOf(req), req.params.walletId);
    if (!wallet) throw noSuchWallet(req.params.walletId);
    // The ETag is the settings' version, and the balances move without it: Express would answer
    // 304 to an If-None-Match naming it (res.send's freshness check), a stale balance.
    delete req.headers['if-none-match'];
    send(res, ok(toWalletResponse(wallet) satisfies Schemas['Wallet'], withEtag(wallet)));
  });

  router.patch('/:walletId', async (req, res) => {
    const body = req.body as RequestBody<'updateWallet'>;
    const reply = (o: wallets.UpdateWalletOutcome) =>
      o.kind === 'updated' ? ok(toWalletResponse(o.wallet), withEtag(o.wallet)) : undefined;
    const outcome = await wallets.updateWallet(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.walletId,
      body,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchWallet(req.params.walletId);
    if (outcome.kind === 'stale') throw preconditionFailed('wallet', outcome.current.version);
    if (outcome.kind === 'needs-admin') throw overdraftNeedsAdmin();
    if (outcome.kind === 'overdraft-in-use') {
      throw conflict(
        `The wallet uses ${outcome.used} credits of its overdraft (overdrawn or held): its overdraft_limit cannot go below that.`,
        [{ location: 'body', field: '/overdraft_limit', message: `must be at least ${outcome.used}` }],
      );
    }
    if (outcome.kind === 'invalid') throw invalid(outcome.errors);
    send(res, reply(outcome)!);
  });

  router.post('/:walletId/grants', async (req, res) => {
    const body = req.body as RequestBody<'createGrant'>;
    const reply = (o: wallets.GrantOutcome | PurchaseOutcome) =>
      o.kind === 'granted' ? created(`/api/v1/grants/${o.grant.id}`, toGrantResponse(o.grant)) : undefined;
    const actor = idempotent(req, actorOf(req), reply);
    const outcome =
      body.kind === 'paid'
        ? await buyCredits(ctx, actor, req.params.walletId, body)
        : await wallets.createGrant(ctx, actor, req.params.walletId, body);
    if (outcome.kind === 'missing') throw noSuchWallet(req.params.walletId);
    if (outcome.kind === 'invalid') throw invalid(outcome.errors);
    send(res, reply(outcome)!);
  });

  router.post('/:walletId/holds', async (req, res) => {
    const body = req.body as RequestBody<'createHold'>;
    const reply = (o: holds.HoldOutcome) =>
      o.kind === 'held' ? created(`/api/v1/holds/${o.hold.id}`, toHoldResponse(o.hold)) : undefined;
    const outcome = await holds.createHold(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.walletId,
      body,
    );
    if (outcome.kind === 'missing') throw noSuchWallet(req.params.walletId);
    if (outcome.kind === 'invalid') throw invalid(outcome.errors);
    if (outcome.kind === 'insufficient') {
      throw insufficient(
        `The wallet has ${outcome.available} credits available${withOverdraft(outcome)}, fewer than ${body.credits}.`,
      );
    }
    send(res, reply(outcome)!);
  });

  router.get('/:walletId/grants', async (req, res) => {
    const query = req.query as Query<'listGrants'>;
    const page = await wallets.listGrants(ctx, actorOf(req), req.params.walletId, {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
    });
    if (!page) throw noSuchWallet(req.params.walletId);
    res.json(toPageResponse(req, page, toGrantResponse, (g) => g.id) satisfies Schemas['GrantList']);
  });

  router.get('/:walletId/transactions', async (req, res) => {
    const query = req.query as Query<'listWalletTransactions'>;
    const page = await wallets.listLedger(ctx, actorOf(req), req.params.walletId, {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
    });
    if (!page) throw noSuchWallet(req.params.walletId);
    res.json(toPageResponse(req, page, toLedgerResponse, (l) => l.id) satisfies Schemas['LedgerPage']);
  });

  return router;
}

/** Mounted at /api/v1/grants. */
export function grantsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/:grantId', async (req, res) => {
    const grant = await wallets.getGrant(ctx, actorOf(req), req.params.grantId);
    if (!grant) throw notFound(`No grant with id ${req.params.grantId}.`);
    res.json(toGrantResponse(grant) satisfies Schemas['Grant']);
  });
  return router;
}

export function holdsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/:holdId', async (req, res) => {
    const hold = await wallets.getHold(ctx, actorOf(req), req.params.holdId);
    if (!hold) throw noSuchHold(req.params.holdId);
    res.json(toHoldResponse(hold) satisfies Schemas['Hold']);
  });

  const settled = (req: { params: { holdId: string } }, o: holds.SettleOutcome) => {
    if (o.kind === 'missing') throw noSuchHold(req.params.holdId);
    if (o.kind === 'invalid') throw invalid(o.errors);
    if (o.kind === 'not-pending') {
      throw conflict(`The hold is ${o.hold.status}: only a pending hold can be captured or released.`);
    }
    if (o.kind === 'insufficient') {
      throw insufficient(
        `The capture is ${o.excess} credits over the hold, and the wallet has ${o.available} available${withOverdraft(o)}: nothing was captured.`,
      );
    }
  };

  router.post('/:holdId/capture', async (req, res) => {
    const body = req.body as RequestBody<'captureHold'>;
    const reply = (o: holds.SettleOutcome) => (o.kind === 'settled' ? ok(toHoldResponse(o.hold)) : undefined);
    const outcome = await holds.captureHold(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.holdId,
      body,
    );
    settled(req, outcome);
    send(res, reply(outcome)!);
  });

  router.post('/:holdId/release', async (req, res) => {
    const reply = (o: holds.SettleOutcome) => (o.kind === 'settled' ? ok(toHoldResponse(o.hold)) : undefined);
    const outcome = await holds.releaseHold(ctx, idempotent(req, actorOf(req), reply), req.params.holdId);
    settled(req, outcome);
    send(res, reply(outcome)!);
  });

  return router;
}
