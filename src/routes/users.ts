import { Router } from 'express';
import type { Query, RequestBody, Schemas } from '../contract.js';
import { inTenant } from '../auth/authenticate.js';
import type { Db } from '../db.js';
import { conflict, isPgError, notFound } from '../errors.js';
import { decodeCursor, toPage } from '../pagination.js';
import * as users from '../queries/users.js';
import type { UserRow } from '../schema.js';

export function toUserResponse(row: UserRow): Schemas['User'] {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

const noSuchUser = (id: string) => notFound(`No user with id ${id}.`);

export function usersRouter(db: Db): Router {
  const router = Router({ caseSensitive: true });

  router.get('/', async (req, res) => {
    const query = req.query as Query<'listUsers'>;
    const limit = query.limit ?? 20;
    const rows = await inTenant(db, req, (trx) =>
      users.listUsers(trx, { limit, after: decodeCursor(query.cursor), email: query.email }),
    );
    res.json(toPage(rows, limit, toUserResponse) satisfies Schemas['UserList']);
  });

  router.post('/', async (req, res) => {
    const body = req.body as RequestBody<'createUser'>;
    const user = await inTenant(db, req, (trx) =>
      users.insertUser(trx, { name: body.name, email: body.email }),
    );
    res.status(201).location(`${req.baseUrl}/${user.id}`).json(toUserResponse(user));
  });

  router.get('/:userId', async (req, res) => {
    const user = await inTenant(db, req, (trx) => users.findUser(trx, req.params.userId));
    if (!user) throw noSuchUser(req.params.userId);
    res.json(toUserResponse(user));
  });

  router.patch('/:userId', async (req, res) => {
    const body = req.body as RequestBody<'updateUser'>;
    const user = await inTenant(db, req, (trx) =>
      users.updateUser(trx, req.params.userId, { name: body.name, email: body.email }),
    );
    if (!user) throw noSuchUser(req.params.userId);
    res.json(toUserResponse(user));
  });

  router.delete('/:userId', async (req, res) => {
    try {
      if (!(await inTenant(db, req, (trx) => users.deleteUser(trx, req.params.userId))))
        throw noSuchUser(req.params.userId);
    } catch (error) {
      if (isPgError(error, '23503')) {
        throw conflict('The user has subscriptions; delete them first (canceled ones too).');
      }
      throw error;
    }
    res.status(204).end();
  });

  return router;
}
