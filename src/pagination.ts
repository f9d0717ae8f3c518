// Keyset pagination over ids. Ids are UUIDv7 (time-ordered and unique), so "newest first" is
// `order by id desc` and a page boundary is one id: stable under ties and concurrent inserts.
import { ProblemError } from './errors.js';

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

/** Queries fetch limit + 1 rows; the extra one only says whether another page exists. */
export function toPage<Row extends { id: string }, Item>(
  rows: Row[],
  limit: number,
  map: (row: Row) => Item,
): { data: Item[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { data: items.map(map), next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
