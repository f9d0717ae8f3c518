// MRR and its movements, exact and current (GET /metrics/mrr, /metrics/churn; GET /analytics mrr).
//
// The model. A subscription's monthly amount is plan_cost ÷ (interval_count × 12 for yearly, ×1
// for monthly), rounded half-up to the cent. Its MRR at instant t is that amount while it counts:
// from start_date 00:00 UTC, before end_date + 1 day 00:00 UTC (end_date is the last day served)
// and before canceled_at, while its status at t is active or past_due. Status, price and plan at t
// come from subscription_versions (one row per change, valid_from = the writing transaction's
// time; the first version also stands for every time before it). Dates are the row's own, so a
// back-dated start or end rewrites history. Subscriptions on a test clock are simulations and
// count nowhere.
//
// A customer's MRR is a step function of time: the points (t, mrr) of mrr_series, one series per
// customer and dimension (all of their subscriptions; those on one plan, by the plan of the
// version in effect; those linked to one feature, by today's links), tagged with the customer's
// region today. Every write to a subscription, a feature link or a user's region marks the
// customers it touches dirty (mrr_dirty, by the triggers below, in the writing transaction: a
// write pays for little more than the mark). A compaction (mrr_compact: the worker's loop, or a
// read that finds many marks) re-derives a batch of dirty customers' series and adds the
// difference they make to mrr_buckets; until then, every read adds that difference itself
// (mrr_correction, computed from the tables in the read's snapshot). So a read is exact and
// current to the last committed write whether or not compaction has caught up, and costs a few
// thousand bucket rows plus the dirty customers.
//
// Months are measured at their edges: a month's starting MRR is the MRR just before 00:00 UTC on
// its first day, its ending MRR just before the next month's (so a subscription starting on the
// 1st is that month's, and one whose last day is the 31st is still in that month's MRR).
//
// mrr_buckets holds, per dimension and region ('*' = every region), what changes on each UTC day.
// The sum of the rows before day D is the value just before D 00:00; up to today, the value now:
// the only changes still to come are at midnights (start and end dates), since every other moment
// is a transaction time or a cancellation, all in the past. A row's month is its day's. Columns:
//   mrr, customers           level deltas: their running sum is MRR and the customer count;
//   <kind>_amount/_count     movement deltas within the month: summed over a month's rows they are
//                            its movements so far (new, reactivation, expansion, contraction,
//                            churn; contraction and churn amounts negative), comparing each
//                            customer's MRR at the month's start with its MRR at the end (or now);
//   nrr_base, nrr_num        trailing-12-month retention: the customers with MRR at the start of
//                            month m-11 and their MRR at the end of month m. nrr_base's running sum
//                            up to the start of m is their MRR at the start of m; nrr_num adds
//                            what changes during m.
// `shard` spreads concurrent writers over rows (as subscription_rollups does); readers sum them.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';
const CURRENT_TENANT = sql`nullif(current_setting('app.tenant_id', true), '')::uuid`;
const ALL = `'00000000-0000-0000-0000-000000000000'::uuid`;
const COLUMNS = [
  'mrr',
  'customers',
  'new_amount',
  'new_count',
  'reactivation_amount',
  'reactivation_count',
  'expansion_amount',
  'expansion_count',
  'contraction_amount',
  'contraction_count',
  'churn_amount',
  'churn_count',
  'nrr_base',
  'nrr_num',
] as const;

/** A subscription row's monthly amount, exact to the cent (half-up). */
const MONTHLY = `round(plan_cost / (interval_count * case billing_interval when 'year' then 12 else 1 end), 2)`;

/**
 * How the series points read the tables: for a few customers (p_users), every lookup by key, a
 * nested loop per customer and per subscription, whatever the planner believes of the tenant's
 * size (statistics that have not seen a new tenant's rows yet turned joins into scans of the
 * whole tenant for each row); for all of a tenant's customers, joins.
 */
type Scope = 'some' | 'all';

