// API keys look like sk_<8 hex prefix>_<43 base64url chars of secret>. Only the prefix (to find the
// row) and the SHA-256 of the whole key are stored; the secret is shown once, at creation.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_FORMAT = /^(sk_[0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;

export interface NewKey {
  key: string;
  prefix: string;
  hash: Buffer;
}

export const hashKey = (key: string): Buffer => createHash('sha256').update(key).digest();

export function generateKey(): NewKey {
  const prefix = `sk_${randomBytes(4).toString('hex')}`;
  const key = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, hash: hashKey(key) };
}

/** The prefix and hash of a well-formed key; undefined for anything else. */
export function parseKey(key: string): { prefix: string; hash: Buffer } | undefined {
  const match = KEY_FORMAT.exec(key);
  return match?.[1] ? { prefix: match[1], hash: hashKey(key) } : undefined;
}

/** Constant-time comparison of a presented key with a configured one. */
export function sameKey(presented: string, expected: string): boolean {
  return timingSafeEqual(hashKey(presented), hashKey(expected));
}
