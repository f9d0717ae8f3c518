// Users: the customers of a tenant.
import type pg from 'pg';
import type { UserRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import * as users from '../queries/users.js';
import { toUserResponse } from '../responses/users.js';
import {
  type Actor,
  defined,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type VersionCondition,
} from './context.js';

export interface UserInput {
  name: string;
  email: string;
  /** Where the user is billed: decides the tax rates on their invoices. */
  region?: string | null | undefined;
}

export async function listUsers(
  ctx: ServiceContext,
  actor: Actor,
  filter: users.UserFilter,
): Promise<Page<UserRow>> {
  return toPage(
    await inTenant(ctx, actor, (tx) => users.listUsers(tx.db, filter), { oneStatement: true }),
    filter.limit,
  );
}

export function getUser(ctx: ServiceContext, actor: Actor, id: string): Promise<UserRow | undefined> {
  return inTenant(ctx, actor, (tx) => users.findUser(tx.db, id), { oneStatement: true });
}

export type CreateUserOutcome = { kind: 'created'; user: UserRow } | { kind: 'email-taken' };

export async function createUser(
  ctx: ServiceContext,
  actor: Actor,
  input: UserInput,
): Promise<CreateUserOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateUserOutcome> => {
      const user = await users.insertUser(tx.db, input);
      tx.emit({
        type: 'user.created',
        resource_type: 'user',
        resource_id: user.id,
        data: toUserResponse(user),
      });
      return { kind: 'created', user };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'users_email_key')) return { kind: 'email-taken' };
    throw error;
  }
}

export type UpdateUserOutcome =
  | { kind: 'updated'; user: UserRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: UserRow }
  | { kind: 'email-taken' };

/** Changes only what differs; a PATCH that changes nothing writes nothing and keeps the version. */
export async function updateUser(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: Partial<UserInput>,
  ifMatch?: VersionCondition,
): Promise<UpdateUserOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<UpdateUserOutcome> => {
      const before = await users.lockUser(tx.db, id);
      if (!before) return { kind: 'missing' };
      if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
      if (Object.keys(previousValues(before, { ...before, ...defined(patch) })).length === 0) {
        return { kind: 'updated', user: before };
      }
      const after = await users.updateUser(tx.db, id, patch);
      const data = toUserResponse(after);
      tx.emit({
        type: 'user.updated',
        resource_type: 'user',
        resource_id: id,
        data,
        previous: previousValues(toUserResponse(before), data),
      });
      return { kind: 'updated', user: after };
    });
  } catch (error) {
    if (isUniqueViolation(error, 'users_email_key')) return { kind: 'email-taken' };
    throw error;
  }
}

export type DeleteUserOutcome =
  | { kind: 'deleted' }
  | { kind: 'missing' }
  | { kind: 'stale'; current: UserRow }
  /** Rows of `table` name the user: its subscriptions, or history kept forever (see the route). */
  | { kind: 'referenced'; table: string };

export async function deleteUser(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeleteUserOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<DeleteUserOutcome> => {
      if (ifMatch !== undefined) {
        const current = await users.lockUser(tx.db, id);
        if (current && !satisfies(ifMatch, current.version)) return { kind: 'stale', current };
      }
      const deleted = await users.deleteUser(tx.db, id);
      if (!deleted) return { kind: 'missing' };
      tx.emit({
        type: 'user.deleted',
        resource_type: 'user',
        resource_id: id,
        data: toUserResponse(deleted),
      });
      return { kind: 'deleted' };
    });
  } catch (error) {
    // restrict: billing history never disappears as a side effect.
    if (isForeignKeyViolation(error))
      return { kind: 'referenced', table: (error as pg.DatabaseError).table ?? '' };
    throw error;
  }
}
