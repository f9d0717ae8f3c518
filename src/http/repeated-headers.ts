// Headers whose one value decides who calls, what the body is, or which write a retry repeats:
// sent twice, Node keeps the first (Authorization, Content-Type) or joins them with ", "
// (Idempotency-Key, which then becomes another key and runs the write again). Refused instead.
import type { NextFunction, Request, Response } from 'express';
import { badRequest } from './problems.js';

const SINGLE = new Set(['authorization', 'content-type', 'idempotency-key']);

export function rejectRepeatedHeaders(req: Request, _res: Response, next: NextFunction): void {
  const seen = new Set<string>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!SINGLE.has(name)) continue;
    if (seen.has(name)) {
      const message = 'is sent more than once: send it once';
      next(badRequest(`The ${name} header ${message}.`, [{ location: 'headers', field: name, message }]));
      return;
    }
    seen.add(name);
  }
  next();
}
