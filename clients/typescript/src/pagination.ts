// Every list of the API is cursor-paginated: { data: [...], next_cursor }. paginate() walks one
// to its end as an async iterator, page by page, so a partner never writes the cursor loop.
import type { SubscriptionsClient } from './client.js';
import type { paths } from './generated/openapi.js';

type JsonOf<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type PageOf<P extends keyof paths> = paths[P] extends { get: { responses: { 200: infer R } } }
  ? JsonOf<R>
  : never;

/** The paths whose GET answers a page: `{ data: T[]; next_cursor: string | null }`. */
export type ListPath = {
  [P in keyof paths]: PageOf<P> extends { data: unknown[]; next_cursor: string | null } ? P : never;
}[keyof paths];

/** What one page of a list holds. */
export type ItemOf<P extends ListPath> = PageOf<P> extends { data: Array<infer T> } ? T : never;

/** A GET's options (headers, a query), with the path's own parameters. */
type GetInit =
  Parameters<SubscriptionsClient['GET']> extends [unknown, ...infer Rest]
    ? Rest[0] & { params?: { path?: object; query?: object } }
    : never;

/**
 * Every item of a list, in the API's order, fetching pages as you go:
 *
 *   for await (const s of paginate(api, '/api/v1/subscriptions', { params: { query: { status: ['active'] } } }))
 *     console.log(s.id);
 *
 * The event feed ends at its newest event (its cursor never runs out: poll it again later).
 */
export async function* paginate<P extends ListPath>(
  client: SubscriptionsClient,
  path: P,
  init?: GetInit,
): AsyncGenerator<ItemOf<P>, void, undefined> {
  let cursor: string | undefined;
  for (;;) {
    const params = init?.params ?? {};
    const query = { ...(params.query ?? {}), ...(cursor ? { cursor } : {}) };
    // openapi-fetch's types cannot follow a path chosen at run time; the page's shape is ListPath's.
    const get = client.GET as unknown as (
      path: string,
      init: object,
    ) => Promise<{ data?: { data: ItemOf<P>[]; next_cursor: string | null }; error?: unknown }>;
    const { data, error } = await get(path, { ...init, params: { ...params, query } });
    if (!data) throw error instanceof Error ? error : new Error(`GET ${path} failed`);
    yield* data.data;
    if (data.data.length === 0 || !data.next_cursor) return;
    cursor = data.next_cursor;
  }
}
