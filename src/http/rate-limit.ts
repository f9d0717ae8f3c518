// Per-key request budget, counted across every process and instance (services/rate-limits.ts).
// express-rate-limit keeps the window arithmetic and the IETF RateLimit / Retry-After headers right.
import type { RequestHandler } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
import { ProblemError } from './problems.js';

export function rateLimitPerKey(perMinute: number, store: Store): RequestHandler {
  return rateLimit({
    store,
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    identifier: 'per-key',
    skip: (req) => req.caller === undefined, // public operations
    keyGenerator: (req) => req.caller?.keyId ?? '',
    handler: (_req, res, next) => {
      const retryAfter = res.getHeader('Retry-After');
      next(
        new ProblemError(
          429,
          'too-many-requests',
          `Rate limit of ${perMinute} requests a minute exceeded; retry after ${String(retryAfter)} seconds.`,
        ),
      );
    },
  });
}
