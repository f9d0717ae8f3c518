// GET /api/v1/reports/usage-margin: usage revenue, cost and margin over the usage periods that start
// in [from, to), grouped by metric, by metric and dimension value, or by customer, and the loss
// leaders. One statement, run inside withTenant (RLS); the tenant is also named in each branch, so
// that the indexes that lead with tenant_id serve it.
//
// The statement is built from *sources*: each one a SELECT of facts with the same columns
//   user_id, billable_metric_id, dimension, events, revenue, cost, unbilled_cost
// (one fact per source row: whose, which metric and dimension, how many usage events, and what it
// adds), put together with UNION ALL, then grouped. Adding a source of revenue is adding one more
// branch to `sources`. Four today: the cost of the usage totals, the usage lines of invoices, what
// credit notes gave back of them, and the credits captured from wallets. A fact that names no metric (a capture that named none) has no
// row when grouping by metric or dimension: it counts for its customer, the totals and the loss
// leaders.
import { type RawBuilder, sql } from 'kysely';
import { marginFigures } from '../billing/margins.js';
import type { Schemas } from '../contract.js';
import type { Db } from '../database/connection.js';

export type UsageMarginGroup = 'metric' | 'dimension' | 'user';

export interface UsageMarginParams {
  /** 'YYYY-MM-DD': usage periods starting on or after it. */
  from: string;
  /** 'YYYY-MM-DD': usage periods starting before it. */
  to: string;
  groupBy: UsageMarginGroup;
  /** How many loss leaders to list (the count covers them all). */
  lossLeaders: number;
  /** How many rows a page holds. */
  limit: number;
  /** The sort key of the previous page's last row (see UsageMarginPage); none for the first page. */
  after?: PageKey | undefined;
}

/**
 * Where a row sorts, as text: `[code]` by metric, `[code, rank of the value in its metric]` by
 * dimension, `[margin, user id]` by customer (the margin as exact numeric text).
 */
export type PageKey = ReadonlyArray<string | null>;

/** A page of the report, and the key its next page starts after (null on the last page). */
export interface UsageMarginPage {
  report: Omit<Schemas['UsageMarginReport'], 'next_cursor'>;
  nextAfter: PageKey | null;
}

const TENANT = sql`current_setting('app.tenant_id')::uuid`;

/**
 * Cost: the usage totals of the periods in range, never the events (usage_totals.cost is kept by
 * each recording). A period whose usage is invoiced (it starts before the subscription's
 * usage_invoiced_until) counts in cost; a later one, not billed yet, in unbilled_cost. Added up
 * per customer, metric and dimension here already: what is grouped after is small.
 *
 * A total's row with dimension null holds all of the metric's events; the other rows, those with
 * each group_by value. Grouped by metric or by customer, only the all-events rows are read. Grouped
 * by dimension, every row is read once, and each dimension row counts twice: for its value, and
 * negated under null (the lateral VALUES), so that what stays under null is the events that carry
 * no value. Each metric's dimension rows thus add up to its metric row.
 */
function costSource({ from, to, groupBy }: UsageMarginParams): RawBuilder<unknown> {
  const split = groupBy === 'dimension';
  // Invoiced: a later period's invoice closed it. Or a trial's (free: no invoice ever bills it)
  // whose trial is over, on the subscription's clock: ended on its date, early, or canceled.
  const closed = sql`(s.usage_invoiced_until is not null and t.period_start < s.usage_invoiced_until)
    or (s.trial_end is not null and t.period_start < s.trial_end
        and (s.status = 'canceled' or coalesce(c.frozen_time, now()) >= s.trial_end::timestamp at time zone 'UTC'))`;
  const signed = (value: RawBuilder<unknown>) => (split ? sql`d.sign * ${value}` : value);
  return sql`
    select s.user_id, t.billable_metric_id, ${split ? sql`d.dimension` : sql`null::text`} as dimension,
      sum(${signed(sql`t.events`)}) as events, 0::numeric as revenue,
      coalesce(sum(${signed(sql`t.cost`)}) filter (where ${closed}), 0) as cost,
      coalesce(sum(${signed(sql`t.cost`)}) filter (where not (${closed})), 0) as unbilled_cost
    from usage_totals t
    join subscriptions s on s.tenant_id = t.tenant_id and s.id = t.subscription_id
    left join test_clocks c on c.tenant_id = s.tenant_id and c.id = s.test_clock_id
    ${split ? sql`cross join lateral (values (t.dimension, 1), (null, -1)) d (dimension, sign)` : sql``}
    where t.tenant_id = ${TENANT} and t.period_start >= ${from}::date and t.period_start < ${to}::date
      and ${split ? sql`(d.sign = 1 or t.dimension is not null)` : sql`t.dimension is null`}
    group by 1, 2, 3`;
}

