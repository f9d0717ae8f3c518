// docs/examples/verify-webhook.mjs, the receiver's check the webhooks guide shows: a good signature
// passes; a missing header, a tampered body, a stale timestamp or another secret do not (and
// none of them throws: a receiver answers 400, not 500).
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs example, without types
import { verifyWebhook } from '../../docs/examples/verify-webhook.mjs';

const verify = verifyWebhook as (body: string, header: unknown, secret: string) => boolean;
const sign = (body: string, secret: string, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;

describe('docs/examples/verify-webhook.mjs', () => {
  const body = '{"id":"evt","type":"user.created"}';
  it('accepts a delivery signed with the secret, and nothing else', () => {
    expect(verify(body, sign(body, 'whsec_a'), 'whsec_a')).toBe(true);
    expect(verify(`${body} `, sign(body, 'whsec_a'), 'whsec_a')).toBe(false);
    expect(verify(body, sign(body, 'whsec_b'), 'whsec_a')).toBe(false);
    expect(verify(body, sign(body, 'whsec_a', Math.floor(Date.now() / 1000) - 600), 'whsec_a')).toBe(false);
    for (const header of [undefined, null, '', 'garbage', 't=1', 'v1=00'])
      expect(verify(body, header, 'whsec_a')).toBe(false);
  });
});
