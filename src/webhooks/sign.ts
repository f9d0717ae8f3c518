// The signature of a webhook delivery, in the manner of Stripe's: an HMAC-SHA256 of
// "<unix seconds>.<body>" per secret that signs now, so a receiver proves both who sent the body
// and when (a signature cannot be replayed once its timestamp is older than the receiver's window).
import { createHmac, randomBytes } from 'node:crypto';

export const SIGNATURE_HEADER = 'Subscriptions-Signature';
export const EVENT_ID_HEADER = 'Subscriptions-Event-Id';
export const DELIVERY_ID_HEADER = 'Subscriptions-Delivery-Id';
export const USER_AGENT = 'Subscriptions-Webhooks/1.0';

/** A new signing secret: 32 random bytes. The HMAC key is the whole string, prefix included. */
export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64url')}`;

/** `t=<seconds>,v1=<hex>[,v1=<hex>]`: one v1 per secret, the newest first. */
export function signatureHeader(body: string, secrets: readonly string[], at: Date): string {
  const timestamp = Math.floor(at.getTime() / 1000);
  const signatures = secrets.map(
    (secret) => `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`,
  );
  return [`t=${timestamp}`, ...signatures].join(',');
}

export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

/** The body and headers of one attempt: the event as GET /api/v1/events shows it, signed now. */
export function signedRequest(
  event: { id: string },
  deliveryId: string,
  secrets: readonly string[],
  at: Date,
): SignedRequest {
  const body = JSON.stringify(event);
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': USER_AGENT,
      [EVENT_ID_HEADER]: event.id,
      [DELIVERY_ID_HEADER]: deliveryId,
      [SIGNATURE_HEADER]: signatureHeader(body, secrets, at),
    },
  };
}
