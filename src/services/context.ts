// What every service function receives: the connections it may use, and who is acting.
import type { KeyCache } from '../auth/key-cache.js';
import { type Db, type TenantScope, withTenant } from '../database/connection.js';
import { isKeyRejected } from '../database/errors.js';
import type { ApiKeyRole } from '../database/schema.js';

/** A presented key found valid: who it acts as. */
export interface KeyHolder {
  keyId: string;
  tenantId: string;
  role: ApiKeyRole;
  apiKey: { prefix: string; hash: Buffer };
}

export interface ServiceContext {
  /** The app's pool: every transaction switches to the app role and one tenant (RLS). */
  readonly db: Db;
  /** Keys authenticated lately (see auth/key-cache.ts); absent where nothing authenticates keys. */
  readonly keyCache?: KeyCache<KeyHolder>;
}

/** Who acts, in which tenant: an API key over HTTP, or the system (CLI, seed, jobs). */
export interface Actor extends TenantScope {
  /** The API key's id, or 'system'. */
  readonly keyId: string;
}

/** One transaction, scoped to the actor's tenant: whatever must be true together commits together. */
export async function inTenant<T>(
  ctx: ServiceContext,
  actor: Actor,
  fn: (trx: Db) => Promise<T>,
): Promise<T> {
  try {
    return await withTenant(ctx.db, actor, fn);
  } catch (error) {
    // Revoked or expired since it was cached: the next request checks the database first.
    if (isKeyRejected(error)) ctx.keyCache?.forgetKey(actor.keyId);
    throw error;
  }
}

/** A page of rows: the query fetched limit + 1, so `more` says whether another page follows. */
export interface Page<Row> {
  rows: Row[];
  more: boolean;
}

export function toPage<Row>(rows: Row[], limit: number): Page<Row> {
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}