const SUB_FIELDS = `s.id, s.user_id,
    coalesce((select u.region from users u where u.tenant_id = p_tenant and u.id = s.user_id), '') as region,
    s.start_date::timestamp at time zone 'UTC' as start_t,
    (s.end_date + 1)::timestamp at time zone 'UTC' as end_t,
    s.canceled_at`;

/** Each subscription's changes, as changes of its customer's series in each dimension. */
const dimensions = (scope: Scope) => `
    select user_id, region, 0::smallint as dim_kind, ${ALL} as dim_id, t, g - g_before as delta from steps
    union all
    select user_id, region, 1::smallint, plan_id, t, g from steps where plan_id is not null
    union all
    select user_id, region, 1::smallint, plan_before, t, -g_before from steps where plan_before is not null
    union all
    select st.user_id, st.region, 2::smallint, sf.feature_id, st.t, st.g - st.g_before
    from steps st ${
      scope === 'some'
        ? `cross join lateral (select feature_id from subscription_features sf
             where sf.tenant_id = p_tenant and sf.subscription_id = st.id) sf`
        : 'join subscription_features sf on sf.tenant_id = p_tenant and sf.subscription_id = st.id'
    }`;
/** One plan and one feature at once (dimension 3): computed live, never stored. */
const PLAN_AND_FEATURE = `
    select user_id, region, 3::smallint as dim_kind, ${ALL} as dim_id, t, g as delta from steps where plan_id = p_plan
    union all
    select user_id, region, 3::smallint, ${ALL}, t, -g_before from steps where plan_before = p_plan`;

/**
 * The series points of the tenant's customers, from the tables: (user_id, dim_kind 0 all | 1
 * plan | 2 feature, dim_id, region, t, mrr), mrr from t on. `some`: the customers p_users;
 * `all`: every one (`which` narrows the subscriptions).
 */
const points = (scope: Scope, which = '', deltas = dimensions(scope)) => `
  with subs as (
    ${
      scope === 'some'
        ? `select ${SUB_FIELDS} from unnest(p_users) as pu (user_id)
           cross join lateral (select * from subscriptions s
             where s.tenant_id = p_tenant and s.user_id = pu.user_id and s.test_clock_id is null) s`
        : `select ${SUB_FIELDS} from subscriptions s
           where s.tenant_id = p_tenant and s.test_clock_id is null ${which}`
    }
  ),
  versions as (
    select subs.*, v.valid_from, v.status, v.monthly_amount, v.plan_id,
           row_number() over (partition by subs.id order by v.valid_from) as rn
    from subs ${
      scope === 'some'
        ? `cross join lateral (select valid_from, status, monthly_amount, plan_id from subscription_versions v
             where v.tenant_id = p_tenant and v.subscription_id = subs.id) v`
        : 'join subscription_versions v on v.tenant_id = p_tenant and v.subscription_id = subs.id'
    }
  ),
  -- The moments a subscription's amount may change: its versions (the first from -infinity),
  -- its start, its end and its cancellation, each row with what it needs of the subscription.
  -- Versions sort first at equal times.
  marks as (
    select id, user_id, region, start_t, end_t, canceled_at,
           case when rn = 1 then '-infinity'::timestamptz else valid_from end as t,
           0 as kind, status, monthly_amount, plan_id
    from versions
    union all select id, user_id, region, start_t, end_t, canceled_at, start_t, 1, null, null, null from subs
    union all select id, user_id, region, start_t, end_t, canceled_at, end_t, 1, null, null, null
      from subs where end_t is not null
    union all select id, user_id, region, start_t, end_t, canceled_at, canceled_at, 1, null, null, null
      from subs where canceled_at is not null
  ),
  grouped as (
    select m.*, count(m.status) over (partition by m.id order by m.t, m.kind
                                      rows between unbounded preceding and current row) as grp
    from marks m
  ),
  versioned as (
    select g.id, g.user_id, g.region, g.start_t, g.end_t, g.canceled_at, g.t,
           first_value(g.status) over w as status, first_value(g.monthly_amount) over w as amount,
           first_value(g.plan_id) over w as plan_id
    from grouped g
    window w as (partition by g.id, g.grp order by g.t, g.kind)
  ),
  valued as (
    select id, user_id, region, t, plan_id,
           case when t < start_t or t >= end_t or t >= canceled_at
                  or status not in ('active', 'past_due') then 0::numeric
                else amount end as g
    from versioned
  ),
  steps as (
    select id, user_id, region, t, plan_id, g,
           lag(g, 1, 0::numeric) over w as g_before, lag(plan_id) over w as plan_before
    from valued
    window w as (partition by id order by t)
  ),
  deltas as (${deltas}),
  points as (
    select user_id, region, dim_kind, dim_id, t, sum(delta) as delta
    from deltas where t > '-infinity'
    group by 1, 2, 3, 4, 5 having sum(delta) <> 0
  )
  select user_id, dim_kind, dim_id, region, t,
         sum(delta) over (partition by user_id, dim_kind, dim_id order by t) as mrr
  from points`;

