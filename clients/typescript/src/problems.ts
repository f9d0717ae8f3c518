// Every error of the API is RFC 9457 problem+json; the client throws it as a ProblemError.
import type { components } from './generated/openapi.js';

export type Problem = components['schemas']['Problem'];

/** A non-2xx answer of the API, with its problem details (type, title, detail, field errors). */
export class ProblemError extends Error {
  override name = 'ProblemError';
  /** The HTTP status. */
  readonly status: number;
  /** The problem type, e.g. `/problems/not-found`; `about:blank` for an unexpected error. */
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  /** The request path the problem is about, as the API sent it. */
  readonly instance: string | undefined;
  /** Field by field, for validation problems. */
  readonly errors: NonNullable<Problem['errors']>;
  /** The X-Request-Id of the failed request: quote it when asking for support. */
  readonly requestId: string | undefined;
  /** The whole body as sent. */
  readonly problem: Problem | undefined;
  readonly response: Response;
  /** The request's Idempotency-Key (yours, or the one the client added): retry with it. */
  readonly idempotencyKey: string | undefined;

  constructor(response: Response, problem: Problem | undefined, idempotencyKey?: string) {
    // `||`: a status text is "" over HTTP/2, and from a proxy that sends none.
    const title = problem?.title || response.statusText || `HTTP ${response.status}`;
    super(problem?.detail ? `${response.status} ${title}: ${problem.detail}` : `${response.status} ${title}`);
    this.status = response.status;
    this.type = problem?.type ?? 'about:blank';
    this.title = title;
    this.detail = problem?.detail;
    this.instance = problem?.instance;
    this.errors = problem?.errors ?? [];
    this.requestId = problem?.request_id ?? response.headers.get('x-request-id') ?? undefined;
    this.problem = problem;
    this.response = response;
    this.idempotencyKey = idempotencyKey;
  }
}

/** The error of a response that is not 2xx (its body read as problem+json when it is one). */
export async function problemOf(response: Response, idempotencyKey?: string): Promise<ProblemError> {
  let problem: Problem | undefined;
  if (/json/.test(response.headers.get('content-type') ?? '')) {
    problem = (await response
      .clone()
      .json()
      .catch(() => undefined)) as Problem | undefined;
  }
  return new ProblemError(response, problem, idempotencyKey);
}
