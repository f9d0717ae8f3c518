// Bearer API key → tenant and scopes, checked against the scopes openapi.yaml gives the operation.
// Runs before request validation, so a caller without a valid key learns nothing about the API.
import type { Request, RequestHandler } from 'express';
import { sql } from 'kysely';
import { type Db, withTenant } from '../db.js';
import { ProblemError } from '../errors.js';
import { findOperation } from '../operations.js';
import type { ApiKeyRole } from '../schema.js';
import { parseKey, sameKey } from './keys.js';
import { PLATFORM_SCOPE, ROLE_SCOPES } from './roles.js';

export type Caller =
  | { kind: 'tenant'; tenantId: string; keyId: string; role: ApiKeyRole; scopes: readonly string[] }
  | { kind: 'platform'; keyId: 'platform'; scopes: readonly string[] };

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

const unauthorized = (detail: string) =>
  new ProblemError(401, 'unauthorized', detail, undefined, { 'WWW-Authenticate': 'Bearer' });

/** The authenticated tenant caller of a route that requires a tenant scope. */
export function tenantOf(req: Request): Extract<Caller, { kind: 'tenant' }> {
  // Fails closed: a route reached without a tenant key (a routing mistake) answers 401, never data.
  if (req.caller?.kind !== 'tenant') throw unauthorized('This operation needs a tenant API key.');
  return req.caller;
}

/** Fails closed like tenantOf, for the platform operator's routes. */
export function requirePlatform(req: Request): void {
  if (req.caller?.kind !== 'platform') throw unauthorized('This operation needs the platform key.');
}

async function identify(db: Db, key: string, platformKey: string | undefined): Promise<Caller | undefined> {
  if (platformKey && sameKey(key, platformKey)) {
    return { kind: 'platform', keyId: 'platform', scopes: [PLATFORM_SCOPE] };
  }
  const parsed = parseKey(key);
  if (!parsed) return undefined;
  const { rows } = await sql<{ key_id: string; tenant_id: string; role: ApiKeyRole }>`
    select key_id, tenant_id, role from authenticate_api_key(${parsed.prefix}, ${parsed.hash})`.execute(db);
  const row = rows[0];
  return (
    row && {
      kind: 'tenant',
      tenantId: row.tenant_id,
      keyId: row.key_id,
      role: row.role,
      scopes: ROLE_SCOPES[row.role],
    }
  );
}

export function authenticate(db: Db, platformKey: string | undefined): RequestHandler {
  return async (req, _res, next) => {
    const operation = findOperation(req.method === 'HEAD' ? 'GET' : req.method, req.path);
    if (!operation?.scopes) return next(); // public, or no such operation (the validator answers 404/405)

    // RFC 9110: one or more spaces between the scheme and the credentials.
    const match = /^Bearer +([^\s]+)$/i.exec(req.get('authorization') ?? '');
    if (!match?.[1]) throw unauthorized('Send an API key as Authorization: Bearer <key>.');
    const caller = await identify(db, match[1], platformKey);
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

/** Runs fn in a transaction scoped to the caller's tenant (see withTenant). */
export function inTenant<T>(db: Db, req: Request, fn: (trx: Db) => Promise<T>): Promise<T> {
  return withTenant(db, tenantOf(req).tenantId, fn);
}
