// A JSON object that names a member twice ({"credits":"1","credits":"1000000"}): JSON.parse keeps
// the last one, silently, so what the client meant is a guess, on money too. I-JSON (RFC 7493)
// requires unique names: such a body is refused (400), naming the member, as a query parameter
// given twice is.
//
// Cost: the JSON parser's `verify` hook counts, in the raw bytes, the colons that follow a quote
// (a native indexOf per member, no decoding); after the parse, the members of the body are
// counted. Equal counts: no name was given twice (a string value holding `":` only adds to the raw
// count). Only a body whose counts differ is decoded and scanned, string-aware, for the member.
import type { RequestHandler } from 'express';
import { ProblemError } from './problems.js';

const RAW = Symbol('raw body');
const RAW_MEMBERS = Symbol('raw member count');

interface Counted {
  [RAW]?: Buffer;
  [RAW_MEMBERS]?: number;
}

const COLON = 0x3a;
const QUOTE = 0x22;
const isSpace = (byte: number | undefined) =>
  byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/** The JSON parser's `verify` hook: the members the raw body may have, at most. */
export function countRawMembers(req: object, _res: unknown, body: Buffer): void {
  let members = 0;
  for (let at = body.indexOf(COLON); at !== -1; at = body.indexOf(COLON, at + 1)) {
    let before = at - 1;
    while (before >= 0 && isSpace(body[before])) before--;
    if (body[before] === QUOTE) members++;
  }
  (req as Counted)[RAW] = body;
  (req as Counted)[RAW_MEMBERS] = members;
}

function membersOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let members = 0;
  if (Array.isArray(value)) {
    for (const item of value) members += membersOf(item);
    return members;
  }
  for (const key of Object.keys(value)) members += 1 + membersOf((value as Record<string, unknown>)[key]);
  return members;
}

const pointerToken = (name: string | number) => String(name).replaceAll('~', '~0').replaceAll('/', '~1');

interface Container {
  path: string;
  /** An object's names so far (null: an array). */
  names: Set<string> | null;
  /** The member or item whose value comes next. */
  current: string | number;
  expectsName: boolean;
}

/** The JSON Pointer of the first member named a second time in its object, if any. */
export function duplicateMember(text: string): string | undefined {
  const stack: Container[] = [];
  const pathOfValue = () => {
    const top = stack.at(-1);
    return top ? `${top.path}/${pointerToken(top.current)}` : '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '{' || c === '[') {
      const object = c === '{';
      stack.push({ path: pathOfValue(), names: object ? new Set() : null, current: 0, expectsName: object });
    } else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && top) {
      if (top.names) top.expectsName = true;
      else top.current = (top.current as number) + 1;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top?.names && top.expectsName) {
        const raw = text.slice(i, end + 1);
        const name = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.names.has(name)) return `${top.path}/${pointerToken(name)}`;
        top.names.add(name);
        top.current = name;
        top.expectsName = false;
      }
      i = end;
    }
  }
  return undefined;
}

/** After the JSON parser: a body that names a member twice in one object is refused. */
export const rejectDuplicateMembers: RequestHandler = (req, _res, next) => {
  const counted = req as Counted;
  const raw = counted[RAW_MEMBERS];
  if (raw === undefined || raw <= membersOf(req.body as unknown)) return next();
  const pointer = duplicateMember(counted[RAW]!.toString('utf8'));
  if (pointer === undefined) return next();
  const message = 'is named twice in its object: send each member once (JSON keeps only the last)';
  throw new ProblemError(400, 'validation-error', `request/body${pointer} ${message}`, [
    { location: 'body', field: pointer, message },
  ]);
};
