// Users: the customers of a tenant.
import type pg from 'pg';
import type { UserRow } from '../database/schema.js';
import { isForeignKeyViolation, isUniqueViolation } from '../database/errors.js';
import { mergeMetadata, type Metadata, type MetadataUpdate, storedMetadata } from '../database/metadata.js';
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
  /** The tenant's own id for the customer, unique in the tenant. */
  external_id?: string | null | undefined;
  metadata?: Metadata | undefined;
}

/** A PATCH: the fields given change; metadata is merged (a null value removes its key). */
export type UserPatch = Partial<Omit<UserInput, 'metadata'>> & { metadata?: MetadataUpdate | undefined };

/** A unique value another user has. */
const taken = (error: unknown): 'email-taken' | 'external-id-taken' | undefined =>
  isUniqueViolation(error, 'users_email_key')
    ? 'email-taken'
    : isUniqueViolation(error, 'users_external_id_key')
      ? 'external-id-taken'
      : undefined;

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

export type CreateUserOutcome =
  { kind: 'created'; user: UserRow } | { kind: 'email-taken' } | { kind: 'external-id-taken' };

export async function createUser(
  ctx: ServiceContext,
  actor: Actor,
  input: UserInput,
): Promise<CreateUserOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateUserOutcome> => {
      const user = await users.insertUser(tx.db, {
        ...input,
        metadata: input.metadata && storedMetadata(input.metadata),
      });
      tx.emit({
        type: 'user.created',
        resource_type: 'user',
        resource_id: user.id,
        data: toUserResponse(user),
      });
      return { kind: 'created', user };
    });
  } catch (error) {
    const kind = taken(error);
    if (kind) return { kind };
    throw error;
  }
}

export type UpdateUserOutcome =
  | { kind: 'updated'; user: UserRow }
  | { kind: 'missing' }
  | { kind: 'stale'; current: UserRow }
  | { kind: 'email-taken' }
  | { kind: 'external-id-taken' }
  | { kind: 'too-much-metadata' };

/** Changes only what differs; a PATCH that changes nothing writes nothing and keeps the version. */
export async function updateUser(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: UserPatch,
  ifMatch?: VersionCondition,
): Promise<UpdateUserOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<UpdateUserOutcome> => {
      const before = await users.lockUser(tx.db, id);
      if (!before) return { kind: 'missing' };
      if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
      const metadata = patch.metadata && mergeMetadata(before.metadata, patch.metadata);
      if (metadata === 'too-many') return { kind: 'too-much-metadata' };
      const changes = {
        ...defined({
          name: patch.name,
          email: patch.email,
          region: patch.region,
          external_id: patch.external_id,
        }),
        ...(metadata && metadata !== before.metadata ? { metadata: storedMetadata(metadata) } : {}),
      };
      if (Object.keys(previousValues(before, { ...before, ...changes })).length === 0) {
        return { kind: 'updated', user: before };
      }
      const after = await users.updateUser(tx.db, id, changes);
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
    const kind = taken(error);
    if (kind) return { kind };
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
