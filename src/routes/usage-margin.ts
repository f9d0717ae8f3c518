import { type Request, Router } from 'express';
import type { Query } from '../contract.js';
import { actorOf } from '../http/authenticate.js';
import { cursorText, sealCursor, unsealCursor } from '../http/pagination.js';
import { badRequest, ProblemError } from '../http/problems.js';
import type { ServiceContext } from '../services/context.js';
import * as margins from '../services/usage-margin.js';
import type { PageKey, UsageMarginGroup } from '../services/usage-margin.js';

// A page's cursor is the sort key of its last row (analytics/usage-margin.ts, PageKey) with the
// grouping it sorts in, sealed for the tenant (`m1:<seal>:<group_by>:<key as JSON>`): opaque to
// clients, refused by another grouping, list or tenant.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NUMERIC = /^-?\d{1,30}(\.\d{1,10})?$/;

/** Whether a decoded key has the shape of the grouping's (it was sealed by us: a check, not a parse). */
function isKeyOf(groupBy: UsageMarginGroup, key: unknown): key is PageKey {
  if (!Array.isArray(key)) return false;
  const text = (value: unknown) => typeof value === 'string';
  switch (groupBy) {
    case 'metric':
      return key.length === 1 && text(key[0]);
    case 'dimension':
      return key.length === 2 && text(key[0]) && text(key[1]) && /^[1-9]\d{0,17}$/.test(key[1]);
    case 'user':
      return key.length === 2 && text(key[0]) && NUMERIC.test(key[0]) && text(key[1]) && UUID.test(key[1]);
  }
}

function decodeAfter(
  req: Request,
  groupBy: UsageMarginGroup,
  cursor: string | undefined,
): PageKey | undefined {
  if (cursor === undefined) return undefined;
  const payload = unsealCursor(req, 'm1', cursorText(cursor));
  const prefix = `${groupBy}:`;
  let key: unknown;
  if (payload?.startsWith(prefix)) {
    try {
      key = JSON.parse(payload.slice(prefix.length));
    } catch {
      key = undefined;
    }
  }
  if (!isKeyOf(groupBy, key)) {
    throw new ProblemError(
      400,
      'invalid-cursor',
      'cursor is not a value returned as next_cursor by this report for the same group_by.',
      [{ location: 'query', field: 'cursor', message: 'unrecognised cursor, or one of another grouping' }],
    );
  }
  return key;
}

/** Mounted at /api/v1/reports, next to the taxes report. */
export function usageMarginRouter(ctx: ServiceContext): Router {
  const router = Router({ caseSensitive: true });
  router.get('/usage-margin', async (req, res) => {
    const query = req.query as unknown as Query<'getUsageMarginReport'>;
    const groupBy = query.group_by ?? 'metric';
    const outcome = await margins.getUsageMarginReport(ctx, actorOf(req), {
      from: query.from,
      to: query.to,
      groupBy,
      limit: query.limit ?? 1000,
      after: decodeAfter(req, groupBy, query.cursor),
    });
    if (outcome.kind === 'bad-range') {
      throw badRequest(`to ${outcome.message}.`, [
        { location: 'query', field: 'to', message: outcome.message },
      ]);
    }
    const { nextAfter } = outcome;
    res.json({
      ...outcome.report,
      next_cursor: nextAfter ? sealCursor(req, 'm1', `${groupBy}:${JSON.stringify(nextAfter)}`) : null,
    });
  });
  return router;
}
