// The typed client: openapi-fetch over the API's own types (generated from openapi.yaml), with
// what a partner would otherwise write by hand: the key on every request, an Idempotency-Key on
// every write, safe retries, and problem+json errors thrown as ProblemError.
import createFetchClient, { type Client, type Middleware } from 'openapi-fetch';
import { IDEMPOTENT_WRITES, RETRY_SAFE_WRITES } from './generated/idempotent-writes.js';
import type { paths } from './generated/openapi.js';
import { problemOf } from './problems.js';

export interface ClientOptions {
  /** Where the API is, e.g. `https://api.example.com` (the spec's `servers` entry). */
  baseUrl: string;
  /** An API key, `sk_<prefix>_<secret>`. */
  apiKey: string;
  /** Attempts after the first for a request that may be retried (default 3). */
  maxRetries?: number;
  /** The first retry's delay before jitter (default 500 ms); each later one doubles it. */
  retryBaseMs?: number;
  /** No wait is longer than this, Retry-After included (default 30 s). */
  maxRetryDelayMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: (request: Request) => Promise<Response>;
  /** Throw a ProblemError for every non-2xx answer (default true); false returns `{ error }` as openapi-fetch does. */
  throwOnError?: boolean;
}

export type SubscriptionsClient = Client<paths>;

const READS = new Set(['GET', 'HEAD']);
/** Answers after which the same request may succeed: overload, unavailability, a key still in use. */
const RETRYABLE = new Set([429, 502, 503, 504]);

/** Waits ms, or rejects with the signal's reason as soon as the request is aborted (or timed out). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    }, ms);
    signal.addEventListener('abort', abort, { once: true });
  });
}

/** Retry-After in milliseconds: seconds, or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Exponential backoff with full jitter: a random wait up to base × 2^attempt, capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/** Whether the API accepts an Idempotency-Key on this write (the spec says; see gen/). */
export function acceptsIdempotencyKey(method: string, url: string): boolean {
  const path = new URL(url).pathname;
  return IDEMPOTENT_WRITES.some(([m, pattern]) => m === method && pattern.test(path));
}

/** Whether the write is idempotent by its body (usage events, by event_id): safe to send again. */
export function retrySafeWrite(method: string, url: string): boolean {
  const path = new URL(url).pathname;
  return RETRY_SAFE_WRITES.some(([m, pattern]) => m === method && pattern.test(path));
}

/**
 * A fetch that retries what is safe to retry: reads (GET, HEAD) always, writes that carry an
 * Idempotency-Key (added here where the API accepts one and the caller set none; the same key on
 * every attempt, so the API performs the write once and replays its answer), writes the API
 * makes idempotent by their body (usage events: an event_id is counted once), DELETEs that take no
 * key (deleting a coupon again changes nothing) and POSTs that write nothing (a plan's quote, a
 * subscription change's preview). Retried: network failures, 429, 502, 503, 504, and 409
 * `idempotency-in-progress` (the first attempt still running), waiting as long as Retry-After says
 * when the API says it. A write without a key that is none of these (the two whose answer carries
 * a secret: creating a tenant or an API key) is retried only after a 429, which the API sends
 * before doing anything. Aborting the request (its signal) ends a wait at once.
 */
export function retryingFetch(
  options: Required<Pick<ClientOptions, 'maxRetries' | 'retryBaseMs' | 'maxRetryDelayMs'>> & {
    fetch: (request: Request) => Promise<Response>;
  },
) {
  return async (request: Request): Promise<Response> => {
    let prepared = request;
    if (
      !READS.has(request.method) &&
      !request.headers.has('idempotency-key') &&
      acceptsIdempotencyKey(request.method, request.url)
    ) {
      const headers = new Headers(request.headers);
      headers.set('Idempotency-Key', crypto.randomUUID());
      prepared = new Request(request, { headers });
    }
    const repeatable =
      READS.has(request.method) ||
      prepared.headers.has('idempotency-key') ||
      retrySafeWrite(request.method, request.url);
    for (let attempt = 0; ; attempt++) {
      // Each attempt sends its own copy: a body can be read once.
      const copy = prepared.clone();
      let response: Response | undefined;
      try {
        response = await options.fetch(copy);
      } catch (error) {
        if (attempt >= options.maxRetries || prepared.signal.aborted || !repeatable) throw error;
        await sleep(backoffMs(attempt, options.retryBaseMs, options.maxRetryDelayMs), prepared.signal);
        continue;
      }
      if (attempt >= options.maxRetries || !(await retryable(response, repeatable))) {
        try {
          return await read(response);
        } catch (error) {
          // The connection was lost while the body arrived: retried as one lost before the headers.
          if (attempt >= options.maxRetries || prepared.signal.aborted || !repeatable) throw error;
          await sleep(backoffMs(attempt, options.retryBaseMs, options.maxRetryDelayMs), prepared.signal);
          continue;
        }
      }
      const wait = retryAfterMs(response.headers.get('retry-after'));
      await response.body?.cancel();
      await sleep(
        Math.min(
          wait ?? backoffMs(attempt, options.retryBaseMs, options.maxRetryDelayMs),
          options.maxRetryDelayMs,
        ),
        prepared.signal,
      );
    }
  };
}