/** The ten movement columns of a customer's month as of its MRR `e`, against c.s0 and c.paid. */
const MOVEMENTS: Array<[string, (e: string) => string]> = [
  ['new_amount', (e) => `case when c.s0 = 0 and ${e} > 0 and not c.paid then ${e} else 0 end`],
  ['new_count', (e) => `case when c.s0 = 0 and ${e} > 0 and not c.paid then 1 else 0 end`],
  ['reactivation_amount', (e) => `case when c.s0 = 0 and ${e} > 0 and c.paid then ${e} else 0 end`],
  ['reactivation_count', (e) => `case when c.s0 = 0 and ${e} > 0 and c.paid then 1 else 0 end`],
  ['expansion_amount', (e) => `case when c.s0 > 0 and ${e} > c.s0 then ${e} - c.s0 else 0 end`],
  ['expansion_count', (e) => `case when c.s0 > 0 and ${e} > c.s0 then 1 else 0 end`],
  [
    'contraction_amount',
    (e) => `case when c.s0 > 0 and ${e} > 0 and ${e} < c.s0 then ${e} - c.s0 else 0 end`,
  ],
  ['contraction_count', (e) => `case when c.s0 > 0 and ${e} > 0 and ${e} < c.s0 then 1 else 0 end`],
  ['churn_amount', (e) => `case when c.s0 > 0 and ${e} = 0 then -c.s0 else 0 end`],
  ['churn_count', (e) => `case when c.s0 > 0 and ${e} = 0 then 1 else 0 end`],
];

/**
 * What a relation of signed series points adds to mrr_buckets (see the comment at the top):
 * `input` yields (sign, user_id, dim_kind, dim_id, region, t, mrr); the result has one row per
 * dimension, region ('*' included) and day, with the COLUMNS summed and signed.
 */
