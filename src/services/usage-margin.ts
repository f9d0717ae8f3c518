// GET /reports/usage-margin: usage revenue, cost and margin over a range of usage periods, and the
// loss leaders (the SQL and its semantics: src/analytics/usage-margin.ts; docs/usage.md, "Margins").
import {
  type PageKey,
  readUsageMargin,
  type UsageMarginGroup,
  type UsageMarginPage,
} from '../analytics/usage-margin.js';

export type { PageKey, UsageMarginGroup };
import { type Actor, inTenant, type ServiceContext } from './context.js';

/** The longest range a report covers: a year, a leap year included. */
export const MAX_RANGE_DAYS = 366;
/** How many loss leaders a report lists (it counts them all). */
export const MAX_LOSS_LEADERS = 100;

export interface UsageMarginRequest {
  /** 'YYYY-MM-DD', inclusive. */
  from: string;
  /** 'YYYY-MM-DD', exclusive. */
  to: string;
  groupBy: UsageMarginGroup;
  /** How many rows a page holds. */
  limit: number;
  /** The sort key of the previous page's last row. */
  after?: PageKey | undefined;
}

export type UsageMarginOutcome =
  ({ kind: 'report' } & UsageMarginPage) | { kind: 'bad-range'; message: string };

const DAY_MS = 86_400_000;

export async function getUsageMarginReport(
  ctx: ServiceContext,
  actor: Actor,
  { from, to, groupBy, limit, after }: UsageMarginRequest,
): Promise<UsageMarginOutcome> {
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS;
  if (days <= 0) return { kind: 'bad-range', message: 'must be after from' };
  if (days > MAX_RANGE_DAYS)
    return { kind: 'bad-range', message: `must be at most ${MAX_RANGE_DAYS} days after from` };
  // One statement: its snapshot is the report's.
  const page = await inTenant(ctx, actor, (tx) =>
    readUsageMargin(tx.db, { from, to, groupBy, lossLeaders: MAX_LOSS_LEADERS, limit, after }),
  );
  return { kind: 'report', ...page };
}
