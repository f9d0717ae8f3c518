// The dispatcher's steps (src/webhooks/dispatcher.ts): claim due deliveries across tenants (as
// the owner, ids only), read what to send in the delivery's tenant, and record each attempt there,
// with its consequences: the next attempt's time, the delivery's end, the endpoint disabled.
import type { Db } from '../database/connection.js';
import type { WebhookDeliveryStatus } from '../database/schema.js';
import * as webhooks from '../queries/webhooks.js';
import { toEventResponse } from '../responses/events.js';
import { toWebhookEndpointResponse } from '../responses/webhooks.js';
import { type Actor, inTenant, type ServiceContext } from './context.js';

export interface DeliveryContext extends ServiceContext {
  /** The owner's pool: claims due deliveries across tenants. */
  readonly ownerDb: Db;
}

export interface RetrySettings {
  /** The first retry waits up to this; each later one up to twice the one before (then 6 h at most). */
  readonly retryBaseMs: number;
  /** Retries end this long after the first attempt; an endpoint failing this long is disabled. */
  readonly retryForMs: number;
  /** Tests: replaces Math.random for the jitter. */
  readonly random?: () => number;
}

const MAX_DELAY_MS = 6 * 3600 * 1000;
const system = (tenantId: string): Actor => ({ tenantId, keyId: 'system' });

/**
 * The wait before the attempt after attempt `made`: exponential, with full jitter (a random
 * point in [0, base × 2^(made−1)], capped at 6 h), so that receivers coming back from an outage
 * are not hit by every sender's retries in the same second.
 */
export function retryDelayMs(made: number, settings: RetrySettings): number {
  const ceiling = Math.min(settings.retryBaseMs * 2 ** Math.min(made - 1, 30), MAX_DELAY_MS);
  return Math.floor((settings.random ?? Math.random)() * ceiling);
}

/**
 * The wait before an endpoint that failed `failures` times in a row is tried again: the
 * deliveries' schedule (base × 2^(failures−1), at most 6 h), with equal jitter (between half of
 * it and all of it), so that a dead endpoint is tried about once per step, never at once again.
 */
export function endpointDelayMs(failures: number, settings: RetrySettings): number {
  const ceiling = Math.min(settings.retryBaseMs * 2 ** Math.min(failures - 1, 30), MAX_DELAY_MS);
  return Math.floor(ceiling / 2 + ((settings.random ?? Math.random)() * ceiling) / 2);
}

/**
 * An endpoint's health after a failed attempt begun at `attemptedAt`. Only an attempt begun once
 * its backoff had passed (or with none) counts as a step: attempts that were in flight together,
 * or a retry asked for through the API meanwhile, do not lengthen it. The next try is never
 * later than the end of the endpoint's retry limit, where a failure disables it.
 */
export function endpointBackoff(
  health: webhooks.EndpointHealth,
  attemptedAt: Date,
  now: Date,
  settings: RetrySettings,
): webhooks.EndpointHealth {
  const failingSince = health.failing_since ?? attemptedAt;
  if (health.retry_at !== null && health.retry_at > attemptedAt) {
    return { ...health, failing_since: failingSince };
  }
  const failures = health.consecutive_failures + 1;
  const retryAt = Math.min(
    now.getTime() + endpointDelayMs(failures, settings),
    failingSince.getTime() + settings.retryForMs,
  );
  return { failing_since: failingSince, consecutive_failures: failures, retry_at: new Date(retryAt) };
}

export function claimDueDeliveries(
  ctx: DeliveryContext,
  limit: number,
  leaseMs: number,
  perEndpoint?: number,
): Promise<webhooks.ClaimedDelivery[]> {
  return webhooks.claimDueDeliveries(ctx.ownerDb, limit, leaseMs, perEndpoint);
}

export function nextDueAt(ctx: DeliveryContext): Promise<Date | undefined> {
  return webhooks.nextDueAt(ctx.ownerDb);
}

export interface Sendable {
  url: string;
  secrets: string[];
  /** The event exactly as GET /api/v1/events shows it. */
  event: ReturnType<typeof toEventResponse>;
  /** Attempts made before this one, and when the first was (the retries' limit runs from it). */
  attempts: number;
  firstAttemptedAt: Date | null;
}

/** What to send for a claimed delivery; undefined when the claim is no longer this one's. */
export async function loadSendable(
  ctx: DeliveryContext,
  claimed: webhooks.ClaimedDelivery,
): Promise<Sendable | undefined> {
  const found = await inTenant(ctx, system(claimed.tenant_id), (tx) =>
    webhooks.findDeliveryToSend(tx.db, claimed.id, claimed.lease_token),
  );
  return (
    found && {
      url: found.url,
      secrets: found.secrets,
      event: toEventResponse(found.event),
      attempts: found.delivery.attempts,
      firstAttemptedAt: found.delivery.first_attempted_at,
    }
  );
}

