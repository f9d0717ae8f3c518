// The rules of a tenant's API keys. Run inside the tenant's transaction (withTenant).
import * as apiKeys from '../queries/api-keys.js';
import type { Db } from '../db.js';

export type RevokeOutcome = 'revoked' | 'missing' | 'last-admin';

/**
 * Revokes a key unless it is the tenant's last active admin key: without one, nobody could
 * manage the tenant's keys again. The active admin keys are locked first, so two admins revoking
 * each other at the same moment cannot both succeed.
 */
export async function revokeApiKey(trx: Db, id: string): Promise<RevokeOutcome> {
  const admins = await apiKeys.lockActiveAdminKeys(trx);
  if (admins.length === 1 && admins[0]?.id === id) return 'last-admin';
  return (await apiKeys.revokeApiKey(trx, id)) ? 'revoked' : 'missing';
}
