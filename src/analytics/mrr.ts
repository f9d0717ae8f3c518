// GET /metrics/mrr, /metrics/churn and the MRR of GET /analytics, from mrr_days (see
// src/analytics/mrr-engine.ts for what its rows mean): the rows of one dimension and region up
// to today, plus the correction for customers waiting for compaction, summed per month, then
// running sums for the levels. A few
// thousand rows at most, however many subscriptions the tenant has. Run inside withTenant (RLS).
import { type RawBuilder, sql } from 'kysely';
import type { Schemas } from '../contract.js';
import type { Db } from '../database/connection.js';
import { wantedBy } from './mrr-counting.js';
import { ANY } from './mrr-engine.js';
import type { DayRows } from './mrr-engine.js';
import { daysRelation } from './mrr-store.js';

/** Which subscriptions and customers count. */
export interface MetricsFilter {
  planId?: string | undefined;
  featureId?: string | undefined;
  region?: string | undefined;
}

/** A window of months, as their first days ('2026-01-01'). */
export interface MonthWindow {
  from: string;
  to: string;
}

interface MetricsMonthRow {
  month: string;
  complete: boolean;
  starting_mrr: string;
  mrr: string;
  starting_customers: string;
  customers: string;
  new_amount: string;
  new_count: string;
  reactivation_amount: string;
  reactivation_count: string;
  expansion_amount: string;
  expansion_count: string;
  contraction_amount: string;
  contraction_count: string;
  churn_amount: string;
  churn_count: string;
  net_new_mrr: string;
  arpa: string | null;
  customer_churn_rate: string | null;
  gross_mrr_churn_rate: string | null;
  net_revenue_retention: string | null;
  trailing_12m_net_revenue_retention: string | null;
  ltv: string | null;
}

const MOVEMENTS = ['new', 'reactivation', 'expansion', 'contraction', 'churn'] as const;
const SUMMED = [
  'mrr',
  'customers',
  ...MOVEMENTS.flatMap((m) => [`${m}_amount`, `${m}_count`]),
  'nrr_base',
  'nrr_num',
] as const;

const DAY_COLUMNS = sql.join([sql.ref('day'), ...SUMMED.map((col) => sql.ref(col))]);

/**
 * The rows that count: one slot of mrr_days, plus what its customers waiting for compaction
 * change (the correction, computed by the engine in the same transaction).
 */
function source(filter: MetricsFilter, correction: DayRows | undefined): RawBuilder<unknown> {
  const wanted = wantedBy(filter);
  const days = sql`select ${DAY_COLUMNS} from mrr_days
    where plan_id = ${wanted.planId ?? ANY}::uuid and feature_id = ${wanted.featureId ?? ANY}::uuid
      and region = ${wanted.region}`;
  return correction && correction.day.length > 0 ? sql`${days} union all ${daysRelation(correction)}` : days;
}

/** Today (UTC): the buckets up to it are everything that has happened (see the migration). */
const TODAY = sql`(now() at time zone 'UTC')::date`;

/** An amount in cents as money: '12.34'. */
const money = (value: RawBuilder<unknown>) => sql`round((${value}) / 100.0, 2)::text`;
const rate = (numerator: RawBuilder<unknown>, denominator: RawBuilder<unknown>) =>
  sql`round((${numerator}) / nullif(${denominator}, 0), 4)::text`;

/**
 * Every month of the window, oldest first, measured now: complete months at their end, the
 * current one up to now. `to` must not be after the current month.
 */