/**
 * Revenue billed: the usage lines (before tax) of issued invoices that bill periods in range. The
 * invoice carrying a period's usage is always that of a later period (usage is billed in arrears),
 * so only invoices whose own period starts after `from` can hold one.
 */
function invoicedRevenue({ from, to }: UsageMarginParams): RawBuilder<unknown> {
  return sql`
    select i.user_id, (l->'usage'->>'billable_metric_id')::uuid as billable_metric_id,
      l->'usage'->>'dimension_value' as dimension, 0::numeric as events,
      -- The charge after its share of the invoice's discount: what was billed, and what prepaid
      -- credits paid of it (they pay only what the discount leaves).
      sum((l->>'amount')::numeric + coalesce((l->'credits_applied'->>'amount')::numeric, 0)
        - coalesce((l->>'discount_share')::numeric, 0)) as revenue,
      0::numeric as cost, 0::numeric as unbilled_cost
    from invoices i cross join lateral jsonb_array_elements(i.lines) l
    where i.tenant_id = ${TENANT} and i.status in ('open', 'paid', 'uncollectible')
      and i.period_start > ${from}::date
      and l->>'type' = 'usage' and (l->>'period_start')::date >= ${from}::date
      and (l->>'period_start')::date < ${to}::date
    group by 1, 2, 3`;
}

/** What a usage line (`l.line`) billed after its share of the invoice's discount. */
const NET_BILLED = sql`((l.line->>'amount')::numeric - coalesce((l.line->>'discount_share')::numeric, 0))`;

/**
 * Revenue given back: of the usage lines that invoicedRevenue counts, what credit notes credited
 * (a note of the line; a note of the invoice as a whole, in proportion to the line's part of the
 * invoice's subtotal, both after the discount, to 4 decimals; at most what the line billed after
 * its share of the discount) and the prepaid credits that paid the line when they were
 * given back (a `refund` entry naming the invoice in a wallet that paid it: the invoice was
 * credited whole). Negative facts. Only invoices with a credit note are read.
 */
function creditedRevenue({ from, to }: UsageMarginParams): RawBuilder<unknown> {
  return sql`
    select i.user_id, (l.line->'usage'->>'billable_metric_id')::uuid as billable_metric_id,
      l.line->'usage'->>'dimension_value' as dimension, 0::numeric as events,
      -sum(
        -- never more than the line billed after its discount: a note of the whole takes its share
        -- of what is left
        least(${NET_BILLED},
        coalesce((select sum((c->>'amount')::numeric) from credit_notes n
          cross join lateral jsonb_array_elements(n.lines) c
          where n.tenant_id = i.tenant_id and n.invoice_id = i.id
            and (c->>'line_index')::int = l.position - 1), 0)
        + coalesce(round((select sum((c->>'amount')::numeric) from credit_notes n
          cross join lateral jsonb_array_elements(n.lines) c
          where n.tenant_id = i.tenant_id and n.invoice_id = i.id and c->>'line_index' is null)
          * ${NET_BILLED} / nullif(i.subtotal, 0), 4), 0))
        + case when exists (select from jsonb_array_elements(l.line->'credits_applied'->'wallets') w
            join wallet_ledger e on e.tenant_id = i.tenant_id and e.wallet_id = (w->>'wallet_id')::uuid
            where e.type = 'refund' and e.invoice_id = i.id)
          then (l.line->'credits_applied'->>'amount')::numeric else 0 end
      ) as revenue,
      0::numeric as cost, 0::numeric as unbilled_cost
    from invoices i
    cross join lateral jsonb_array_elements(i.lines) with ordinality l (line, position)
    where i.tenant_id = ${TENANT} and i.status in ('open', 'paid', 'uncollectible')
      and i.amount_credited > 0 and i.period_start > ${from}::date
      and l.line->>'type' = 'usage' and (l.line->>'period_start')::date >= ${from}::date
      and (l.line->>'period_start')::date < ${to}::date
    group by 1, 2, 3`;
}

/**
 * Revenue consumed from prepaid credits: holds captured in [from, to) (their time), the credits ÷
 * the wallet's rate, rounded half up to 4 decimals each, for the metric and dimension value the
 * capture named (if any). Usage paid from credits on invoices is in invoicedRevenue already.
 *
 * Exact at every size: `round(captured / rate, 4)` rounded twice (numeric division keeps only
 * about 16 significant digits, and never fewer decimals than its operands' 6: a quotient of
 * 10^16 was rounded to 6 decimals, then to 4, so …0000496 came out …0001). Half up to 4 decimals
 * of c ÷ r (both ≥ 0) is instead the integer quotient div(c × 2·10^4 + r, 2r) (`div` truncates
 * exactly), × 0.0001 (a product, exact too).
 */
