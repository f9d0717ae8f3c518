// A request for no operation of the contract is answered here, before its body is read (and with
// no key needed: authenticate() checks the operations' scopes, and it has none): the path is not
// found (404), or the path exists with other methods (405, with `Allow`). Answered later, by the
// validator, its body was parsed first, so a malformed or too large body to an unknown route
// answered 400 or 413 where the route itself was the fault.
import type { RequestHandler } from 'express';
import { operations } from '../operations.js';
import { notFound, ProblemError } from './problems.js';

export const refuseUnknownRoutes: RequestHandler = (req, _res, next) => {
  if (req.operation) return next(); // matched by observe()
  const methods = new Set(operations.filter((op) => op.pattern.test(req.path)).map((op) => op.method));
  if (methods.size === 0) throw notFound(`No route ${req.path}.`);
  // HEAD works wherever GET does (RFC 9110), though the contract lists only GET.
  if (methods.has('GET')) methods.add('HEAD');
  throw new ProblemError(405, 'method-not-allowed', `${req.method} method not allowed`, undefined, {
    Allow: [...methods].sort().join(', '),
  });
};
