// A body is read only as a media type its operation declares. Without this, a body sent with no
// Content-Type (or one the JSON parser skips) reached an operation whose body is optional as no
// body at all: `{"grace_period_seconds": 0}` silently became the default grace period. Decided from
// the headers alone, before the body is read: content present (Transfer-Encoding, or a
// Content-Length above 0) in no declared media type gets 415, except JSON sent to an operation
// that writes without a body: it is parsed, and a `{}` is dropped as saying nothing. An empty body
// (Content-Length 0 or none) is no content: 400 for an operation that needs a body.
import type { Request, RequestHandler } from 'express';
import { ProblemError } from './problems.js';

function hasContent(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > 0;
}

const unsupported = (detail: string) => new ProblemError(415, 'unsupported-media-type', detail);
const noBody = (req: Request) =>
  unsupported(
    `${req.method} ${req.operation!.template} takes no request body; send none` +
      (req.method === 'GET' || req.method === 'HEAD' ? '.' : ' (or {}).'),
  );

/** A media type's parameter: its name and its value, a token or a quoted string (RFC 9110, 5.6.6). */
const PARAMETER = /;\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;

/**
 * The Content-Type's charset parameters, lowercased: none, one, or (ambiguous) several. A
 * `charset=` inside another parameter's quoted value is part of that value (retest10 #5).
 */
function charsetsOf(req: Request): string[] {
  const charsets: string[] = [];
  for (const [, name, value] of (req.get('content-type') ?? '').matchAll(PARAMETER))
    if (name!.toLowerCase() === 'charset')
      charsets.push(
        value!
          .trim()
          // A quoted string, its quoted pairs unescaped ("utf\-8" is utf-8).
          .replace(/^"(.*)"$/, (_, inner: string) => inner.replace(/\\(.)/g, '$1'))
          .toLowerCase(),
      );
  return charsets;
}

/**
 * JSON is UTF-8 (RFC 8259): any other charset is 415, decided here from the header, and so is a
 * second charset that names another (input9 #4). The JSON parser alone would refuse some
 * (iso-8859-1) and decode others (utf-16) into a 400 for bytes it misread.
 */
function requireUtf8Charset(req: Request): void {
  if (charsetsOf(req).some((charset) => charset !== 'utf-8'))
    throw unsupported('Send the body as UTF-8: charset=utf-8, or no charset at all.');
}

export const requireDeclaredMediaType: RequestHandler = (req, _res, next) => {
  const operation = req.operation;
  // Unknown routes and methods: the validator answers 404 or 405.
  if (!operation) return next();
  if (!hasContent(req)) {
    // No content is no body, whatever the Content-Type: 400 where one is needed (the validator
    // would answer 415 without a Content-Type, as if content had come in an unknown type).
    if (!operation.bodyRequired) return next();
    throw new ProblemError(
      400,
      'validation-error',
      `The request needs a body, as ${operation.mediaTypes.join(' or ')}.`,
      [{ location: 'body', field: '', message: 'is required' }],
    );
  }
  const accepted = operation.mediaTypes;
  if (accepted.length === 0) {
    // Many clients send `{}` with every POST, PUT and DELETE: JSON is parsed, and then must be
    // that (acceptEmptyObject, after the parser). A read takes no body at all.
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.is('application/json')) {
      requireUtf8Charset(req);
      return next();
    }
    throw noBody(req);
  }
  if (!req.is(accepted)) {
    // The media type alone ('' for a header with parameters only, as `;;;`).
    const sent = req.get('content-type')?.split(';')[0]!.trim();
    throw unsupported(
      `${sent ? `The body is ${sent}` : sent === '' ? "The body's Content-Type names no media type" : 'The body has no Content-Type'}: ` +
        `send it as ${accepted.join(' or ')}.`,
    );
  }
  requireUtf8Charset(req);
  next();
};

/**
 * After the JSON parser: an operation that takes no body got `{}` at most, which says nothing and
 * is dropped (so the request is the same as one without a body, for idempotency keys too).
 */
export const acceptEmptyObject: RequestHandler = (req, _res, next) => {
  const operation = req.operation;
  if (!operation || operation.mediaTypes.length > 0 || !hasContent(req)) return next();
  // (A GET or HEAD with content was refused before the parser.)
  const body: unknown = req.body;
  const empty =
    typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0;
  if (!empty) throw noBody(req);
  req.body = undefined;
  next();
};

/**
 * A body parser (express.json) whose decoding errors are the client's: a body that is not what its
 * Content-Encoding (gzip, deflate or br, which the parser inflates) says fails in zlib with no
 * body-parser `type`, and would otherwise be an unexpected error (500).
 */
export function decodedOrRefused(parse: RequestHandler): RequestHandler {
  return (req, res, next) =>
    parse(req, res, (error?: unknown) => {
      const encoding = req.get('content-encoding');
      if (error && encoding && !(typeof error === 'object' && 'type' in error))
        return next(
          new ProblemError(
            400,
            'malformed-json',
            `The request body could not be decoded as its Content-Encoding ${encoding} says: ${(error as Error).message}.`,
          ),
        );
      next(error);
    });
}
