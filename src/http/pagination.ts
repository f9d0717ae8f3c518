// Keyset pagination over ids. Ids are UUIDv7 (time-ordered and unique), so "newest first" is
// `order by id desc` and a page boundary is one id: stable under ties and concurrent inserts.
import { createHash } from 'node:crypto';
import type { Page } from '../services/context.js';
import { ProblemError } from './problems.js';

/**
 * Whose cursor it is: a short digest of the caller's tenant (the platform's, for its own lists). A
 * cursor names it, and another tenant's is refused: it would read as a position in this tenant's
 * rows (a page that meant nothing, rows skipped without a word).
 */
export function ownerTag(req: { caller?: { kind: string; tenantId?: string } | undefined }): string {
  const caller = req.caller;
  const owner = caller?.kind === 'tenant' ? caller.tenantId! : 'platform';
  return createHash('sha256').update(owner).digest('base64url').slice(0, 8);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The list a cursor belongs to: the operation that answered it (listUsers), and for a list under
 * a resource, that resource (one wallet's ledger: `listWalletTransactions(<wallet id>)`). A cursor
 * given to another list is refused, not read as a position in it (a client that mixed up two
 * cursors got a page that meant nothing, or an empty one). Cursors issued before they named their
 * list (`v1:<id>`) are still read, by any list, as they were.
 */
interface ListRequest {
  operation?: { operationId: string } | undefined;
  params?: Record<string, string> | undefined;
  caller?: { kind: string; tenantId?: string } | undefined;
}
function listOf(req: ListRequest): string {
  const operation = req.operation?.operationId ?? '';
  // Path parameters are ids, in any case: the cursor names them as stored (lower case).
  const parent = Object.values(req.params ?? {}).map((id) => id.toLowerCase());
  return parent.length === 0 ? operation : `${operation}(${parent.join(',')})`;
}

export function encodeCursor(req: ListRequest, lastId: string): string {
  return Buffer.from(`v3:${ownerTag(req)}:${listOf(req)}:${lastId}`).toString('base64url');
}

/**
 * The id after which the next page starts; 400 for anything this list did not issue for this
 * tenant. Cursors issued before they named their tenant (`v2:<list>:<id>`) or their list
 * (`v1:<id>`) are still read as they were.
 */
export function decodeCursor(req: ListRequest, cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const prefix = text.startsWith('v1:')
    ? 'v1:'
    : text.startsWith('v2:')
      ? `v2:${listOf(req)}:`
      : `v3:${ownerTag(req)}:${listOf(req)}:`;
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