function capturedRevenue({ from, to, groupBy }: UsageMarginParams): RawBuilder<unknown> {
  return sql`
    select w.user_id, h.billable_metric_id, ${groupBy === 'dimension' ? sql`h.dimension` : sql`null::text`} as dimension,
      0::numeric as events, sum(div(h.captured * 20000 + w.rate, 2 * w.rate) * 0.0001) as revenue,
      0::numeric as cost, 0::numeric as unbilled_cost
    from wallet_holds h join wallets w on w.tenant_id = h.tenant_id and w.id = h.wallet_id
    where h.tenant_id = ${TENANT} and h.status = 'captured'
      and h.settled_at >= ${from}::date and h.settled_at < ${to}::date
    group by 1, 2, 3`;
}

/** Every source of facts. Another source of revenue is one more entry here. */
const sources = (params: UsageMarginParams) => [
  costSource(params),
  invoicedRevenue(params),
  creditedRevenue(params),
  capturedRevenue(params),
];

/** A row of the statement's answer: a group, a loss leader, or the totals. */
interface UsageMarginSqlRow {
  kind: 'row' | 'loss' | 'total';
  billable_metric_id: string | null;
  metric_code: string | null;
  metric_name: string | null;
  dimension: string | null;
  user_id: string | null;
  user_name: string | null;
  user_email: string | null;
  /** Exact sums as numeric text: at most four decimals. */
  revenue: string;
  cost: string;
  unbilled_cost: string;
  /** kind 'total': how many customers are loss leaders. */
  loss_leader_count: string | null;
  /** kind 'row': by customer, revenue − cost (exact); by dimension, its rank in its metric. */
  sort_key: string | null;
}

const KEYS: Record<UsageMarginGroup, RawBuilder<unknown>> = {
  metric: sql`billable_metric_id`,
  dimension: sql`billable_metric_id, dimension`,
  user: sql`user_id`,
};

/**
 * The report's rows (in the order shown), the loss leaders (largest loss first) and the totals,
 * from one scan of the sources, in one statement (one snapshot). Sums stay numeric.
 */
