// Webhook endpoints: where a tenant wants its events POSTed, and the deliveries made to them.
// Every change is an event (which other endpoints may in turn receive); secrets appear only in
// the answers that create or rotate them, never in events, reads or idempotency records.
import { createHash } from 'node:crypto';
import type { WebhookEndpointStatus } from '../database/schema.js';
import * as webhooks from '../queries/webhooks.js';
import { toWebhookEndpointResponse } from '../responses/webhooks.js';
import { newSecret } from '../webhooks/sign.js';
import { checkWebhookUrl, type UrlPolicy } from '../webhooks/ssrf.js';
import {
  type Actor,
  inTenant,
  type Page,
  previousValues,
  type ServiceContext,
  satisfies,
  toPage,
  type StoredReply,
  type Tx,
  type VersionCondition,
} from './context.js';

export type WebhookEndpoint = webhooks.WebhookEndpoint;

/** The default time the secret before a rotation keeps signing. */
export const DEFAULT_GRACE_SECONDS = 86_400;

function emit(tx: Tx, type: string, endpoint: WebhookEndpoint, before?: WebhookEndpoint) {
  const data = toWebhookEndpointResponse(endpoint);
  tx.emit({
    type: `webhook_endpoint.${type}`,
    resource_type: 'webhook_endpoint',
    resource_id: endpoint.id,
    data,
    ...(before ? { previous: previousValues(toWebhookEndpointResponse(before), data) } : {}),
  });
}

export function listWebhookEndpoints(
  ctx: ServiceContext,
  actor: Actor,
  filter: webhooks.EndpointFilter,
): Promise<Page<WebhookEndpoint>> {
  return inTenant(ctx, actor, async (tx) =>
    toPage(await webhooks.listWebhookEndpoints(tx.db, filter), filter.limit),
  );
}