export interface AttemptResult {
  attemptedAt: Date;
  durationMs: number;
  /** The HTTP status the endpoint answered, if it answered. */
  statusCode: number | null;
  /** Why there is no status (refused address, connection error, timeout). */
  error: string | null;
}

export type RecordedOutcome =
  { kind: 'recorded'; status: WebhookDeliveryStatus; endpointDisabled: boolean } | { kind: 'lease-lost' };

/**
 * One attempt's record, in the delivery's tenant: 2xx succeeds; anything else is retried after
 * retryDelayMs, until retryForMs after the first attempt (the last try falls on that limit), then
 * fails. A failure also backs the endpoint off (endpointBackoff): none of its deliveries is claimed
 * before its retry_at. An endpoint whose every attempt failed for retryForMs is disabled, with an
 * event.
 */
export function recordAttempt(
  ctx: DeliveryContext,
  claimed: webhooks.ClaimedDelivery,
  sent: Pick<Sendable, 'attempts' | 'firstAttemptedAt'>,
  result: AttemptResult,
  settings: RetrySettings,
): Promise<RecordedOutcome> {
  const succeeded = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
  const now = new Date();
  const deadline = (sent.firstAttemptedAt ?? result.attemptedAt).getTime() + settings.retryForMs;
  // By when the attempt began, not when its answer came: an attempt begun before the limit and
  // answered after it is followed by one at the limit, so the last try always falls on it.
  const retry = !succeeded && result.attemptedAt.getTime() < deadline;
  const next = Math.min(now.getTime() + retryDelayMs(sent.attempts + 1, settings), deadline);
  return inTenant(ctx, system(claimed.tenant_id), async (tx): Promise<RecordedOutcome> => {
    const made = await webhooks.recordAttempt(tx.db, claimed.id, claimed.lease_token, {
      status: succeeded ? 'succeeded' : retry ? 'pending' : 'failed',
      next_attempt_at: retry ? new Date(next) : null,
      attempted_at: result.attemptedAt,
      status_code: result.statusCode,
      error: result.error?.slice(0, 1000) ?? null,
      duration_ms: Math.max(0, Math.round(result.durationMs)),
    });
    if (!made) return { kind: 'lease-lost' };
    if (succeeded) {
      await webhooks.endpointSucceeded(tx.db, made.endpoint_id);
      return { kind: 'recorded', status: made.status, endpointDisabled: false };
    }
    // A delivered event sent again on request, refused: recorded, and no step of the endpoint's
    // backoff, which held up its other deliveries for a copy it had had (retest15 #3).
    if (made.status === 'succeeded')
      return { kind: 'recorded', status: made.status, endpointDisabled: false };
    const endpoint = await webhooks.lockEndpointHealth(tx.db, made.endpoint_id);
    if (endpoint) {
      await webhooks.setEndpointHealth(
        tx.db,
        endpoint.id,
        endpointBackoff(endpoint, result.attemptedAt, now, settings),
      );
      endpoint.failing_since ??= result.attemptedAt;
    }
    // Measured to when this attempt began, as the delivery's own limit is: measured to when its
    // answer came, an attempt begun before the limit and answered after it disabled the endpoint
    // while its delivery waited (pending) for the try at the limit, which a disabled endpoint
    // never gets.
    const failingFor = endpoint?.failing_since
      ? result.attemptedAt.getTime() - endpoint.failing_since.getTime()
      : 0;
    if (!endpoint || endpoint.status !== 'enabled' || failingFor < settings.retryForMs) {
      return { kind: 'recorded', status: made.status, endpointDisabled: false };
    }
    const last = result.statusCode === null ? result.error : `HTTP ${result.statusCode}`;
    const disabled = await webhooks.updateWebhookEndpoint(tx.db, endpoint.id, {
      status: 'disabled',
      disabled_reason: `Every delivery attempt failed for ${describe(settings.retryForMs)} (last: ${last}).`,
    });
    const data = toWebhookEndpointResponse(disabled);
    tx.emit({
      type: 'webhook_endpoint.disabled',
      resource_type: 'webhook_endpoint',
      resource_id: endpoint.id,
      actor: 'system',
      data,
      previous: { status: 'enabled', disabled_reason: null },
    });
    return { kind: 'recorded', status: made.status, endpointDisabled: true };
  });
}

/** "3 days", "90 seconds", "400 ms": how long, for a person. */
function describe(ms: number): string {
  if (ms % 1000 !== 0) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}
