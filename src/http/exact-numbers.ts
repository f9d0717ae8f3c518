// JSON numbers that JSON.parse cannot hold exactly. A usage event's value may be sent as a JSON
// number, but the parser rounds it to a double before any code sees it: 9007199254740.993 becomes
// 9007199254740.992, and 0.1000000000000000055511151231257827 becomes 0.1 (which then passes the
// 6-decimal rule). Node's JSON.parse gives no source text, so the raw body is read here, in the
// JSON parser's `verify` hook: a number in an event's properties whose text has more than 15
// significant digits (DBL_DIG: every decimal with 15 round-trips through a double) is refused,
// and so is an integer of 2^53 or more, in any property (a unique_count or group_by value too:
// 9007199254740993 would count as ...992). Trailing zeros of a fraction are not counted
// (1.50000000000000000 is 1.5, exactly). A number beyond a double's range is refused too: 1e-400
// reads as 0, 1e400 as Infinity (which JSON.stringify then stores as null).
//
// Cost: a look at every 16th byte of the raw body, for a run of 16 digits (or dots), which almost
// no body has: under 0.1 ms for a 1,000-event batch of 290 kB, a tenth of its JSON.parse, and no
// decoding (turning the bytes into a string took longer than parsing them). Only a body with such
// a run is decoded and scanned, string-aware, to find whether and where it holds such a number;
// so is, after the parse, a body whose properties hold a 0, a subnormal or an infinity (which a
// short text such as 1e-400 may have been).
import type { RequestHandler } from 'express';
import { ProblemError } from './problems.js';

/** The most significant digits a decimal may have and round-trip through a double. */
const MOST_DIGITS = 15;

/** Bytes that may be in a number's digits: 0-9 and the decimal point. */
const DIGITISH = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) DIGITISH[c] = 1;
DIGITISH[0x2e] = 1;

/**
 * Whether the bytes hold a run of 16 digits or dots (as a number of 16 significant digits
 * must). Every run of 16 covers one of every 16th byte: only those are looked at, and a run
 * around one of them measured.
 */
export function hasLongDigitRun(bytes: Uint8Array): boolean {
  const n = bytes.length;
  for (let i = MOST_DIGITS; i < n; i += MOST_DIGITS + 1) {
    if (!DIGITISH[bytes[i]!]) continue;
    let lo = i;
    let hi = i;
    while (lo > 0 && DIGITISH[bytes[lo - 1]!]) lo--;
    while (hi + 1 < n && DIGITISH[bytes[hi + 1]!]) hi++;
    if (hi - lo + 1 > MOST_DIGITS) return true;
    i = hi; // the next run starts after this one: every 16th byte from its end on
  }
  return false;
}