export function getWebhookEndpoint(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<WebhookEndpoint | undefined> {
  return inTenant(ctx, actor, (tx) => webhooks.findWebhookEndpoint(tx.db, id));
}

const digest = (secret: string) => `sha256:${createHash('sha256').update(secret).digest('hex')}`;

/** The stored reply with its body's `secret` replaced. */
function withSecret(stored: StoredReply, secret: string): StoredReply {
  const body = JSON.parse(stored.body) as Record<string, unknown>;
  return { ...stored, body: JSON.stringify({ ...body, secret }) };
}

/**
 * The answers that carry a secret (create, rotate-secret) are replayable, but keep no secret: the
 * idempotency record holds the secret's SHA-256, and a replay puts the secret back only while it
 * is still the endpoint's current one. Once rotated out (or the endpoint deleted) it is never
 * handed out again: the replay is withheld (409).
 */
function keepingSecretsOut(actor: Actor): Actor {
  const request = actor.idempotency;
  if (!request) return actor;
  return {
    ...actor,
    idempotency: {
      ...request,
      reply: (result) => {
        const stored = request.reply(result);
        return stored && withSecret(stored, digest((JSON.parse(stored.body) as { secret: string }).secret));
      },
      replay: async (tx, stored) => {
        const { id, secret: kept } = JSON.parse(stored.body) as { id: string; secret: string };
        const current = await webhooks.currentSecret(tx.db, id);
        if (current === undefined || kept !== digest(current)) return undefined;
        return withSecret(stored, current);
      },
    },
  };
}

export interface NewEndpointInput {
  url: string;
  description?: string | null | undefined;
  enabled_events: string[];
}

export type CreateEndpointOutcome =
  { kind: 'created'; endpoint: WebhookEndpoint; secret: string } | { kind: 'invalid-url'; message: string };

/** The URL is checked (and its name resolved) before the transaction: no lookup holds a connection. */
export async function createWebhookEndpoint(
  ctx: ServiceContext,
  actor: Actor,
  input: NewEndpointInput,
  policy: UrlPolicy,
): Promise<CreateEndpointOutcome> {
  const refused = await checkWebhookUrl(input.url, policy);
  if (refused) return { kind: 'invalid-url', message: refused };
  const secret = newSecret();
  return inTenant(ctx, keepingSecretsOut(actor), async (tx): Promise<CreateEndpointOutcome> => {
    const endpoint = await webhooks.insertWebhookEndpoint(tx.db, {
      url: input.url,
      description: input.description ?? null,
      enabled_events: input.enabled_events,
      secret,
    });
    emit(tx, 'created', endpoint);
    return { kind: 'created', endpoint, secret };
  });
}

export interface EndpointPatch {
  url?: string | undefined;
  description?: string | null | undefined;
  enabled_events?: string[] | undefined;
  status?: WebhookEndpointStatus | undefined;
}

export type UpdateEndpointOutcome =
  | { kind: 'updated'; endpoint: WebhookEndpoint }
  | { kind: 'missing' }
  | { kind: 'stale'; current: WebhookEndpoint }
  | { kind: 'invalid-url'; message: string };

/**
 * Changes an endpoint. Disabling stops its deliveries; enabling (also after the system disabled
 * it) clears the reason and the failing streak, and its pending deliveries resume.
 */
export async function updateWebhookEndpoint(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  patch: EndpointPatch,
  policy: UrlPolicy,
  ifMatch?: VersionCondition,
): Promise<UpdateEndpointOutcome> {
  if (patch.url !== undefined) {
    const refused = await checkWebhookUrl(patch.url, policy);
    if (refused) return { kind: 'invalid-url', message: refused };
  }
  return inTenant(ctx, actor, async (tx): Promise<UpdateEndpointOutcome> => {
    const before = await webhooks.lockWebhookEndpoint(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    const changes: webhooks.WebhookEndpointPatch = {
      ...(patch.url !== undefined && patch.url !== before.url ? { url: patch.url } : {}),
      ...(patch.description !== undefined && patch.description !== before.description
        ? { description: patch.description }
        : {}),
      ...(patch.enabled_events !== undefined &&
      JSON.stringify(patch.enabled_events) !== JSON.stringify(before.enabled_events)
        ? { enabled_events: patch.enabled_events }
        : {}),
    };
    if (patch.status !== undefined && patch.status !== before.status) {
      Object.assign(
        changes,
        patch.status === 'enabled'
          ? // Afresh: no failing streak, no backoff.
            {
              status: 'enabled',
              disabled_reason: null,
              failing_since: null,
              consecutive_failures: 0,
              retry_at: null,
            }
          : { status: 'disabled', disabled_reason: null },
      );
    }
    if (Object.keys(changes).length === 0) return { kind: 'updated', endpoint: before };
    const endpoint = await webhooks.updateWebhookEndpoint(tx.db, id, changes);
    emit(tx, changes.status === 'disabled' ? 'disabled' : 'updated', endpoint, before);
    return { kind: 'updated', endpoint };
  });
}

export type DeleteEndpointOutcome =
  { kind: 'deleted' } | { kind: 'missing' } | { kind: 'stale'; current: WebhookEndpoint };

export function deleteWebhookEndpoint(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  ifMatch?: VersionCondition,
): Promise<DeleteEndpointOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<DeleteEndpointOutcome> => {
    const before = await webhooks.lockWebhookEndpoint(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    await webhooks.deleteWebhookEndpoint(tx.db, id);
    emit(tx, 'deleted', before);
    return { kind: 'deleted' };
  });
}

export type RotateSecretOutcome =
  | { kind: 'rotated'; endpoint: WebhookEndpoint; secret: string }
  | { kind: 'missing' }
  | { kind: 'stale'; current: WebhookEndpoint };

/**
 * A new secret; the current one signs too for graceSeconds (0: stops now). A grace period still
 * running ends: at most two secrets ever sign.
 */
export function rotateWebhookEndpointSecret(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  graceSeconds: number,
  ifMatch?: VersionCondition,
): Promise<RotateSecretOutcome> {
  const secret = newSecret();
  return inTenant(ctx, keepingSecretsOut(actor), async (tx): Promise<RotateSecretOutcome> => {
    const before = await webhooks.lockWebhookEndpoint(tx.db, id);
    if (!before) return { kind: 'missing' };
    if (!satisfies(ifMatch, before.version)) return { kind: 'stale', current: before };
    const current = (await webhooks.currentSecret(tx.db, id))!; // locked above
    const endpoint = await webhooks.updateWebhookEndpoint(tx.db, id, {
      secret,
      ...(graceSeconds > 0
        ? { previous_secret: current, previous_secret_expires_at: new Date(Date.now() + graceSeconds * 1000) }
        : { previous_secret: null, previous_secret_expires_at: null }),
    });
    emit(tx, 'secret_rotated', endpoint, before);
    return { kind: 'rotated', endpoint, secret };
  });
}

export interface DeliveryWithAttempts {
  delivery: webhooks.WebhookDelivery;
  attempts: webhooks.WebhookAttempt[];
}

/** An endpoint's deliveries, newest first, each with its attempts. */
export function listWebhookDeliveries(
  ctx: ServiceContext,
  actor: Actor,
  endpointId: string,
  filter: webhooks.DeliveryFilter,
): Promise<{ kind: 'listed'; page: Page<DeliveryWithAttempts> } | { kind: 'missing' }> {
  return inTenant(ctx, actor, async (tx) => {
    if (!(await webhooks.findWebhookEndpoint(tx.db, endpointId))) return { kind: 'missing' as const };
    const page = toPage(await webhooks.listWebhookDeliveries(tx.db, endpointId, filter), filter.limit);
    const attempts = await webhooks.attemptsOf(
      tx.db,
      page.rows.map((d) => d.id),
    );
    const rows = page.rows.map((delivery) => ({
      delivery,
      attempts: attempts.filter((a) => a.delivery_id === delivery.id),
    }));
    return { kind: 'listed' as const, page: { more: page.more, rows } };
  });
}

export function getWebhookDelivery(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<DeliveryWithAttempts | undefined> {
  return inTenant(ctx, actor, async (tx) => {
    const delivery = await webhooks.findWebhookDelivery(tx.db, id);
    return delivery && { delivery, attempts: await webhooks.attemptsOf(tx.db, [id]) };
  });
}

export type RetryDeliveryOutcome =
  | { kind: 'queued'; found: DeliveryWithAttempts }
  | { kind: 'missing' }
  | { kind: 'endpoint-disabled' }
  | { kind: 'in-flight' };

/**
 * Makes a delivery due now (POST /webhook-deliveries/{id}/retry): the dispatcher sends it as a
 * further attempt, whose failure is retried only within the delivery's limit from its first
 * attempt. Not while its endpoint is disabled (nothing is sent there) or an attempt holds its
 * lease (that attempt's outcome would overwrite this).
 */
export function retryWebhookDelivery(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<RetryDeliveryOutcome> {
  return inTenant(ctx, actor, async (tx): Promise<RetryDeliveryOutcome> => {
    const before = await webhooks.lockWebhookDelivery(tx.db, id);
    if (!before) return { kind: 'missing' };
    const endpoint = await webhooks.findWebhookEndpoint(tx.db, before.endpoint_id);
    if (endpoint?.status !== 'enabled') return { kind: 'endpoint-disabled' };
    if (before.leased_until !== null && before.leased_until > new Date()) return { kind: 'in-flight' };
    const delivery = (await webhooks.deliverNow(tx.db, id))!; // locked above
    return { kind: 'queued', found: { delivery, attempts: await webhooks.attemptsOf(tx.db, [id]) } };
  });
}
