// Keyset pagination over ids. Ids are UUIDv7 (time-ordered and unique), so "newest first" is
// `order by id desc` and a page boundary is one id: stable under ties and concurrent inserts.
import type { Page } from '../services/context.js';
import { ProblemError } from './problems.js';

const PREFIX = 'v1:';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeCursor(lastId: string): string {
  return Buffer.from(PREFIX + lastId).toString('base64url');
}

/** The id after which the next page starts; 400 for anything this API did not issue. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.slice(PREFIX.length);
  if (!text.startsWith(PREFIX) || !UUID.test(id)) {
    throw new ProblemError(
      400,
      'invalid-cursor',
      'cursor is not a value returned as next_cursor by this API.',
      [{ location: 'query', field: 'cursor', message: 'unrecognised cursor' }],
    );
  }
  return id;
}

/** A page as the API answers it: its items, and the cursor of the next page (null on the last). */
export function toPageResponse<Row, Item>(
  page: Page<Row>,
  map: (row: Row) => Item,
  idOf: (row: Row) => string,
): { data: Item[]; next_cursor: string | null } {
  const last = page.rows.at(-1);
  return { data: page.rows.map(map), next_cursor: page.more && last ? encodeCursor(idOf(last)) : null };
}
