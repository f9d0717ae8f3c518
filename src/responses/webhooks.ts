import type { Schemas } from '../contract.js';
import type { WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow } from '../database/schema.js';

type EndpointFields = Pick<
  WebhookEndpointRow,
  | 'id'
  | 'url'
  | 'description'
  | 'enabled_events'
  | 'status'
  | 'disabled_reason'
  | 'previous_secret_expires_at'
  | 'version'
  | 'created_at'
  | 'updated_at'
>;

/** An endpoint as the API, its events and webhooks show it: never a secret. */
export function toWebhookEndpointResponse(row: EndpointFields): Schemas['WebhookEndpoint'] {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    enabled_events: row.enabled_events as Schemas['WebhookEventType'][],
    status: row.status,
    disabled_reason: row.disabled_reason,
    // A grace period over is no grace period: shown as null without waiting for a write.
    previous_secret_expires_at:
      row.previous_secret_expires_at && row.previous_secret_expires_at > new Date()
        ? row.previous_secret_expires_at.toISOString()
        : null,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** The endpoint with its secret: only in the answers that create or rotate it. */
export function toWebhookEndpointWithSecretResponse(
  row: EndpointFields,
  secret: string,
): Schemas['WebhookEndpointWithSecret'] {
  return { ...toWebhookEndpointResponse(row), secret };
}

type DeliveryFields = Pick<
  WebhookDeliveryRow,
  | 'id'
  | 'endpoint_id'
  | 'event_id'
  | 'event_type'
  | 'status'
  | 'attempts'
  | 'next_attempt_at'
  | 'last_attempted_at'
  | 'last_status_code'
  | 'last_error'
  | 'created_at'
>;
type AttemptFields = Pick<
  WebhookAttemptRow,
  'number' | 'attempted_at' | 'status_code' | 'error' | 'duration_ms'
>;

export function toWebhookDeliveryResponse(
  row: DeliveryFields,
  attempts: readonly AttemptFields[],
): Schemas['WebhookDelivery'] {
  return {
    id: row.id,
    endpoint_id: row.endpoint_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status,
    attempt_count: row.attempts,
    next_attempt_at: row.next_attempt_at?.toISOString() ?? null,
    last_attempted_at: row.last_attempted_at?.toISOString() ?? null,
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    created_at: row.created_at.toISOString(),
    attempts: attempts.map((a) => ({
      number: a.number,
      attempted_at: a.attempted_at.toISOString(),
      status_code: a.status_code,
      error: a.error,
      duration_ms: a.duration_ms,
    })),
  };
}
