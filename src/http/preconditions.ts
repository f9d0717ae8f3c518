// Conditional requests (RFC 9110 §13) on resource versions: If-Match for changes, If-None-Match
// for reads. ETags are strong: `"3"` is version 3.
import type { Request, Response } from 'express';
import type { VersionCondition } from '../services/context.js';
import { etag } from './replies.js';

// A version as we write it: no leading zeros ("01" is another tag, which never matches).
const STRONG = /^"(0|[1-9]\d{0,8})"$/;

/** The entity tags of a header, '*' for any; undefined when the header is absent. */
function tags(
  header: string | undefined,
): '*' | Array<{ weak: boolean; version: number | undefined }> | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  return header.split(',').map((raw) => {
    const tag = raw.trim();
    const weak = tag.startsWith('W/');
    const version = STRONG.exec(weak ? tag.slice(2) : tag)?.[1];
    return { weak, version: version === undefined ? undefined : Number(version) };
  });
}

/** If-Match uses the strong comparison: a weak tag never matches, nor does one we never issued. */
export function ifMatch(req: Request): VersionCondition {
  const parsed = tags(req.get('if-match'));
  if (parsed === undefined || parsed === '*') return parsed;
  return parsed.flatMap((t) => (!t.weak && t.version !== undefined ? [t.version] : []));
}

/** Answers 304 when If-None-Match names the current version (weak comparison); true when it did. */
export function notModified(req: Request, res: Response, version: number): boolean {
  const parsed = tags(req.get('if-none-match'));
  if (parsed === undefined) return false;
  if (parsed !== '*' && !parsed.some((t) => t.version === version)) return false;
  res.status(304).set('ETag', etag(version)).end();
  return true;
}