/** A number of 16 digits or more, possibly (when not in a string) a value: worth a scan. */
const CANDIDATE = /[:,[]\s*-?[\d.]{16}/;

const NUMBER = /-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/y;

export const INEXACT_MESSAGE = `is a number JSON does not keep exactly (an integer of 2^53 or more, more than ${MOST_DIGITS} significant digits, or beyond a double's range, as 1e-400 or 1e400): send it as a decimal string`;

/** The least normal double: below it a double keeps fewer digits, and 1e-400 reads as 0. */
const LEAST_NORMAL = 2.2250738585072014e-308;

/** 2^53 − 1: every integer up to it is a double exactly, 2^53 + 1 is not (it reads as 2^53). */
const LARGEST_EXACT = '9007199254740991';

/** Whether a JSON number's text holds more than a double keeps. */
function inexact(text: string, integer: string, fraction: string | undefined, hasExponent: boolean): boolean {
  if (fraction === undefined && !hasExponent) {
    // An integer: exact up to 2^53 − 1; 2^53 itself is refused, as 2^53 + 1 reads the same.
    const digits = integer.replace(/^0+/, '');
    return (
      digits.length > LARGEST_EXACT.length ||
      (digits.length === LARGEST_EXACT.length && digits > LARGEST_EXACT)
    );
  }
  const digits = (integer + (fraction ?? '')).replace(/^0+/, '').replace(/0+$/, '');
  if (digits.length > MOST_DIGITS) return true;
  // Not zero, yet outside a double's normal range: read as 0 (1e-400), with digits lost, or as
  // Infinity (1e400).
  const magnitude = Math.abs(Number(text));
  return digits.length > 0 && !(magnitude >= LEAST_NORMAL && magnitude < Infinity);
}

interface Frame {
  array: boolean;
  /** An object's current key, as its raw JSON string (decoded only for a pointer). */
  key: string;
  index: number;
  expectKey: boolean;
}

const pointerOf = (stack: readonly Frame[]) =>
  stack
    .map((f) => {
      if (f.array) return `/${f.index}`;
      // Read as latin1 (below): the key's UTF-8 bytes, decoded now.
      const key = JSON.parse(Buffer.from(f.key, 'latin1').toString('utf8')) as string;
      return `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    })
    .join('');

/**
 * The pointers of the inexact numbers under `properties` (of the body, or of each of its
 * `events`). Scans only a body that has a candidate; an invalid body is left to the parser.
 */
export function inexactNumbers(text: string, everyBody = false): string[] {
  if (!everyBody && !CANDIDATE.test(text)) return [];
  const found: string[] = [];
  const stack: Frame[] = [];
  const inProperties = () => {
    const path = stack.map((f) => (f.array ? null : f.key));
    return path[0] === '"properties"' || (path[0] === '"events"' && path[2] === '"properties"');
  };
  let i = 0;
  const n = text.length;
  while (i < n && found.length < 20) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      if (j >= n) return found; // not JSON: the parser answers
      const top = stack[stack.length - 1];
      if (top && !top.array && top.expectKey) top.key = text.slice(i, j + 1);
      i = j + 1;
    } else if (c === 0x7b /* { */) {
      stack.push({ array: false, key: '', index: 0, expectKey: true });
      i++;
    } else if (c === 0x5b /* [ */) {
      stack.push({ array: true, key: '', index: 0, expectKey: false });
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.array) top.index++;
      else if (top) top.expectKey = true;
      i++;
    } else if (c === 0x3a /* : */) {
      const top = stack[stack.length - 1];
      if (top) top.expectKey = false;
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) return found;
      const [all, integer, fraction, exponent] = m;
      if (inexact(all, integer!, fraction, exponent !== undefined) && inProperties())
        found.push(pointerOf(stack));
      i += all.length;
    } else i++; // whitespace, true, false, null
  }
  return found;
}

/** The 422 naming the numbers at these pointers. */
const refusalOf = (pointers: readonly string[]) =>
  new ProblemError(
    422,
    'unprocessable',
    `A number in the request cannot be read exactly; nothing was recorded: ${pointers.join(', ')} ${INEXACT_MESSAGE}.`,
    pointers.map((field) => ({ location: 'body' as const, field, message: INEXACT_MESSAGE })),
  );

/** The refusal found by noteInexactNumbers, kept on the request until after validation. */
const inexactFound = new WeakMap<object, ProblemError>();
/** The raw body, for refuseInexactNumbers' second look (a reference: nothing is copied). */
const rawBodies = new WeakMap<object, Buffer>();

/**
 * The JSON parser's `verify` hook of the usage-event routes: finds the numbers the parse will
 * round, and keeps their 422 for refuseInexactNumbers, so that a body the contract refuses anyway
 * gets its 400 naming every field first (a properties that is a huge number, not an object;
 * input9 #3).
 */
export function noteInexactNumbers(req: object, _res: unknown, body: Buffer): void {
  rawBodies.set(req, body);
  if (!hasLongDigitRun(body)) return;
  // latin1: a byte a character, no decoding (UTF-8 puts no ASCII byte inside a multi-byte
  // character, so every quote, bracket and digit is where it is in the text).
  const pointers = inexactNumbers(body.toString('latin1'));
  if (pointers.length > 0) inexactFound.set(req, refusalOf(pointers));
}

/** A number the parse may have read from beyond a double's range: 0, a subnormal, or infinite. */
const mayBeOutOfRange = (value: number) => !(Math.abs(value) >= LEAST_NORMAL && Math.abs(value) < Infinity);

function hasNumberOutOfRange(value: unknown): boolean {
  if (typeof value === 'number') return mayBeOutOfRange(value);
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).some(hasNumberOutOfRange);
}

/** The properties of the body's event, or of each of its events. */
function propertiesOf(body: unknown): unknown[] {
  if (typeof body !== 'object' || body === null) return [];
  const { properties, events } = body as { properties?: unknown; events?: unknown };
  if (Array.isArray(events)) return events.map((e) => (e as { properties?: unknown } | null)?.properties);
  return [properties];
}

/**
 * After validation: the 422 for numbers JSON.parse rounded (noteInexactNumbers), if any. A number
 * beyond a double's range (1e-400, 1e400) has no long digit run to be found by: a body whose
 * properties hold a 0, a subnormal or an infinity is scanned again, whole, for it.
 */
export const refuseInexactNumbers: RequestHandler = (req, _res, next) => {
  let refusal = inexactFound.get(req);
  const raw = rawBodies.get(req);
  if (!refusal && raw && propertiesOf(req.body).some(hasNumberOutOfRange)) {
    const pointers = inexactNumbers(raw.toString('latin1'), true);
    if (pointers.length > 0) refusal = refusalOf(pointers);
  }
  if (refusal) throw refusal;
  next();
};