export function metricsMonths(db: Db, filter: MetricsFilter, window: MonthWindow, correction?: DayRows) {
  const c = (name: string) => sql.ref(`r.${name}`);
  return sql<MetricsMonthRow>`
    with b as (
      select date_trunc('month', s.day::timestamp)::date as mv,
             ${sql.join(SUMMED.map((col) => sql`sum(s.${sql.ref(col)}) as ${sql.ref(col)}`))}
      from (${source(filter, correction)}) s
      where s.day <= ${TODAY}
      group by 1
    ),
    months as (
      select m::date as mv
      from generate_series(
        least((select min(mv) from b), ${window.from}::date - interval '12 months')::timestamp,
        ${window.to}::timestamp, interval '1 month') as m
    ),
    cum as (
      select months.mv,
             ${sql.join(SUMMED.map((col) => sql`coalesce(b.${sql.ref(col)}, 0) as ${sql.ref(col)}`))},
             sum(coalesce(b.mrr, 0)) over w as mrr_end,
             sum(coalesce(b.customers, 0)) over w as customers_end,
             sum(coalesce(b.nrr_base, 0)) over w as base_end
      from months left join b on b.mv = months.mv
      window w as (order by months.mv)
    ),
    r as (
      select cum.*,
             coalesce(lag(mrr_end) over o, 0) as starting_mrr,
             coalesce(lag(customers_end) over o, 0) as starting_customers,
             coalesce(lag(base_end) over o, 0) + nrr_num as retained_12m,
             coalesce(lag(mrr_end, 12) over o, 0) as base_12m
      from cum
      window o as (order by mv)
    )
    select to_char(r.mv, 'YYYY-MM') as month,
           r.mv < date_trunc('month', now() at time zone 'UTC') as complete,
           ${money(c('starting_mrr'))} as starting_mrr, ${money(c('mrr_end'))} as mrr,
           r.starting_customers::text as starting_customers, r.customers_end::text as customers,
           ${sql.join(
             MOVEMENTS.flatMap((m) => [
               sql`${money(c(`${m}_amount`))} as ${sql.ref(`${m}_amount`)}`,
               sql`${c(`${m}_count`)}::text as ${sql.ref(`${m}_count`)}`,
             ]),
           )},
           ${money(sql`r.mrr_end - r.starting_mrr`)} as net_new_mrr,
           round(r.mrr_end / 100.0 / nullif(r.customers_end, 0), 2)::text as arpa,
           ${rate(sql`r.churn_count`, sql`r.starting_customers`)} as customer_churn_rate,
           ${rate(sql`-(r.churn_amount + r.contraction_amount)`, sql`r.starting_mrr`)} as gross_mrr_churn_rate,
           ${rate(sql`r.starting_mrr + r.expansion_amount + r.contraction_amount + r.churn_amount`, sql`r.starting_mrr`)}
             as net_revenue_retention,
           ${rate(sql`r.retained_12m`, sql`r.base_12m`)} as trailing_12m_net_revenue_retention,
           round(r.mrr_end / 100.0 * r.starting_customers / nullif(r.customers_end * r.churn_count, 0), 2)::text as ltv
    from r
    where r.mv >= ${window.from}::date
    order by r.mv`.execute(db);
}

/** MRR and ARR now, of the whole tenant (GET /analytics), with the correction for all of it. */
export async function currentMrr(db: Db, correction?: DayRows): Promise<{ mrr: string; arr: string }> {
  const { rows } = await sql<{ mrr: string; arr: string }>`
    with total as (
      select coalesce(sum(s.mrr), 0) as mrr from (${source({}, correction)}) s where s.day <= ${TODAY})
    select ${money(sql`mrr`)} as mrr, ${money(sql`12 * mrr`)} as arr from total`.execute(db);
  return rows[0]!;
}

/** Tenants with customers waiting for compaction (the owner's connection: across tenants, ids only). */
export async function tenantsToCompact(ownerDb: Db, limit: number): Promise<string[]> {
  const { rows } = await sql<{ tenant_id: string }>`
    select distinct tenant_id from mrr_dirty limit ${limit}`.execute(ownerDb);
  return rows.map((r) => r.tenant_id);
}

/** The months of GET /metrics/mrr and /metrics/churn, from the same rows. */
export interface MetricsMonths {
  mrr: Schemas['MrrMonth'][];
  churn: Schemas['ChurnMonth'][];
}

/** 12 × an amount, exactly: cents as integers, never floats. */
const twelveTimes = (amount: string): string => {
  const text = (BigInt(amount.replace('.', '')) * 12n).toString().padStart(3, '0');
  return `${text.slice(0, -2)}.${text.slice(-2)}`;
};
/** A negative movement as the positive amount lost. */
const lost = (amount: string): string => (amount.startsWith('-') ? amount.slice(1) : amount);
const movement = (amount: string, count: string): Schemas['MrrMovement'] => ({
  amount,
  customers: Number(count),
});

export async function readMetricsMonths(
  db: Db,
  filter: MetricsFilter,
  window: MonthWindow,
  correction?: DayRows,
): Promise<MetricsMonths> {
  const { rows } = await metricsMonths(db, filter, window, correction);
  return {
    mrr: rows.map((m) => ({
      month: m.month,
      complete: m.complete,
      starting_mrr: m.starting_mrr,
      mrr: m.mrr,
      arr: twelveTimes(m.mrr),
      starting_customers: Number(m.starting_customers),
      customers: Number(m.customers),
      arpa: m.arpa,
      net_new_mrr: m.net_new_mrr,
      movements: {
        new: movement(m.new_amount, m.new_count),
        reactivation: movement(m.reactivation_amount, m.reactivation_count),
        expansion: movement(m.expansion_amount, m.expansion_count),
        contraction: movement(m.contraction_amount, m.contraction_count),
        churn: movement(m.churn_amount, m.churn_count),
      },
    })),
    churn: rows.map((m) => ({
      month: m.month,
      complete: m.complete,
      starting_customers: Number(m.starting_customers),
      churned_customers: Number(m.churn_count),
      customer_churn_rate: m.customer_churn_rate,
      starting_mrr: m.starting_mrr,
      churned_mrr: lost(m.churn_amount),
      contraction_mrr: lost(m.contraction_amount),
      gross_mrr_churn_rate: m.gross_mrr_churn_rate,
      net_revenue_retention: m.net_revenue_retention,
      trailing_12m_net_revenue_retention: m.trailing_12m_net_revenue_retention,
      arpa: m.arpa,
      ltv: m.ltv,
    })),
  };
}
