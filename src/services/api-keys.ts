// A tenant's API keys: issuing, listing, revoking, and recognising a presented key.
import { generateKey, parseKey } from '../auth/keys.js';
import type { Db } from '../database/connection.js';
import type { ApiKeyRole, ApiKeyRow } from '../database/schema.js';
import * as apiKeys from '../queries/api-keys.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';

/** A key as presented and found valid: who it acts as. */
export interface KeyHolder {
  keyId: string;
  tenantId: string;
  role: ApiKeyRole;
}

/** The holder of a presented key; undefined for a malformed, unknown, revoked or expired one. */
export async function authenticateKey(
  ctx: ServiceContext,
  presented: string,
): Promise<KeyHolder | undefined> {
  const parsed = parseKey(presented);
  if (!parsed) return undefined;
  const row = await apiKeys.authenticateApiKey(ctx.db, parsed.prefix, parsed.hash);
  return row && { keyId: row.key_id, tenantId: row.tenant_id, role: row.role };
}

export interface NewKeyInput {
  name: string;
  role: ApiKeyRole;
  expiresAt: Date | null;
}

/** Creates a key in the transaction's tenant; the only time its secret exists outside a hash. */
export async function issueApiKey(trx: Db, input: NewKeyInput): Promise<{ row: ApiKeyRow; key: string }> {
  const { key, prefix, hash } = generateKey();
  const row = await apiKeys.insertApiKey(trx, {
    name: input.name,
    role: input.role,
    prefix,
    key_hash: hash,
    expires_at: input.expiresAt,
  });
  return { row, key };
}

export type CreateKeyOutcome = { kind: 'created'; row: ApiKeyRow; key: string } | { kind: 'expiry-in-past' };

export async function createApiKey(
  ctx: ServiceContext,
  actor: Actor,
  input: NewKeyInput,
): Promise<CreateKeyOutcome> {
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) return { kind: 'expiry-in-past' };
  return { kind: 'created', ...(await inTenant(ctx, actor, (trx) => issueApiKey(trx, input))) };
}

export function listApiKeys(ctx: ServiceContext, actor: Actor): Promise<ApiKeyRow[]> {
  return inTenant(ctx, actor, (trx) => apiKeys.listApiKeys(trx));
}

export type RevokeOutcome = 'revoked' | 'missing' | 'last-admin';

/**
 * Revokes a key unless it is the tenant's last active admin key: without one, nobody could
 * manage the tenant's keys again. The active admin keys are locked first, so two admins revoking
 * each other at the same moment cannot both succeed.
 */
export function revokeApiKey(ctx: ServiceContext, actor: Actor, id: string): Promise<RevokeOutcome> {
  return inTenant(ctx, actor, async (trx) => {
    const admins = await apiKeys.lockActiveAdminKeys(trx);
    if (admins.length === 1 && admins[0]?.id === id) return 'last-admin';
    return (await apiKeys.revokeApiKey(trx, id)) ? 'revoked' : 'missing';
  });
}