function contributions(input: string): string {
  const key = 'sign, user_id, dim_kind, dim_id';
  return `
  with p as (${input}),
  c1 as (
    select p.*, lag(p.mrr, 1, 0::numeric) over s as before,
           coalesce(bool_or(p.mrr > 0) over (s rows between unbounded preceding and 1 preceding), false)
             as paid_earlier,
           (p.t at time zone 'UTC')::date as day
    from p
    window s as (partition by ${key} order by p.t)
  ),
  c as (
    select c1.*, date_trunc('month', c1.day::timestamp)::date as mv,
           first_value(c1.before) over m as s0, first_value(c1.paid_earlier) over m as paid,
           last_value(c1.mrr) over (m rows between unbounded preceding and unbounded following) as ends
    from c1
    window m as (partition by ${key}, date_trunc('month', c1.day::timestamp) order by c1.t)
  ),
  -- Retention, by window functions over each series' months (no lookups): the value at the
  -- start of month m, E(m), jumps at (a month with points) + 1 to that month's last value; the
  -- cohort flag P(m) = E(m - 11) > 0 jumps 11 months later; the base A(m) = P(m) ? E(m) : 0.
  -- Months with points also ask for P, their points' weight.
  months as (select distinct ${key}, region, mv, ends from c),
  timeline as (
    select ${key}, region, month, max(e) as e, bool_or(flag) as flag
    from (
      select ${key}, region, (mv + interval '1 month')::date as month, ends as e, null::boolean as flag from months
      union all
      select ${key}, region, (mv + interval '12 months')::date, null, ends > 0 from months
      union all
      select ${key}, region, mv, null, null from months
    ) x
    group by 1, 2, 3, 4, 5, 6
  ),
  carried as (
    select t.*, count(t.e) over w as e_run, count(t.flag) over w as flag_run
    from timeline t
    window w as (partition by ${key} order by t.month)
  ),
  valued as (
    select v.*, case when v.cohort then v.start_value else 0 end as base
    from (
      select c.*,
             coalesce(first_value(c.e) over (partition by ${key}, e_run order by c.month), 0) as start_value,
             coalesce(first_value(c.flag) over (partition by ${key}, flag_run order by c.month), false) as cohort
      from carried c
    ) v
  ),
  -- Each point: the change of level, and the change of its month's movement as of that point.
  changes as (
    select c.sign, c.dim_kind, c.dim_id, c.region, c.day,
           c.mrr - c.before as mrr,
           (c.mrr > 0)::int - (c.before > 0)::int as customers,
           ${MOVEMENTS.map(([col, f]) => `(${f('c.mrr')}) - (${f('c.before')}) as ${col}`).join(',\n           ')},
           0::numeric as nrr_base,
           case when v.cohort then c.mrr - c.before else 0 end as nrr_num
    from c join valued v
      on v.sign = c.sign and v.user_id = c.user_id and v.dim_kind = c.dim_kind and v.dim_id = c.dim_id
     and v.month = c.mv
  ),
  -- The base's changes, on the last day of the month before (its running sum is A at the start).
  bases as (
    select sign, dim_kind, dim_id, region, month - 1 as day, 0::numeric as mrr, 0 as customers,
           ${MOVEMENTS.map(([col]) => `0 as ${col}`).join(', ')},
           base - lag(base, 1, 0::numeric) over (partition by ${key} order by month) as nrr_base,
           0::numeric as nrr_num
    from valued
  ),
  contributed as (select * from changes union all select * from bases)
  select r.dim_kind, r.dim_id, g.region, r.day,
         ${COLUMNS.map((col) => `sum(r.sign * r.${col})::numeric as ${col}`).join(', ')}
  from contributed r cross join lateral (values (r.region), ('*')) as g (region)
  group by 1, 2, 3, 4
  having ${COLUMNS.map((col) => `sum(r.sign * r.${col}) <> 0`).join(' or ')}`;
}

