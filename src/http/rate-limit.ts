// Per-key request budget, counted across every process and instance (services/rate-limits.ts),
// announced with the IETF RateLimit and RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers-08)
// and Retry-After on a 429. Written here rather than through express-rate-limit: its general
// middleware (five awaits, per-request validations, a sha256 for the policy's partition key) cost
// about a sixth of a cached GET's CPU, and the headers are two lines.
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { SharedRateLimitStore } from '../services/rate-limits.js';
import { ProblemError } from './problems.js';

const WINDOW_MS = 60_000;
/** The policy's name in both headers. */
const POLICY = 'per-key';

/**
 * The policy's partition key: a short hash of the API key's id, never the id itself, so that
 * responses do not reveal which key was used. Kept per key id: computing it costs a hash.
 */
function partitionKey(keyId: string): string {
  const hex = createHash('sha256').update(keyId).digest('hex').slice(0, 12);
  return Buffer.from(hex).toString('base64');
}

export function rateLimitPerKey(perMinute: number, store: SharedRateLimitStore): RequestHandler {
  store.init(WINDOW_MS);
  const windowSeconds = Math.ceil(WINDOW_MS / 1000);
  const policies = new Map<string, string>();
  const policyOf = (keyId: string): string => {
    let policy = policies.get(keyId);
    if (policy === undefined) {
      if (policies.size >= 10_000) policies.clear(); // bounded: key ids are few, but never trusted
      policy = `"${POLICY}"; q=${perMinute}; w=${windowSeconds}; pk=:${partitionKey(keyId)}:`;
      policies.set(keyId, policy);
    }
    return policy;
  };

  return (req, res, next) => {
    const keyId = req.caller?.keyId;
    if (keyId === undefined) return next(); // public operations
    const { totalHits, resetAt } = store.increment(keyId);
    const resetSeconds = Math.max(0, Math.ceil((resetAt - Date.now()) / 1000));
    res.setHeader('RateLimit', `"${POLICY}"; r=${Math.max(perMinute - totalHits, 0)}; t=${resetSeconds}`);
    res.setHeader('RateLimit-Policy', policyOf(keyId));
    if (totalHits <= perMinute) return next();
    res.setHeader('Retry-After', String(resetSeconds));
    next(
      new ProblemError(
        429,
        'too-many-requests',
        `Rate limit of ${perMinute} requests a minute exceeded; retry after ${resetSeconds} seconds.`,
      ),
    );
  };
}