async function usageMarginRows(db: Db, params: UsageMarginParams): Promise<UsageMarginSqlRow[]> {
  const key = KEYS[params.groupBy];
  const { after } = params;
  // The columns naming a row's group (metric, dimension, customer) and its join; then, over them,
  // the rows' order (a total order: metric codes are unique) and the rows after the previous
  // page's last. A dimension row sorts by its metric and its rank among the metric's values
  // (null first, then by value): the cursor carries the rank, not a value of up to 1,000
  // characters.
  const [groupColumns, groupJoin] =
    params.groupBy === 'user'
      ? [
          sql`null::uuid as billable_metric_id, null::text as metric_code, null::text as metric_name,
            null::text as dimension, u.id as user_id, u.name as user_name, u.email as user_email,
            null::bigint as rank`,
          sql`join users u on u.tenant_id = ${TENANT} and u.id = g.user_id`,
        ]
      : [
          sql`g.billable_metric_id, m.code as metric_code, m.name as metric_name,
            ${params.groupBy === 'dimension' ? sql`g.dimension` : sql`null::text`} as dimension,
            null::uuid as user_id, null::text as user_name, null::text as user_email,
            ${
              params.groupBy === 'dimension'
                ? sql`row_number() over (partition by g.billable_metric_id
                    order by g.dimension is not null, coalesce(g.dimension, ''))`
                : sql`null::bigint`
            } as rank`,
          sql`join billable_metrics m on m.tenant_id = ${TENANT} and m.id = g.billable_metric_id`,
        ];
  const [order, sortKey, afterKey] =
    params.groupBy === 'user'
      ? [
          sql`margin, user_id`,
          sql`margin::text`,
          after && sql`(margin, user_id) > (${after[0]}::numeric, ${after[1]}::uuid)`,
        ]
      : params.groupBy === 'dimension'
        ? [
            sql`metric_code, rank`,
            sql`rank::text`,
            after && sql`(metric_code, rank) > (${after[0]}::text, ${after[1]}::bigint)`,
          ]
        : [sql`metric_code`, sql`null::text`, after && sql`metric_code > ${after[0]}::text`];
  // Its hash aggregates (a group per customer, metric and dimension value) spill to disk under
  // the default 4 MB past a few thousand customers: this transaction's report may use more.
  await sql`set local work_mem = '64MB'`.execute(db);
  const { rows } = await sql<UsageMarginSqlRow>`
    with facts as materialized (
      ${sql.join(sources(params), sql`\n      union all\n`)}
    ),
    by_user as (
      select user_id, sum(revenue) as revenue, sum(cost) as cost, sum(unbilled_cost) as unbilled_cost
      from facts group by user_id
    ),
    grouped as (
      select ${key}, sum(revenue) as revenue, sum(cost) as cost, sum(unbilled_cost) as unbilled_cost
      from facts group by ${key}
      -- A group with no events and nothing to add is no row (the events without a dimension value
      -- of a metric whose events all carry one, say).
      having sum(events) <> 0 or sum(revenue) <> 0 or sum(cost) <> 0 or sum(unbilled_cost) <> 0
    ),
    named as (
      select ${groupColumns}, g.revenue, g.cost, g.unbilled_cost, g.revenue - g.cost as margin
      from grouped g
      ${groupJoin}
    ),
    -- One page of rows, and one more row if there is a next page.
    page as (
      select *, ${sortKey} as sort_key, row_number() over (order by ${order}) as n
      from named
      ${afterKey ? sql`where ${afterKey}` : sql``}
      order by ${order}
      limit ${params.limit + 1}
    ),
    report (kind, billable_metric_id, metric_code, metric_name, dimension, user_id, user_name, user_email,
      revenue, cost, unbilled_cost, loss_leader_count, sort_key, n) as (
      select 'row', billable_metric_id, metric_code, metric_name, dimension, user_id, user_name, user_email,
        revenue, cost, unbilled_cost, null::bigint, sort_key, n
      from page
      union all
      select 'loss', null, null, null, null, u.id, u.name, u.email, b.revenue, b.cost, b.unbilled_cost, null, null,
        row_number() over (order by b.revenue - b.cost, b.user_id)
      from (select * from by_user where cost > revenue order by revenue - cost, user_id
            limit ${params.lossLeaders}) b
      join users u on u.tenant_id = ${TENANT} and u.id = b.user_id
      union all
      select 'total', null, null, null, null, null, null, null,
        coalesce(sum(revenue), 0), coalesce(sum(cost), 0), coalesce(sum(unbilled_cost), 0),
        count(*) filter (where cost > revenue), null, 0
      from by_user
    )
    select kind, billable_metric_id, metric_code, metric_name, dimension, user_id, user_name, user_email,
      revenue::text as revenue, cost::text as cost, unbilled_cost::text as unbilled_cost,
      loss_leader_count::text as loss_leader_count, sort_key
    from report order by kind, n`.execute(db);
  return rows;
}

type Row = Schemas['UsageMarginReport']['rows'][number];

/** A page of the report: the statement's sums, with their margins computed exactly (billing/margins.ts). */
export async function readUsageMargin(db: Db, params: UsageMarginParams): Promise<UsageMarginPage> {
  const rows = await usageMarginRows(db, params);
  const pageRows = rows.filter((r) => r.kind === 'row');
  const more = pageRows.length > params.limit;
  if (more) pageRows.length = params.limit;
  const last = pageRows.at(-1);
  const keyOf = (r: UsageMarginSqlRow): PageKey =>
    params.groupBy === 'user'
      ? [r.sort_key, r.user_id]
      : params.groupBy === 'dimension'
        ? [r.metric_code, r.sort_key]
        : [r.metric_code];
  const userOf = (r: UsageMarginSqlRow) => ({ id: r.user_id!, name: r.user_name!, email: r.user_email! });
  const metricOf = (r: UsageMarginSqlRow) => ({
    id: r.billable_metric_id!,
    code: r.metric_code!,
    name: r.metric_name!,
  });
  const toRow = (r: UsageMarginSqlRow): Row => {
    switch (params.groupBy) {
      case 'metric':
        return { metric: metricOf(r), ...marginFigures(r) };
      case 'dimension':
        return { metric: metricOf(r), dimension_value: r.dimension, ...marginFigures(r) };
      case 'user':
        return { user: userOf(r), ...marginFigures(r) };
    }
  };
  const totals = rows.find((r) => r.kind === 'total')!;
  return {
    report: {
      from: params.from,
      to: params.to,
      group_by: params.groupBy,
      totals: marginFigures(totals),
      rows: pageRows.map(toRow),
      loss_leaders: rows
        .filter((r) => r.kind === 'loss')
        .map((r) => ({ user: userOf(r), ...marginFigures(r) })),
      loss_leader_count: Number(totals.loss_leader_count),
    },
    nextAfter: more && last ? keyOf(last) : null,
  };
}
