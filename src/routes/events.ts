import { type Request, Router } from 'express';
import type { Query, Schemas } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { cursorText, sealCursor, unsealCursor } from '../http/pagination.js';
import { ProblemError } from '../http/problems.js';
import { toEventResponse } from '../responses/events.js';
import type { ServiceContext } from '../services/context.js';
import * as events from '../services/events.js';

// The feed's cursor is a position, (xid, seq) of the last event read: opaque to clients, and sealed
// for the tenant (`e2:<seal>:`, http/pagination.ts sealCursor). A subscription's history names the
// subscription too (`e2:<seal>:<id>:`), which the feed and other subscriptions refuse, as every
// list refuses another's cursors. Cursors issued before they named the tenant
// (`e1:`) are still read as they were.
/** The largest xid8 (unsigned 64-bit) and seq (bigint) a position can hold. */
const MAX_XID = 2n ** 64n - 1n;
const MAX_SEQ = 2n ** 63n - 1n;
const prefixOf = (version: string, subscriptionId?: string) =>
  subscriptionId ? `${version}${subscriptionId.toLowerCase()}:` : version;

function decodePosition(
  req: Request,
  cursor: string | undefined,
  subscriptionId?: string,
): { xid: string; seq: string } | undefined {
  if (cursor === undefined) return undefined;
  const decoded = cursorText(cursor);
  const text = decoded.startsWith('e1:') ? decoded : `e2:${unsealCursor(req, 'e2', decoded) ?? ''}`;
  const prefix = prefixOf(text.startsWith('e1:') ? 'e1:' : 'e2:', subscriptionId);
  const match = text.startsWith(prefix) ? /^(\d{1,20}):(\d{1,20})$/.exec(text.slice(prefix.length)) : null;
  if (!match || BigInt(match[1]!) > MAX_XID || BigInt(match[2]!) > MAX_SEQ) {
    throw new ProblemError(
      400,
      'invalid-cursor',
      'cursor is not a value returned as next_cursor by this API.',
      [{ location: 'query', field: 'cursor', message: 'unrecognised cursor' }],
    );
  }
  return { xid: match[1]!, seq: match[2]! };
}

const encodePosition = (req: Request, xid: string, seq: string, subscriptionId?: string) =>
  sealCursor(req, 'e2', `${prefixOf('', subscriptionId)}${xid}:${seq}`);

/**
 * The bounds of the `after` and `before` filters, in the millisecond the API shows: an event's
 * occurred_at is stored to the microsecond and shown truncated to the millisecond, so an event
 * shown at T occurred within [T, T + 1 ms). `after=T` keeps what is shown later than T: occurred
 * at or after T's millisecond + 1 ms (the event shown at T is not after T, and a poller resuming
 * from the last occurred_at it saw gets it once); `before=T` keeps what is shown earlier than T:
 * occurred before T, rounded up to a millisecond (an instant finer than that, .3195, is after
 * what is shown as .319).
 */
function shownBounds(after?: string, before?: string): { occurredFrom?: string; occurredBefore?: string } {
  const bound = (text: string | undefined, edge: 'after' | 'before') => {
    if (text === undefined) return undefined;
    const ms = Date.parse(text); // truncated to the millisecond
    if (Number.isNaN(ms)) return text;
    // Digits below the millisecond that are not all zero: the instant is past ms.
    const finer = /\.\d{3}\d*[1-9]/.test(text);
    return new Date(edge === 'after' || finer ? ms + 1 : ms).toISOString();
  };
  return { occurredFrom: bound(after, 'after'), occurredBefore: bound(before, 'before') };
}

/** A page of the feed, of one subscription when given (undefined: no such subscription, ever). */
export async function listEventsPage(
  ctx: ServiceContext,
  req: Request,
  subscriptionId?: string,
): Promise<Schemas['EventList'] | undefined> {
  const query = req.query as Query<'listEvents'>;
  const filter = {
    limit: query.limit ?? 20,
    after: decodePosition(req, query.cursor, subscriptionId),
    types: query.type,
    resourceId: query.resource_id,
    ...shownBounds(query.after, query.before),
  };
  const page = subscriptionId
    ? await events.listSubscriptionEvents(ctx, actorOf(req), subscriptionId, filter)
    : await events.listEvents(ctx, actorOf(req), filter);
  if (!page) return undefined;
  const last = page.rows.at(-1);
  // Past the newest event the cursor stays put: polling with it returns only newer events. An
  // empty first page leaves its reader at the horizon: every event before it was read (and none
  // matched), and polling from there returns only newer ones.
  const start =
    page.horizon === undefined
      ? null
      : encodePosition(req, String(BigInt(page.horizon) - 1n), String(MAX_SEQ), subscriptionId);
  return {
    data: page.rows.map(toEventResponse),
    next_cursor: last ? encodePosition(req, last.xid, last.seq, subscriptionId) : (query.cursor ?? start),
  };
}

export function eventsRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/', async (req, res) => {
    res.json(await listEventsPage(ctx, req));
  });
  return router;
}
