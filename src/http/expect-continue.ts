// Expect: 100-continue (RFC 9110, 10.1.1): a client announces its body and waits for 100 Continue
// before sending it. Node sends 100 at once for every such request, so a body went up (megabytes,
// say) only to be answered 401, 404 or 413. The server (http/server.ts) takes those requests over
// and marks them; a body parser sends 100 only once the request is admitted and the length it
// announced fits. A request refused before that gets its answer, and its body is never sent.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { BODY_ENCODINGS, ProblemError, unsupportedEncoding } from './problems.js';

const waiting = new WeakSet<IncomingMessage>();

/** An Expect list's members, lower case, its empty ones left out (RFC 9110, 5.6.1). */
const membersOf = (expect: string | undefined) =>
  (expect ?? '')
    .split(',')
    .map((m) => m.trim().toLowerCase())
    .filter((m) => m !== '');

/** Whether an Expect value asks for 100-continue and nothing else. */
export function onlyContinue(expect: string | undefined): boolean {
  const members = membersOf(expect);
  return members.length > 0 && members.every((m) => m === '100-continue');
}

/** Whether an Expect value names no expectation at all (empty, or `,`). */
export const expectsNothing = (expect: string | undefined) => membersOf(expect).length === 0;

/**
 * The server's 'checkContinue': no 100 yet, the request is the app's like any other. Answered
 * without the 100, its connection ends behind the answer: a client that sends the body anyway
 * (some do after a second) must not have it read as the next request.
 */
export function holdContinue(req: IncomingMessage, res: ServerResponse): void {
  waiting.add(req);
  res.once('finish', () => {
    if (waiting.has(req)) req.socket.end();
  });
}

/**
 * Before a body parser of `limit` bytes: 100 Continue for a request waiting for it, if its body
 * fits; else 413 at once. (The parser would read the whole body off first, which this client
 * never sends without the 100: the connection closes instead, with the body unsent.)
 */
export function continueWithin(limit: number): RequestHandler {
  return (req, res, next) => {
    if (!waiting.has(req)) return next();
    // Refused without reading it (the parser would read the body off first): closed behind.
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (!BODY_ENCODINGS.includes(encoding)) {
      res.setHeader('Connection', 'close');
      throw unsupportedEncoding(encoding);
    }
    if (Number(req.headers['content-length'] ?? 0) > limit) {
      res.setHeader('Connection', 'close');
      throw new ProblemError(
        413,
        'payload-too-large',
        `The request body is over the limit of ${limit} bytes.`,
      );
    }
    waiting.delete(req);
    res.writeContinue();
    next();
  };
}
