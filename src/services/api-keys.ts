// A tenant's API keys: issuing, listing, revoking, and recognising a presented key.
import { generateKey, parseKey } from '../auth/keys.js';
import type { ApiKeyRole, ApiKeyRow } from '../database/schema.js';
import * as apiKeys from '../queries/api-keys.js';
import { toApiKeyResponse } from '../responses/api-keys.js';
import { type Actor, inTenant, type KeyHolder, type ServiceContext, type Tx } from './context.js';

/**
 * The holder of a presented key; undefined for a malformed, unknown, revoked or expired one.
 * Served from the key cache when it was checked lately; the request's transaction checks again.
 */
export async function authenticateKey(
  ctx: ServiceContext,
  presented: string,
): Promise<KeyHolder | undefined> {
  // Cached by the key as presented: a hit costs no hashing either.
  const cached = ctx.keyCache?.get(presented);
  if (cached) return cached;
  const parsed = parseKey(presented);
  if (!parsed) return undefined;
  const row = await apiKeys.authenticateApiKey(ctx.db, parsed.prefix, parsed.hash);
  if (!row) return undefined;
  const holder = { keyId: row.key_id, tenantId: row.tenant_id, role: row.role, apiKey: parsed };
  // Not cached past the key's expiry: its next request is refused before its body is read.
  ctx.keyCache?.set(presented, holder, row.expires_at?.getTime());
  return holder;
}

export interface NewKeyInput {
  name: string;
  role: ApiKeyRole;
  expiresAt: Date | null;
}

/** Creates a key in the transaction's tenant; the only time its secret exists outside a hash. */
export async function issueApiKey(tx: Tx, input: NewKeyInput): Promise<{ row: ApiKeyRow; key: string }> {
  const { key, prefix, hash } = generateKey();
  const row = await apiKeys.insertApiKey(tx.db, {
    name: input.name,
    role: input.role,
    prefix,
    key_hash: hash,
    expires_at: input.expiresAt,
  });
  // The event carries the key as listed, never its secret.
  tx.emit({
    type: 'api_key.created',
    resource_type: 'api_key',
    resource_id: row.id,
    data: toApiKeyResponse(row),
  });
  return { row, key };
}

export type CreateKeyOutcome = { kind: 'created'; row: ApiKeyRow; key: string } | { kind: 'expiry-in-past' };

export function createApiKey(
  ctx: ServiceContext,
  actor: Actor,
  input: NewKeyInput,
): Promise<CreateKeyOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<CreateKeyOutcome> => {
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) return { kind: 'expiry-in-past' };
    return { kind: 'created', ...(await issueApiKey(tx, input)) };
  });
}

export function listApiKeys(ctx: ServiceContext, actor: Actor): Promise<ApiKeyRow[]> {
  return inTenant(ctx, actor, (tx) => apiKeys.listApiKeys(tx.db));
}

export type RevokeOutcome = 'revoked' | 'missing' | 'last-admin';

/**
 * Revokes a key unless it is the tenant's last admin key that is unrevoked and never expires:
 * without one, nobody could manage the tenant's keys again. An admin key with an expiry does not
 * count, however far off: once it lapsed, the tenant would be locked out. Those keys are locked
 * first, so two admins revoking each other at the same moment cannot both succeed.
 */
export async function revokeApiKey(ctx: ServiceContext, actor: Actor, id: string): Promise<RevokeOutcome> {
  const outcome = await inTenant(ctx, actor, async (tx): Promise<RevokeOutcome> => {
    const admins = await apiKeys.lockPermanentAdminKeys(tx.db);
    if (admins.length === 1 && admins[0]?.id === id) return 'last-admin';
    const revoked = await apiKeys.revokeApiKey(tx.db, id);
    if (!revoked) return 'missing';
    // Revoking a revoked key changes nothing: no event again.
    if (revoked.revokedNow)
      tx.emit({
        type: 'api_key.revoked',
        resource_type: 'api_key',
        resource_id: id,
        data: toApiKeyResponse(revoked.key),
        previous: { revoked_at: null },
      });
    return 'revoked';
  });
  // Other processes may serve it from their caches for a while, but their transactions check the
  // key again: it can do nothing anywhere from now on.
  if (outcome === 'revoked') ctx.keyCache?.forgetKey(id);
  return outcome;
}
