// Text PostgreSQL cannot store as sent: U+0000 (refused by text columns) and lone UTF-16
// surrogates ("\ud800" in JSON, which would be stored silently replaced by U+FFFD). JSON Schema
// has no way to say "well-formed Unicode", so this check runs beside the validator, over every
// string and object key of the body and the query. Malformed percent escapes in the query are
// refused here too, for the same reason: what they stand for cannot be stored as sent.
import { isUtf8 } from 'node:buffer';
import type { RequestHandler } from 'express';
import { ProblemError } from './problems.js';

// eslint-disable-next-line no-control-regex -- U+0000 is exactly what this looks for
const BAD_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type FieldError = { location: 'body' | 'query'; field: string; message: string };

const escapePointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** Every bad string under value, iteratively: bodies may nest deeper than the call stack. */
function findBadText(value: unknown, location: FieldError['location']): FieldError[] {
  const found: FieldError[] = [];
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0 && found.length < 20) {
    const [item, pointer] = stack.pop()!;
    if (typeof item === 'string') {
      if (BAD_TEXT.test(item)) found.push({ location, field: pointer, message: MESSAGE });
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        const childPointer = `${pointer}/${escapePointer(key)}`;
        if (BAD_TEXT.test(key)) found.push({ location, field: childPointer, message: MESSAGE });
        stack.push([child, childPointer]);
      }
    }
  }
  return found;
}

const MESSAGE = 'must be well-formed Unicode text without U+0000 or unpaired surrogates';

/**
 * Query parameters that cannot be read as sent:
 * - malformed percent escapes (`%zz`, a lone `%`, bytes that are not UTF-8), which the query
 *   parser keeps as text or decodes to U+FFFD: a filter would then match what the client cannot
 *   have meant;
 * - names with brackets (`email[toString]`, `status[]`): no parameter has one, and the validator
 *   reads them as objects with qs, which drops members named like Object.prototype's, so the
 *   filter vanished and a list came back unfiltered;
 * - `=` or `?` in the value of a parameter without allowReserved, which the validator lets by.
 */
function findBadQuery(url: string, reserved: readonly string[]): FieldError[] {
  const start = url.indexOf('?');
  if (start < 0) return [];
  const query = url.slice(start + 1);
  // Most queries have none of these: nothing to look at.
  if (!/[%[\]?]|=[^&]*=/.test(query)) return [];
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part.replaceAll('+', ' '));
    } catch {
      return undefined;
    }
  };
  const found: FieldError[] = [];
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    const rawName = equals < 0 ? pair : pair.slice(0, equals);
    const name = decode(rawName);
    if (name === undefined || (equals >= 0 && decode(pair.slice(equals + 1)) === undefined))
      found.push({ location: 'query', field: name ?? rawName, message: ESCAPE_MESSAGE });
    else if (name.includes('[') || name.includes(']'))
      found.push({ location: 'query', field: name, message: BRACKETS_MESSAGE });
    // The validator checks a value's reserved characters, except these two (it cuts the value at
    // a second `=` and drops the first `?`).
    else if (equals >= 0 && /[=?]/.test(pair.slice(equals + 1)) && !reserved.includes(name))
      found.push({ location: 'query', field: name, message: RESERVED_MESSAGE });
  }
  return found;
}

const ESCAPE_MESSAGE = 'has a malformed percent escape: encode `%` as %25, and text as UTF-8';
const RESERVED_MESSAGE = 'has a reserved character (`=` or `?`): percent-encode it (%3D, %3F)';
const BRACKETS_MESSAGE =
  'is no parameter: names take no brackets (a list is one parameter per value: status=a&status=b)';

export const rejectBadText: RequestHandler = (req, _res, next) => {
  const query = findBadQuery(req.originalUrl, req.operation?.reservedQuery ?? []);
  if (query.length > 0)
    throw new ProblemError(400, 'validation-error', `${query[0]!.field} ${query[0]!.message}.`, query);
  const errors = [
    ...findBadText(req.body, 'body'),
    // Query parameters are named, not pointed at: 'email', not '/email'.
    ...findBadText(req.query, 'query').map((e) => ({ ...e, field: e.field.slice(1) })),
  ];
  if (errors.length > 0) {
    throw new ProblemError(400, 'validation-error', `${errors[0]!.field || 'the body'} ${MESSAGE}.`, errors);
  }
  next();
};

/**
 * The JSON parser's `verify` hook, on the raw bytes before they are decoded: bytes that are not
 * UTF-8 (FF, a truncated or overlong sequence, an encoded surrogate) would be decoded to U+FFFD
 * and stored altered. JSON is UTF-8 (RFC 8259), so such a body is not JSON. The check is native
 * (simdutf): about 10 µs for a 1 MB usage batch.
 */
export function refuseInvalidUtf8(_req: unknown, _res: unknown, body: Buffer): void {
  if (!isUtf8(body))
    throw new ProblemError(
      400,
      'malformed-json',
      'The request body is not valid UTF-8, so not valid JSON: send it encoded as UTF-8.',
    );
}
