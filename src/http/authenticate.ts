// Bearer API key → tenant and scopes, checked against the scopes openapi.yaml gives the operation.
// Runs before the body is read, so a caller without a valid key learns nothing about the API.
import type { Request, RequestHandler } from 'express';
import { sameKey } from '../auth/keys.js';
import { PLATFORM_SCOPE, ROLE_SCOPES } from '../auth/roles.js';
import { authenticateKey } from '../services/api-keys.js';
import type { Actor, KeyHolder, ServiceContext } from '../services/context.js';
import { bearerToken } from './bearer.js';
import { ProblemError } from './problems.js';

export type Caller =
  | ({ kind: 'tenant'; scopes: readonly string[] } & KeyHolder)
  | { kind: 'platform'; keyId: 'platform'; scopes: readonly string[] };

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

const unauthorized = (detail: string) =>
  new ProblemError(401, 'unauthorized', detail, undefined, { 'WWW-Authenticate': 'Bearer' });

/** Who acts for a route that requires a tenant scope. */
export function actorOf(req: Request): Actor {
  // Fails closed: a route reached without a tenant key (a routing mistake) answers 401, never data.
  const caller = req.caller;
  if (caller?.kind !== 'tenant') throw unauthorized('This operation needs a tenant API key.');
  return {
    tenantId: caller.tenantId,
    keyId: caller.keyId,
    role: caller.role,
    apiKey: caller.apiKey,
    requestId: req.id,
  };
}

/** Fails closed like actorOf, for the platform operator's routes. */
export function requirePlatform(req: Request): void {
  if (req.caller?.kind !== 'platform') throw unauthorized('This operation needs the platform key.');
}

async function identify(
  ctx: ServiceContext,
  key: string,
  platformKey: string | undefined,
): Promise<Caller | undefined> {
  if (platformKey && sameKey(key, platformKey)) {
    return { kind: 'platform', keyId: 'platform', scopes: [PLATFORM_SCOPE] };
  }
  const holder = await authenticateKey(ctx, key);
  return holder && { kind: 'tenant', ...holder, scopes: ROLE_SCOPES[holder.role] };
}

export function authenticate(ctx: ServiceContext, platformKey: string | undefined): RequestHandler {
  return async (req, _res, next) => {
    const operation = req.operation; // matched by observe()
    if (!operation?.scopes) return next(); // public, or no such operation (the validator answers 404/405)

    const key = bearerToken(req.get('authorization'));
    if (!key) throw unauthorized('Send an API key as Authorization: Bearer <key>.');
    const caller = await identify(ctx, key, platformKey);
    if (!caller) throw unauthorized('The API key is not valid: unknown, expired or revoked.');

    const missing = operation.scopes.filter((scope) => !caller.scopes.includes(scope));
    if (missing.length > 0) {
      const has =
        caller.kind === 'tenant'
          ? `the key's role ${caller.role} grants ${caller.scopes.join(', ')}`
          : 'this is the platform key';
      throw new ProblemError(
        403,
        'forbidden',
        `This operation needs the ${missing.join(', ')} scope; ${has}.`,
      );
    }
    req.caller = caller;
    next();
  };
}
