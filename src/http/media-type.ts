// A body is read only as a media type its operation declares. Without this, a body sent with no
// Content-Type (or one the JSON parser skips) reached an operation whose body is optional as no
// body at all: `{"grace_period_seconds": 0}` silently became the default grace period. Decided from
// the headers alone, before the body is read: content present (Transfer-Encoding, or a
// Content-Length above 0) in no declared media type gets 415. An empty body (Content-Length 0 or
// none) is no content: the validator decides whether the operation needs one.
import type { Request, RequestHandler } from 'express';
import { ProblemError } from './problems.js';

function hasContent(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > 0;
}

const unsupported = (detail: string) => new ProblemError(415, 'unsupported-media-type', detail);

export const requireDeclaredMediaType: RequestHandler = (req, _res, next) => {
  const operation = req.operation;
  // Unknown routes and methods: the validator answers 404 or 405.
  if (!operation || !hasContent(req)) return next();
  const accepted = operation.mediaTypes;
  if (accepted.length === 0) {
    throw unsupported(`${req.method} ${operation.template} takes no request body; send none.`);
  }
  if (!req.is(accepted)) {
    const sent = req.get('content-type');
    throw unsupported(
      `${sent ? `The body is ${sent.split(';')[0]!.trim()}` : 'The body has no Content-Type'}: ` +
        `send it as ${accepted.join(' or ')}.`,
    );
  }
  next();
};
