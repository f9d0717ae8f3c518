// Housekeeping the API runs on a timer until the background worker takes it over.
import * as idempotencyKeys from '../queries/idempotency-keys.js';
import type { ServiceContext } from './context.js';

/** Deletes idempotency keys past their 24 hours, in every tenant; returns how many. */
export function purgeExpiredIdempotencyKeys(ctx: ServiceContext): Promise<number> {
  return idempotencyKeys.purgeExpired(ctx.db);
}
