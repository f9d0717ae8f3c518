// Integer query parameters are written in decimal digits: `limit=20`, never `0x14`, `2e1`, `20.0`,
// ` 20` or `Infinity`. The validator's coercion (Number()) would read all of those as numbers, and
// Infinity even passed its bounds into SQL. Checked on the raw strings, before the validator.
import type { RequestHandler } from 'express';
import { ProblemError } from './problems.js';

// Any length: the validator then says what is out of range (limit=99999999999999999999: <= 100).
const DECIMAL_INTEGER = /^-?[0-9]+$/;

export const rejectLooseIntegers: RequestHandler = (req, _res, next) => {
  const names = req.operation?.integerQuery;
  if (!names || names.length === 0) return next();
  for (const name of names) {
    const raw: unknown = req.query[name];
    if (raw === undefined) continue;
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      if (typeof value === 'string' && !DECIMAL_INTEGER.test(value)) {
        // Worded as the validator words the same refusal of `limit=many`.
        const message = 'must be integer';
        throw new ProblemError(400, 'validation-error', `request/query/${name} ${message}`, [
          { location: 'query', field: name, message },
        ]);
      }
    }
  }
  next();
};
