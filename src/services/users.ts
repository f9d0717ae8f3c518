// Users: the customers of a tenant.
import type { UserRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import * as users from '../queries/users.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage } from './context.js';

export interface UserInput {
  name: string;
  email: string;
}

export async function listUsers(
  ctx: ServiceContext,
  actor: Actor,
  filter: users.UserFilter,
): Promise<Page<UserRow>> {
  return toPage(await inTenant(ctx, actor, (trx) => users.listUsers(trx, filter)), filter.limit);
}

export function getUser(ctx: ServiceContext, actor: Actor, id: string): Promise<UserRow | undefined> {
  return inTenant(ctx, actor, (trx) => users.findUser(trx, id));
}

export type CreateUserOutcome = { kind: 'created'; user: UserRow } | { kind: 'email-taken' };

export async function createUser(
  ctx: ServiceContext,
  actor: Actor,
  input: UserInput,
): Promise<CreateUserOutcome> {
  try {
    return { kind: 'created', user: await inTenant(ctx, actor, (trx) => users.insertUser(trx, input)) };
  } catch (error) {
    if (isUniqueViolation(error, 'users_email_key')) return { kind: 'email-taken' };
    throw error;
  }
}

export type UpdateUserOutcome =
  { kind: 'updated'; user: UserRow } | { kind: 'missing' } | { kind: 'email-taken' };

export async function updateUser(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: Partial<UserInput>,
): Promise<UpdateUserOutcome> {
  try {
    const user = await inTenant(ctx, actor, (trx) => users.updateUser(trx, id, patch));
    return user ? { kind: 'updated', user } : { kind: 'missing' };
  } catch (error) {
    if (isUniqueViolation(error, 'users_email_key')) return { kind: 'email-taken' };
    throw error;
  }
}

export type DeleteUserOutcome = { kind: 'deleted' } | { kind: 'missing' } | { kind: 'has-subscriptions' };

export async function deleteUser(ctx: ServiceContext, actor: Actor, id: string): Promise<DeleteUserOutcome> {
  try {
    return (await inTenant(ctx, actor, (trx) => users.deleteUser(trx, id)))
      ? { kind: 'deleted' }
      : { kind: 'missing' };
  } catch (error) {
    // restrict: billing history never disappears as a side effect.
    if (isForeignKeyViolation(error)) return { kind: 'has-subscriptions' };
    throw error;
  }
}
