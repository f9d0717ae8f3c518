// A successful answer as a value: routes build it from a service's outcome, send it, and (with an
// Idempotency-Key) the service stores the very same bytes for retries.
import type { Response } from 'express';
import type { StoredReply } from '../services/context.js';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  /** JSON body; absent for 204. */
  body?: unknown;
}

/** A resource version as a strong entity tag. */
export const etag = (version: number): string => `"${version}"`;

export const ok = (body: unknown, headers: Record<string, string> = {}): Reply => ({
  status: 200,
  headers,
  body,
});
export const created = (location: string, body: unknown, headers: Record<string, string> = {}): Reply => ({
  status: 201,
  headers: { Location: location, ...headers },
  body,
});
export const noContent = (): Reply => ({ status: 204, headers: {} });

/** What is stored for a retry: the body exactly as res.json sends it (JSON.stringify). */
export function toStored(reply: Reply): StoredReply {
  return {
    status: reply.status,
    headers: reply.headers,
    body: reply.body === undefined ? '' : JSON.stringify(reply.body),
  };
}

export function send(res: Response, reply: Reply): void {
  res.status(reply.status).set(reply.headers);
  // res.json, so that response validation (outside production) sees the body.
  if (reply.body === undefined) res.end();
  else res.json(reply.body);
}

/** The stored answer to an earlier request with the same Idempotency-Key, byte for byte. */
export function sendStored(res: Response, stored: StoredReply): void {
  res.status(stored.status).set(stored.headers).set('Idempotent-Replayed', 'true');
  if (stored.body === '') res.end();
  else res.type('application/json').send(stored.body);
}
