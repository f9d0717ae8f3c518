// Every list of the API is cursor-paginated: { data: [...], next_cursor }. paginate() walks one
// to its end as an async iterator, page by page, so a partner never writes the cursor loop.
import type { FetchOptions } from 'openapi-fetch';
import type { SubscriptionsClient } from './client.js';
import type { paths } from './generated/openapi.js';
import { type Problem, ProblemError } from './problems.js';

type JsonOf<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type PageOf<P extends keyof paths> = paths[P] extends { get: { responses: { 200: infer R } } }
  ? JsonOf<R>
  : never;

/**
 * The paths whose GET answers a page: `{ data: T[]; next_cursor: string | null }`. A path without
 * such a GET (a write only, say) has `never` for its page, and `never extends` anything holds, so
 * it is ruled out first.
 */
export type ListPath = {
  [P in keyof paths]: [PageOf<P>] extends [never]
    ? never
    : PageOf<P> extends { data: unknown[]; next_cursor: string | null }
      ? P
      : never;
}[keyof paths];

/** What one page of a list holds. */
export type ItemOf<P extends ListPath> = PageOf<P> extends { data: Array<infer T> } ? T : never;

/**
 * The options of the path's own GET (openapi-fetch's): its query, path and header parameters,
 * typed from the spec, plus headers, a signal and the like. `params` is required when the path
 * has parameters that are (a list under a resource: `{ params: { path: { walletId } } }`).
 */
export type PaginateOptions<P extends ListPath> = paths[P] extends { get: infer Operation }
  ? FetchOptions<Operation>
  : never;

/** The options argument: optional only when nothing in it is required. */
type OptionsArg<P extends ListPath> =
  object extends PaginateOptions<P> ? [init?: PaginateOptions<P>] : [init: PaginateOptions<P>];

/** A page of a list: its items, and the cursor of the next one (null on the last). */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/**
 * Every page of a list, in the API's order, from the `cursor` of its query if it has one: for
 * resuming where a walk stopped, as a poller of the event feed does (keep the last page's
 * `next_cursor`, and start from it next time: the feed's never runs out).
 */
export async function* pages<P extends ListPath>(
  client: SubscriptionsClient,
  path: P,
  ...[init]: OptionsArg<P>
): AsyncGenerator<Page<ItemOf<P>>, void, undefined> {
  const options = init as { params?: { query?: { cursor?: string } } } | undefined;
  let cursor: string | undefined = options?.params?.query?.cursor;
  for (;;) {
    const params = options?.params ?? {};
    const query = { ...(params.query ?? {}), ...(cursor ? { cursor } : {}) };
    // openapi-fetch's types cannot follow a path chosen at run time; the page's shape is ListPath's.
    const get = client.GET as unknown as (
      path: string,
      init: object,
    ) => Promise<{ data?: Page<ItemOf<P>>; error?: unknown; response: Response }>;
    const { data, error, response } = await get(path, { ...options, params: { ...params, query } });
    if (!data) {
      // With throwOnError: false openapi-fetch returns the problem (already read) instead of throwing.
      if (error instanceof Error) throw error;
      throw new ProblemError(
        response,
        typeof error === 'object' && error !== null ? (error as Problem) : undefined,
      );
    }
    yield data;
    if (data.data.length === 0 || !data.next_cursor) return;
    cursor = data.next_cursor;
  }
}

/**
 * Every item of a list, in the API's order, fetching pages as you go:
 *
 *   for await (const s of paginate(api, '/api/v1/subscriptions', { params: { query: { status: ['active'] } } }))
 *     console.log(s.id);
 *
 * The event feed ends at its newest event (its cursor never runs out: to poll it again later
 * from there, walk it with pages() and keep the last `next_cursor`).
 */
export async function* paginate<P extends ListPath>(
  client: SubscriptionsClient,
  path: P,
  ...[init]: OptionsArg<P>
): AsyncGenerator<ItemOf<P>, void, undefined> {
  const walk = pages as (
    client: SubscriptionsClient,
    path: P,
    init?: unknown,
  ) => AsyncGenerator<Page<ItemOf<P>>>;
  for await (const page of walk(client, path, init)) yield* page.data;
}