const SERIES_COLUMNS = 'user_id, dim_kind, dim_id, region, t, mrr';
const BUCKET_KEY = 'tenant_id, dim_kind, dim_id, region, day, shard';
const OPERATIONS = ['insert', 'update', 'delete'] as const;
/** The tenant's MRR lock: held by whoever refreshes its series (compaction, rebuild). */
const LOCK = `hashtextextended('mrr:' || p_tenant::text, 0)`;
/** The columns whose change is a new version of a subscription (its status, price or plan). */
const VERSIONED = ['status', 'plan_cost', 'billing_interval', 'interval_count', 'plan_id'];
/** The columns whose change can change a customer's MRR at some time. */
const RELEVANT = [...VERSIONED, 'start_date', 'end_date', 'canceled_at', 'user_id', 'test_clock_id'];

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table subscription_versions (
      tenant_id uuid not null default ${CURRENT_TENANT},
      subscription_id uuid not null,
      valid_from timestamptz not null,
      status text not null,
      monthly_amount numeric(12, 2) not null,
      plan_id uuid,
      primary key (tenant_id, subscription_id, valid_from),
      foreign key (tenant_id, subscription_id) references subscriptions (tenant_id, id) on delete cascade
    )`.execute(db);
  await sql`
    create table mrr_series (
      tenant_id uuid not null default ${CURRENT_TENANT},
      user_id uuid not null,
      dim_kind smallint not null check (dim_kind in (0, 1, 2)),
      dim_id uuid not null,
      region text not null,
      t timestamptz not null,
      mrr numeric not null,
      primary key (tenant_id, user_id, dim_kind, dim_id, t),
      -- Not to users: the check's lock on the user's row could wait for a writer that is itself
      -- waiting for this refresh. A user with series has subscriptions, so cannot be deleted.
      foreign key (tenant_id) references tenants (id) on delete cascade
    )`.execute(db);
  await sql`
    create table mrr_buckets (
      tenant_id uuid not null default ${CURRENT_TENANT} references tenants (id) on delete cascade,
      dim_kind smallint not null,
      dim_id uuid not null,
      region text not null,
      day date not null,
      shard smallint not null,
      ${sql.raw(COLUMNS.map((col) => `${col} ${col.endsWith('_count') || col === 'customers' ? 'bigint' : 'numeric'} not null`).join(', '))},
      primary key (tenant_id, dim_kind, dim_id, region, day, shard)
    )`.execute(db);
  // Customers whose series are behind their subscriptions: marked by the writing statement (in
  // its transaction), brought up to date by mrr_compact; until then reads add mrr_correction.
  await sql`
    create table mrr_dirty (
      tenant_id uuid not null default ${CURRENT_TENANT},
      user_id uuid not null,
      marked_at timestamptz not null default now(),
      primary key (tenant_id, user_id),
      foreign key (tenant_id) references tenants (id) on delete cascade
    )`.execute(db);
  for (const table of ['subscription_versions', 'mrr_series', 'mrr_buckets', 'mrr_dirty']) {
    await sql`alter table ${sql.table(table)} enable row level security, force row level security`.execute(
      db,
    );
    await sql`create policy tenant_isolation on ${sql.table(table)}
      using (tenant_id = ${CURRENT_TENANT}) with check (tenant_id = ${CURRENT_TENANT})`.execute(db);
    await sql`grant select, insert, update, delete on ${sql.table(table)} to ${sql.id(APP_ROLE)}`.execute(db);
  }

  // Two functions, so that each is planned for its case: a few customers by index, or all.
  await sql
    .raw(
      `
    create function mrr_points_of(p_tenant uuid, p_users uuid[])
    returns table (user_id uuid, dim_kind smallint, dim_id uuid, region text, t timestamptz, mrr numeric)
    -- plpgsql, not sql: its plan is kept across calls (a sql function is planned at every call).
    language plpgsql stable as $$
    #variable_conflict use_column
    begin
      return query ${points('some')};
    end $$`,
    )
    .execute(db);
  await sql
    .raw(
      `
    create function mrr_points_all(p_tenant uuid)
    returns table (user_id uuid, dim_kind smallint, dim_id uuid, region text, t timestamptz, mrr numeric)
    language sql stable as $$ ${points('all')} $$`,
    )
    .execute(db);

  // The customers' series, derived again; the buckets get the difference. The caller holds the
  // tenant's MRR lock (mrr_compact, mrr_rebuild): one refresh at a time, each reading the last's.
  await sql
    .raw(
      `
    create function mrr_refresh(p_tenant uuid, p_users uuid[]) returns void language plpgsql as $$
    declare
      old_points mrr_series[];
      new_points mrr_series[];
    begin
      if p_users is null or cardinality(p_users) = 0 then return; end if;
      with gone as (
        delete from mrr_series s where s.tenant_id = p_tenant and s.user_id = any (p_users) returning s.*)
      select array_agg(gone) into old_points from gone;
      with made as (
        insert into mrr_series (tenant_id, ${SERIES_COLUMNS})
        select p_tenant, ${SERIES_COLUMNS} from mrr_points_of(p_tenant, p_users)
        returning *)
      select array_agg(made) into new_points from made;
      insert into mrr_buckets as b (${BUCKET_KEY}, ${COLUMNS.join(', ')})
      select p_tenant, x.dim_kind, x.dim_id, x.region, x.day, pg_backend_pid() % 16,
             ${COLUMNS.map((col) => `x.${col}`).join(', ')}
      from (${contributions(`
        select -1 as sign, ${SERIES_COLUMNS} from unnest(old_points)
        union all
        select 1, ${SERIES_COLUMNS} from unnest(new_points)`)}) x
      order by 2, 3, 4, 5
      on conflict (${BUCKET_KEY}) do update set
        ${COLUMNS.map((col) => `${col} = b.${col} + excluded.${col}`).join(', ')};
    end $$`,
    )
    .execute(db);

  // Everything of one tenant from scratch (versions first, for subscriptions written without them).
  await sql
    .raw(
      `
    create function mrr_rebuild(p_tenant uuid) returns void language plpgsql as $$
    begin
      perform pg_advisory_xact_lock(${LOCK});
      delete from mrr_dirty where tenant_id = p_tenant;
      insert into subscription_versions (tenant_id, subscription_id, valid_from, status, monthly_amount, plan_id)
      -- Without history, a subscription had its status since it started, but a canceled one was
      -- active until canceled_at.
      select s.tenant_id, s.id, s.created_at,
             case s.status when 'canceled' then 'active' else s.status end, ${MONTHLY}, s.plan_id
      from subscriptions s
      where s.tenant_id = p_tenant and s.test_clock_id is null
        and not exists (select from subscription_versions v where v.tenant_id = s.tenant_id and v.subscription_id = s.id);
      delete from mrr_buckets where tenant_id = p_tenant;
      delete from mrr_series where tenant_id = p_tenant;
      insert into mrr_series (tenant_id, ${SERIES_COLUMNS})
      select p_tenant, ${SERIES_COLUMNS} from mrr_points_all(p_tenant);
      insert into mrr_buckets (${BUCKET_KEY}, ${COLUMNS.join(', ')})
      select p_tenant, x.dim_kind, x.dim_id, x.region, x.day, 0, ${COLUMNS.map((col) => `x.${col}`).join(', ')}
      from (${contributions(`select 1 as sign, ${SERIES_COLUMNS} from mrr_series where tenant_id = p_tenant`)}) x;
    end $$`,
    )
    .execute(db);

  // Up to p_limit dirty customers of the tenant brought up to date; -1 when another compaction of
  // the tenant is running. Customers whose writers have not committed yet (their mark is locked)
  // are left for the next one.
  await sql
    .raw(
      `
    create function mrr_compact(p_tenant uuid, p_limit int) returns int language plpgsql as $$
    declare v_users uuid[];
    begin
      if not pg_try_advisory_xact_lock(${LOCK}) then return -1; end if;
      select array_agg(user_id) into v_users from (
        select user_id from mrr_dirty where tenant_id = p_tenant
        order by user_id limit p_limit for update skip locked) picked;
      delete from mrr_dirty where tenant_id = p_tenant and user_id = any (v_users);
      perform mrr_refresh(p_tenant, v_users);
      return coalesce(cardinality(v_users), 0);
    end $$`,
    )
    .execute(db);

  // What the dirty customers change in the buckets, as of the calling statement's snapshot (a
  // stable function): added to mrr_buckets by every read, it makes the sum exact.
  await sql
    .raw(
      `
    create function mrr_correction(p_tenant uuid)
    returns table (dim_kind smallint, dim_id uuid, region text, day date,
                   ${COLUMNS.map((col) => `${col} numeric`).join(', ')})
    language plpgsql stable as $$
    #variable_conflict use_column
    declare v_users uuid[];
    begin
      select array_agg(d.user_id) into v_users from mrr_dirty d where d.tenant_id = p_tenant;
      if v_users is null then return; end if;
      return query ${contributions(`
        select 1 as sign, ${SERIES_COLUMNS} from mrr_points_of(p_tenant, v_users)
        union all
        select -1, ${SERIES_COLUMNS} from mrr_series where tenant_id = p_tenant and user_id = any (v_users)`)};
    end $$`,
    )
    .execute(db);

  // Planned for each call's own customers: a generic plan, made for no tenant in particular,
  // scans every subscription of the database for a few customers of a small tenant.
  // And joined by hashing, not by loops: a loop is only as good as the planner's row counts.
  for (const fn of ['mrr_points_of(uuid, uuid[])', 'mrr_refresh(uuid, uuid[])', 'mrr_correction(uuid)']) {
    await sql.raw(`alter function ${fn} set plan_cache_mode = force_custom_plan`).execute(db);
    await sql.raw(`alter function ${fn} set enable_nestloop = off`).execute(db);
  }

  // What the buckets should hold, recomputed from the tables (the consistency check).
  await sql
    .raw(
      `
    create function mrr_expected(p_tenant uuid)
    returns table (dim_kind smallint, dim_id uuid, region text, day date,
                   ${COLUMNS.map((col) => `${col} numeric`).join(', ')})
    language sql stable as $$
      ${contributions(`select 1 as sign, ${SERIES_COLUMNS} from mrr_points_all(p_tenant)`)}
    $$`,
    )
    .execute(db);

  // Plan and feature together, from the tables, for GET /metrics (not stored: rarely asked).
  await sql
    .raw(
      `
    create function mrr_live(p_tenant uuid, p_plan uuid, p_feature uuid)
    returns table (dim_kind smallint, dim_id uuid, region text, day date,
                   ${COLUMNS.map((col) => `${col} numeric`).join(', ')})
    language sql stable as $$
      ${contributions(
        `select 1 as sign, ${SERIES_COLUMNS} from (${points(
          'all',
          `and exists (select from subscription_features sf
                     where sf.tenant_id = p_tenant and sf.subscription_id = s.id and sf.feature_id = p_feature)`,
          PLAN_AND_FEATURE,
        )}) live`,
      )}
    $$`,
    )
    .execute(db);

  // Triggers: record versions, then refresh the customers each statement touched.
  // A subscription created canceled (a past one, recorded late) was active until canceled_at.
  const versionsOf = (rows: string, status = 'status') => `
    insert into subscription_versions as v (tenant_id, subscription_id, valid_from, status, monthly_amount, plan_id)
    select tenant_id, id, now(), ${status}, ${MONTHLY}, plan_id from ${rows}
    on conflict (tenant_id, subscription_id, valid_from) do update
      set status = excluded.status, monthly_amount = excluded.monthly_amount, plan_id = excluded.plan_id`;
  // The customers a statement touched are marked dirty. An update, not "do nothing", on a mark
  // that exists: it locks the mark until this transaction ends, so a compaction cannot take it
  // and miss this transaction's change (it skips locked marks).
  const refreshEach = (pairs: string) => `
    insert into mrr_dirty (tenant_id, user_id) select distinct x.tenant_id, x.user_id from (${pairs}) x
    on conflict (tenant_id, user_id) do update set marked_at = excluded.marked_at`;
  const changed = (cols: string[]) => cols.map((col) => `o.${col} is distinct from n.${col}`).join(' or ');
  const bodies: Record<(typeof OPERATIONS)[number], string> = {
    insert: `
      ${versionsOf('new_rows where test_clock_id is null', "case status when 'canceled' then 'active' else status end")};
      ${refreshEach('select tenant_id, user_id from new_rows where test_clock_id is null')};`,
    update: `
      ${versionsOf(`(select n.* from new_rows n join old_rows o on o.id = n.id
                     where n.test_clock_id is null and (${changed(VERSIONED)})) n`)};
      ${refreshEach(`
        select n.tenant_id, n.user_id from new_rows n join old_rows o on o.id = n.id
        where (n.test_clock_id is null or o.test_clock_id is null) and (${changed(RELEVANT)})
        union all
        select o.tenant_id, o.user_id from new_rows n join old_rows o on o.id = n.id
        where o.test_clock_id is null and o.user_id <> n.user_id`)};`,
    delete: `${refreshEach('select tenant_id, user_id from old_rows where test_clock_id is null')};`,
  };
  for (const op of OPERATIONS) {
    await sql
      .raw(
        `
      create function mrr_subscriptions_${op}() returns trigger language plpgsql as $$
      begin
        ${bodies[op]}
        return null;
      end $$`,
      )
      .execute(db);
    const transitions = {
      insert: 'new table as new_rows',
      update: 'old table as old_rows new table as new_rows',
      delete: 'old table as old_rows',
    }[op];
    await sql
      .raw(
        `create trigger mrr_subscriptions_${op} after ${op} on subscriptions
      referencing ${transitions} for each statement execute function mrr_subscriptions_${op}()`,
      )
      .execute(db);
  }
  // Feature links (a subscription deleted with its links is refreshed by its own trigger).
  for (const op of ['insert', 'delete'] as const) {
    const rows = op === 'insert' ? 'new_rows' : 'old_rows';
    await sql
      .raw(
        `
      create function mrr_subscription_features_${op}() returns trigger language plpgsql as $$
      begin
        ${refreshEach(`select s.tenant_id, s.user_id from ${rows} l
          join subscriptions s on s.tenant_id = l.tenant_id and s.id = l.subscription_id
          where s.test_clock_id is null`)};
        return null;
      end $$`,
      )
      .execute(db);
    await sql
      .raw(
        `create trigger mrr_subscription_features_${op} after ${op} on subscription_features
      referencing ${op === 'insert' ? 'new' : 'old'} table as ${rows}
      for each statement execute function mrr_subscription_features_${op}()`,
      )
      .execute(db);
  }
  // A customer's region (filters use today's).
  await sql
    .raw(
      `
    create function mrr_users_update() returns trigger language plpgsql as $$
    begin
      ${refreshEach('select n.tenant_id, n.id as user_id from new_rows n join old_rows o on o.id = n.id where o.region is distinct from n.region')};
      return null;
    end $$`,
    )
    .execute(db);
  await sql
    .raw(
      `create trigger mrr_users_update after update on users
    referencing old table as old_rows new table as new_rows
    for each statement execute function mrr_users_update()`,
    )
    .execute(db);

  // What exists already.
  await sql`select mrr_rebuild(id) from tenants`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger mrr_users_update on users`.execute(db);
  await sql`drop function mrr_users_update()`.execute(db);
  for (const op of ['insert', 'delete']) {
    await sql.raw(`drop trigger mrr_subscription_features_${op} on subscription_features`).execute(db);
    await sql.raw(`drop function mrr_subscription_features_${op}()`).execute(db);
  }
  for (const op of OPERATIONS) {
    await sql.raw(`drop trigger mrr_subscriptions_${op} on subscriptions`).execute(db);
    await sql.raw(`drop function mrr_subscriptions_${op}()`).execute(db);
  }
  await sql`drop function mrr_live(uuid, uuid, uuid)`.execute(db);
  await sql`drop function mrr_correction(uuid)`.execute(db);
  await sql`drop function mrr_compact(uuid, int)`.execute(db);
  await sql`drop function mrr_expected(uuid)`.execute(db);
  await sql`drop function mrr_rebuild(uuid)`.execute(db);
  await sql`drop function mrr_refresh(uuid, uuid[])`.execute(db);
  await sql`drop function mrr_points_all(uuid)`.execute(db);
  await sql`drop function mrr_points_of(uuid, uuid[])`.execute(db);
  await sql`drop table mrr_dirty`.execute(db);
  await sql`drop table mrr_buckets`.execute(db);
  await sql`drop table mrr_series`.execute(db);
  await sql`drop table subscription_versions`.execute(db);
}
