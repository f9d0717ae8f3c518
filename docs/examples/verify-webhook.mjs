// Verifies a webhook delivery's Subscriptions-Signature, as a receiver should (see docs/webhooks.md).
// As a module: import { verifyWebhook } from './verify-webhook.mjs'.
// As a command: node verify-webhook.mjs <secret> < delivery.json, where delivery.json is one line
// that webhook-receiver.mjs wrote ({"signature": "...", "body": "..."}); prints valid or invalid.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** rawBody: the request body as received (a string or Buffer), before any JSON parsing. */
export function verifyWebhook(rawBody, signatureHeader, secret, toleranceSeconds = 300) {
  if (typeof signatureHeader !== 'string') return false; // no header: not signed by us
  const parts = signatureHeader.split(',').map((part) => part.split('='));
  const t = Number(parts.find(([key]) => key === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return parts.some(([key, value]) => {
    if (key !== 'v1' || !/^[0-9a-f]{64}$/.test(value)) return false;
    return timingSafeEqual(Buffer.from(value, 'hex'), expected);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { signature, body } = JSON.parse(readFileSync(0, 'utf8'));
  const valid = verifyWebhook(body, signature, process.argv[2]);
  console.log(valid ? 'valid' : 'invalid');
  process.exitCode = valid ? 0 : 1;
}
