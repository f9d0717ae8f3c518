// Verifies a webhook delivery (README, "Webhooks"): HMAC-SHA256 with the endpoint's secret over
// "<t>.<raw body>", any v1 signature matching (two during a secret's rotation), t within the
// tolerance of the receiver's clock. Web Crypto, so it runs in Node 20+, browsers and workers.
import type { components } from './generated/openapi.js';

export type WebhookEvent = components['schemas']['Event'];

export const SIGNATURE_HEADER = 'Subscriptions-Signature';
export const EVENT_ID_HEADER = 'Subscriptions-Event-Id';

export class WebhookSignatureError extends Error {
  override name = 'WebhookSignatureError';
}

export interface VerifyOptions {
  /** How old (or how far ahead) a signature's timestamp may be; default 300 s. */
  toleranceSeconds?: number;
  /** The receiver's clock (tests). */
  now?: Date;
}

const encoder = new TextEncoder();

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Equal strings in time that does not depend on where they differ. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * The event of a delivery whose signature is valid; throws WebhookSignatureError otherwise.
 * `body` is the raw request body exactly as received (parse JSON only after verifying).
 */
export async function verifyWebhook(
  body: string | Uint8Array,
  signatureHeader: string | null | undefined,
  secret: string,
  options: VerifyOptions = {},
): Promise<WebhookEvent> {
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  const parts = (signatureHeader ?? '').split(',').map((part) => part.trim().split('='));
  const t = Number(parts.find(([key]) => key === 't')?.[1]);
  if (!Number.isInteger(t)) throw new WebhookSignatureError(`no timestamp in the ${SIGNATURE_HEADER} header`);
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) {
    throw new WebhookSignatureError(
      'the signature is outside the tolerance window (a replay, or a skewed clock)',
    );
  }
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const expected = hex(await crypto.subtle.sign('HMAC', key, encoder.encode(`${t}.${text}`)));
  const valid = parts.some(
    ([name, value]) => name === 'v1' && value !== undefined && constantTimeEqual(value, expected),
  );
  if (!valid) throw new WebhookSignatureError('no v1 signature matches this secret');
  return JSON.parse(text) as WebhookEvent;
}
