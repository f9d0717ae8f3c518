import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { idempotent } from '../http/idempotency.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { ifMatch, notModified } from '../http/preconditions.js';
import { conflict, notFound, preconditionFailed, unprocessable } from '../http/problems.js';
import { created, etag, noContent, ok, send } from '../http/replies.js';
import { toBalanceTransactionResponse } from '../responses/customer-balance.js';
import { toUserResponse } from '../responses/users.js';
import type { ServiceContext } from '../services/context.js';
import { listBalanceTransactions } from '../services/customer-balance.js';
import * as users from '../services/users.js';

const noSuchUser = (id: string) => notFound(`No user with id ${id}.`);
const emailTaken = () =>
  conflict('A user with this email already exists.', [
    { location: 'body', field: '/email', message: 'already taken by another user' },
  ]);
const externalIdTaken = () =>
  conflict('A user with this external_id already exists.', [
    { location: 'body', field: '/external_id', message: 'already taken by another user' },
  ]);
const tooMuchMetadata = () =>
  unprocessable('The metadata would have more than 50 keys: remove some (set them to null) first.', [
    { location: 'body', field: '/metadata', message: 'more than 50 keys once merged' },
  ]);
const stale = (current: { version: number }) => preconditionFailed('user', current.version);
const withEtag = (user: { version: number }) => ({ ETag: etag(user.version) });

/** Why a user cannot be deleted, by the table whose rows name it. */
const WHY_KEPT: Record<string, string> = {
  subscriptions:
    'The user has subscriptions; delete them first (canceled ones too). One that was invoiced is never deleted, and neither is its customer.',
  wallets: 'The user has a wallet, whose ledger is kept for good: a user with a wallet is never deleted.',
  usage_events: 'The user has usage events, which are kept for good: a user with usage is never deleted.',
  customer_balance_transactions:
    "The user's balance has transactions, which are kept for good: such a user is never deleted.",
};

export function usersRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listUsers'>;
    const page = await users.listUsers(ctx, actorOf(req), {
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
      email: query.email,
      externalId: query.external_id,
    });
    res.json(toPageResponse(req, page, toUserResponse, (u) => u.id) satisfies Schemas['UserList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createUser'>;
    const reply = (o: users.CreateUserOutcome) =>
      o.kind === 'created'
        ? created(`${req.baseUrl}/${o.user.id}`, toUserResponse(o.user), withEtag(o.user))
        : undefined;
    const outcome = await users.createUser(ctx, idempotent(req, actorOf(req), reply), {
      name: body.name,
      email: body.email,
      region: body.region ?? null,
      external_id: body.external_id,
      metadata: body.metadata,
    });
    if (outcome.kind === 'email-taken') throw emailTaken();
    if (outcome.kind === 'external-id-taken') throw externalIdTaken();
    send(res, reply(outcome)!);
  });

  router.get('/:userId', async (req, res) => {
    const user = await users.getUser(ctx, actorOf(req), req.params.userId);
    if (!user) throw noSuchUser(req.params.userId);
    if (notModified(req, res, user.version)) return;
    send(res, ok(toUserResponse(user), withEtag(user)));
  });

  router.get('/:userId/balance-transactions', async (req, res) => {
    const query = req.query as Query<'listBalanceTransactions'>;
    const page = await listBalanceTransactions(ctx, actorOf(req), {
      userId: req.params.userId,
      limit: query.limit ?? 20,
      after: decodeCursor(req, query.cursor),
    });
    if (!page) throw noSuchUser(req.params.userId);
    res.json(
      toPageResponse(
        req,
        page,
        toBalanceTransactionResponse,
        (t) => t.id,
      ) satisfies Schemas['BalanceTransactionList'],
    );
  });

  router.patch('/:userId', async (req, res) => {
    const body = req.body as RequestBody<'updateUser'>;
    const reply = (o: users.UpdateUserOutcome) =>
      o.kind === 'updated' ? ok(toUserResponse(o.user), withEtag(o.user)) : undefined;
    const outcome = await users.updateUser(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.userId,
      {
        name: body.name,
        email: body.email,
        region: body.region,
        external_id: body.external_id,
        metadata: body.metadata,
      },
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchUser(req.params.userId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'email-taken') throw emailTaken();
    if (outcome.kind === 'external-id-taken') throw externalIdTaken();
    if (outcome.kind === 'too-much-metadata') throw tooMuchMetadata();
    send(res, reply(outcome)!);
  });

  router.delete('/:userId', async (req, res) => {
    const reply = (o: users.DeleteUserOutcome) => (o.kind === 'deleted' ? noContent() : undefined);
    const outcome = await users.deleteUser(
      ctx,
      idempotent(req, actorOf(req), reply),
      req.params.userId,
      ifMatch(req),
    );
    if (outcome.kind === 'missing') throw noSuchUser(req.params.userId);
    if (outcome.kind === 'stale') throw stale(outcome.current);
    if (outcome.kind === 'referenced') throw conflict(WHY_KEPT[outcome.table] ?? WHY_KEPT.subscriptions!);
    send(res, reply(outcome)!);
  });

  return router;
}