/** Statuses whose answer has no body. */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * The answer with its body read here, inside the fetch: an abort or a lost connection while the
 * body arrives fails the fetch itself, whose error then carries the write's key (see
 * idempotencyKeys), as one before the headers does.
 */
async function read(response: Response): Promise<Response> {
  if (NO_BODY.has(response.status) || response.body === null) return response;
  const body = await response.arrayBuffer();
  const copy = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  // A Response made here has no url (""); callers log the one the request went to.
  Object.defineProperty(copy, 'url', { value: response.url });
  return copy;
}

async function retryable(response: Response, repeatable: boolean): Promise<boolean> {
  if (response.status === 429) return true;
  if (!repeatable) return false;
  if (RETRYABLE.has(response.status)) return true;
  if (response.status !== 409) return false;
  const problem = (await response
    .clone()
    .json()
    .catch(() => undefined)) as { type?: string } | undefined;
  return problem?.type === '/problems/idempotency-in-progress';
}

/**
 * A client for the API. Every method is typed from the spec:
 *
 *   const api = createClient({ baseUrl: 'https://api.example.com', apiKey: process.env.KEY! });
 *   const { data: user } = await api.GET('/api/v1/users/{userId}', { params: { path: { userId } } });
 *
 * Non-2xx answers throw a ProblemError (unless throwOnError is false).
 */
export function createClient(options: ClientOptions): SubscriptionsClient {
  const base = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const client = createFetchClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { Authorization: `Bearer ${options.apiKey}` },
    fetch: retryingFetch({
      fetch: base,
      maxRetries: options.maxRetries ?? 3,
      retryBaseMs: options.retryBaseMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 30_000,
    }),
  });
  client.use(idempotencyKeys);
  if (options.throwOnError ?? true) client.use(throwProblems);
  return client;
}

/** The request's Idempotency-Key, if it has one. */
const keyOf = (request: Request) => request.headers.get('idempotency-key') ?? undefined;

/**
 * Adds the Idempotency-Key to a write that accepts one before it is sent (retryingFetch keeps it
 * across retries), so that a call that fails for good still knows its key: a ProblemError and an
 * error thrown instead of an answer (an abort, a timeout, a network failure after the last retry)
 * carry it as `idempotencyKey`. Retrying the call with that key after your own timeout gets the
 * write done once, as the SDK's own retries do.
 */
const idempotencyKeys: Middleware = {
  onRequest({ request }) {
    if (READS.has(request.method) || keyOf(request) || !acceptsIdempotencyKey(request.method, request.url))
      return undefined;
    const headers = new Headers(request.headers);
    headers.set('Idempotency-Key', crypto.randomUUID());
    return new Request(request, { headers });
  },
  onError({ request, error }) {
    const idempotencyKey = keyOf(request);
    if (idempotencyKey === undefined || !(error instanceof Error)) return undefined;
    // A new error, the same name and message: calls sharing one AbortSignal reject with its one
    // reason, which must not carry one call's key for the other.
    const own = new Error(error.message, { cause: error });
    own.name = error.name;
    return Object.assign(own, { idempotencyKey });
  },
};

const throwProblems: Middleware = {
  async onResponse({ request, response }) {
    if (!response.ok && response.status !== 304) throw await problemOf(response, keyOf(request));
    return undefined;
  },
};
