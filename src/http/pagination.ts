// Keyset pagination over ids. Ids are UUIDv7 (time-ordered and unique), so "newest first" is
// `order by id desc` and a page boundary is one id: stable under ties and concurrent inserts.
import { createHash } from 'node:crypto';
import type { Page } from '../services/context.js';
import { ProblemError } from './problems.js';

type Caller = { caller?: { kind: string; tenantId?: string } | undefined };

/**
 * A cursor's seal: a short digest of the caller's tenant (the platform's, for its own lists) and
 * of what the cursor says. A cursor of another tenant is refused, and so is one edited by hand:
 * either would read as a position in this tenant's rows (a page that meant nothing, rows skipped
 * without a word).
 */
function sealOf(req: Caller, payload: string): string {
  const owner = req.caller?.kind === 'tenant' ? req.caller.tenantId! : 'platform';
  return createHash('sha256').update(`${owner}\n${payload}`).digest('base64url').slice(0, 8);
}

/**
 * A cursor's text, from its base64url as this API writes it (no padding); '' for any other
 * spelling of it (padded, standard base64, a trailing character the decoder would drop): an
 * edited cursor is refused even when it decodes to the same text.
 */
export function cursorText(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  return Buffer.from(text, 'utf8').toString('base64url') === cursor ? text : '';
}

/** `<version>:<seal>:<payload>`, base64url. */
export function sealCursor(req: Caller, version: string, payload: string): string {
  return Buffer.from(`${version}:${sealOf(req, payload)}:${payload}`).toString('base64url');
}

/** The payload of a cursor text sealed for this caller as `version`; undefined for any other. */
export function unsealCursor(req: Caller, version: string, text: string): string | undefined {
  if (!text.startsWith(`${version}:`)) return undefined;
  const rest = text.slice(version.length + 1);
  const colon = rest.indexOf(':');
  if (colon < 0) return undefined;
  const payload = rest.slice(colon + 1);
  return rest.slice(0, colon) === sealOf(req, payload) ? payload : undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The list a cursor belongs to: the operation that answered it (listUsers), and for a list under
 * a resource, that resource (one wallet's ledger: `listWalletTransactions(<wallet id>)`). A cursor
 * given to another list is refused, not read as a position in it (a client that mixed up two
 * cursors got a page that meant nothing, or an empty one). Cursors issued before they named their
 * list (`v1:<id>`) are still read, by any list, as they were.
 */
interface ListRequest extends Caller {
  operation?: { operationId: string } | undefined;
  params?: Record<string, string> | undefined;
}
function listOf(req: ListRequest): string {
  const operation = req.operation?.operationId ?? '';
  // Path parameters are ids, in any case: the cursor names them as stored (lower case).
  const parent = Object.values(req.params ?? {}).map((id) => id.toLowerCase());
  return parent.length === 0 ? operation : `${operation}(${parent.join(',')})`;
}

export function encodeCursor(req: ListRequest, lastId: string): string {
  return sealCursor(req, 'v3', `${listOf(req)}:${lastId}`);
}

/**
 * The id after which the next page starts; 400 for anything this list did not issue for this
 * tenant (sealed: see sealCursor). Cursors issued before they named their tenant (`v2:<list>:<id>`) or their list
 * (`v1:<id>`) are still read as they were.
 */
export function decodeCursor(req: ListRequest, cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const decoded = cursorText(cursor);
  const legacy = decoded.startsWith('v1:') || decoded.startsWith('v2:');
  const text = legacy ? decoded : `v3:${unsealCursor(req, 'v3', decoded) ?? ''}`;
  const prefix = text.startsWith('v1:')
    ? 'v1:'
    : text.startsWith('v2:')
      ? `v2:${listOf(req)}:`
      : `v3:${listOf(req)}:`;
  const id = text.slice(prefix.length);
  if (!text.startsWith(prefix) || !UUID.test(id)) {
    throw new ProblemError(
      400,
      'invalid-cursor',
      'cursor is not a value returned as next_cursor by this list.',
      [{ location: 'query', field: 'cursor', message: 'unrecognised cursor, or one of another list' }],
    );
  }
  return id;
}

/** A page as the API answers it: its items, and the cursor of the next page (null on the last). */
export function toPageResponse<Row, Item>(
  req: ListRequest,
  page: Page<Row>,
  map: (row: Row) => Item,
  idOf: (row: Row) => string,
): { data: Item[]; next_cursor: string | null } {
  const last = page.rows.at(-1);
  return { data: page.rows.map(map), next_cursor: page.more && last ? encodeCursor(req, idOf(last)) : null };
}
