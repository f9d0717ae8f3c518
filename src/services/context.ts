// What every service function receives: the connections it may use, and who is acting.
import { type Db, type TenantScope, withTenant } from '../database/connection.js';

export interface ServiceContext {
  /** The app's pool: every transaction switches to the app role and one tenant (RLS). */
  readonly db: Db;
}

/** Who acts, in which tenant: an API key over HTTP, or the system (CLI, seed, jobs). */
export interface Actor extends TenantScope {
  /** The API key's id, or 'system'. */
  readonly keyId: string;
}

/** One transaction, scoped to the actor's tenant: whatever must be true together commits together. */
export function inTenant<T>(ctx: ServiceContext, actor: Actor, fn: (trx: Db) => Promise<T>): Promise<T> {
  return withTenant(ctx.db, actor, fn);
}

/** A page of rows: the query fetched limit + 1, so `more` says whether another page follows. */
export interface Page<Row> {
  rows: Row[];
  more: boolean;
}

export function toPage<Row>(rows: Row[], limit: number): Page<Row> {
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}
