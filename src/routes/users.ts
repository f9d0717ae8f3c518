import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { decodeCursor, toPageResponse } from '../http/pagination.js';
import { conflict, notFound } from '../http/problems.js';
import { toUserResponse } from '../responses/users.js';
import type { ServiceContext } from '../services/context.js';
import * as users from '../services/users.js';

const noSuchUser = (id: string) => notFound(`No user with id ${id}.`);
const emailTaken = () =>
  conflict('A user with this email already exists.', [
    { location: 'body', field: '/email', message: 'already taken by another user' },
  ]);

export function usersRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listUsers'>;
    const limit = query.limit ?? 20;
    const page = await users.listUsers(ctx, actorOf(req), {
      limit,
      after: decodeCursor(query.cursor),
      email: query.email,
    });
    res.json(toPageResponse(page, toUserResponse, (u) => u.id) satisfies Schemas['UserList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createUser'>;
    const outcome = await users.createUser(ctx, actorOf(req), { name: body.name, email: body.email });
    if (outcome.kind === 'email-taken') throw emailTaken();
    res.status(201).location(`${req.baseUrl}/${outcome.user.id}`).json(toUserResponse(outcome.user));
  });

  router.get('/:userId', async (req, res) => {
    const user = await users.getUser(ctx, actorOf(req), req.params.userId);
    if (!user) throw noSuchUser(req.params.userId);
    res.json(toUserResponse(user));
  });

  router.patch('/:userId', async (req, res) => {
    const body = req.body as RequestBody<'updateUser'>;
    const outcome = await users.updateUser(ctx, actorOf(req), req.params.userId, {
      name: body.name,
      email: body.email,
    });
    if (outcome.kind === 'missing') throw noSuchUser(req.params.userId);
    if (outcome.kind === 'email-taken') throw emailTaken();
    res.json(toUserResponse(outcome.user));
  });

  router.delete('/:userId', async (req, res) => {
    const outcome = await users.deleteUser(ctx, actorOf(req), req.params.userId);
    if (outcome.kind === 'missing') throw noSuchUser(req.params.userId);
    if (outcome.kind === 'has-subscriptions') {
      throw conflict('The user has subscriptions; delete them first (canceled ones too).');
    }
    res.status(204).end();
  });

  return router;
}
