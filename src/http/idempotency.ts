// The Idempotency-Key header (IETF draft "The Idempotency-Key HTTP Header Field", Stripe's
// behaviour): the key, the request's fingerprint, and the reply to store; services do the rest
// in the request's transaction (services/context.ts).
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { canonicalJson } from '../canonical-json.js';
import type { Actor } from '../services/context.js';
import { badRequest } from './problems.js';
import { type Reply, toStored } from './replies.js';

/** Operations whose answer carries a secret, which is never stored: they refuse a key. */
const REFUSED = new Set(['createApiKey', 'createTenant']);

/** The key of a request, or undefined without the header; 400 for one this API cannot honour. */
export function idempotencyKey(req: Request): string | undefined {
  const header = req.get('idempotency-key');
  if (header === undefined) return undefined;
  const invalid = (message: string) =>
    badRequest(`Idempotency-Key ${message}.`, [{ location: 'headers', field: 'idempotency-key', message }]);
  if (req.operation && REFUSED.has(req.operation.operationId)) {
    throw invalid('is not accepted here: the answer carries a secret that is never stored for a replay');
  }
  // A structured-field string ("...") or a bare token.
  const key = /^"(.*)"$/.exec(header)?.[1] ?? header;
  if (key.length < 1 || key.length > 255 || !/^[\x20-\x7E]+$/.test(key)) {
    throw invalid('must be 1 to 255 printable ASCII characters');
  }
  // Two keys: a header sent twice, joined into one line by the client (fetch does).
  if (key.includes(','))
    throw invalid('holds a comma: two keys, a header sent twice and joined into one line');
  return key;
}

/**
 * The actor, carrying the request's idempotency key when it has one: the service then runs the
 * work at most once for that key, and stores `reply(result)` with it.
 */
export function idempotent<R>(req: Request, actor: Actor, reply: (result: R) => Reply | undefined): Actor {
  const key = idempotencyKey(req);
  if (key === undefined) return actor;
  // No body and `{}` say the same (an optional body's defaults): one request, whichever was sent.
  const body: unknown = req.body;
  const said = isEmptyObject(body) ? null : (body ?? null);
  const fingerprint = createHash('sha256')
    .update(`${req.method} ${req.originalUrl.split('?')[0]}\n${canonicalJson(said)}`)
    .digest('hex');
  return {
    ...actor,
    idempotency: {
      key,
      fingerprint,
      reply: (result) => {
        const built = reply(result as R);
        return built && toStored(built);
      },
    },
  };
}

const isEmptyObject = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
