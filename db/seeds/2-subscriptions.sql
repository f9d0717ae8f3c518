-- seed.rows subscriptions, inserted in start_date order so the BRIN index on start_date stays
-- tight. Every user gets one; the rest go mostly to a minority of users (random()^3 skews low
-- numbers), so some users hold many. Start dates span three years with growth (more recent is
-- denser), statuses are mostly active. Most subscriptions are on a flat plan (six price points,
-- cheaper ones more common; 13% yearly); 10% are on "team-seats" with 1 to 41 seats; 15% are
-- custom deals without a plan, at 10% off a price point. Plan subscriptions are priced as the API
-- prices them: by the plan version in force on their start date, with the same breakdown snapshot.
with numbered_users as (
  select id, substring(email from '^user([0-9]+)@')::int as n from users
  where tenant_id = current_setting('app.tenant_id')::uuid
), versions as (
  select p.id as plan_id, p.code, p.interval, v.id as version_id, v.number, v.price_model, v.amount, v.tiers,
         v.created_at::date as valid_from,
         coalesce(lead(v.created_at::date) over (partition by p.id order by v.number), 'infinity') as valid_until
  from plans p join plan_versions v on v.tenant_id = p.tenant_id and v.plan_id = p.id
  where p.tenant_id = current_setting('app.tenant_id')::uuid
), tiers as (
  select v.version_id, t.i::int as tier, (t.tier->>'up_to')::int as up_to,
         (t.tier->>'unit_amount')::numeric as unit_amount, (t.tier->>'flat_amount')::numeric as flat_amount,
         coalesce(lag((t.tier->>'up_to')::int) over (partition by v.version_id order by t.i), 0) as below
  from versions v cross join jsonb_array_elements(v.tiers) with ordinality as t (tier, i)
  where v.price_model = 'tiered'
), quotes as (
  -- What each version charges for each quantity seeded, and the breakdown lines (as src/billing/pricing.ts).
  select version_id, 1 as quantity, round(amount, 2) as amount,
         jsonb_build_array(jsonb_build_object('tier', null, 'quantity', 0, 'unit_amount', '0.0000',
           'flat_amount', amount::numeric(14, 4)::text, 'amount', amount::numeric(14, 4)::text)) as breakdown
  from versions where price_model = 'flat'
  union all
  select t.version_id, q, round(sum(u.units * t.unit_amount + t.flat_amount), 2),
         jsonb_agg(jsonb_build_object('tier', t.tier, 'quantity', u.units,
           'unit_amount', t.unit_amount::numeric(14, 4)::text, 'flat_amount', t.flat_amount::numeric(14, 4)::text,
           'amount', (u.units * t.unit_amount + t.flat_amount)::numeric(14, 4)::text) order by t.tier)
  from tiers t cross join generate_series(1, 41) as q
  cross join lateral (select coalesce(least(q, t.up_to), q) - t.below as units) as u
  where u.units > 0
  group by t.version_id, q
), priced as (
  select v.*, q.quantity, q.amount as plan_cost,
         jsonb_build_object('plan_id', v.plan_id, 'plan_version', v.number,
           'price', jsonb_build_object('model', v.price_model,
             'amount', regexp_replace(v.amount::numeric(14, 4)::text, '00$', ''), 'tiers', v.tiers),
           'quantity', q.quantity, 'amount', q.amount::text, 'breakdown', q.breakdown) as snapshot
  from versions v join quotes q using (version_id)
), draws as (
  select g, random() as r_user, random() as r_date, random() as r_status, random() as r_price,
         random() as r_kind, random() as r_seats
  from generate_series(1, current_setting('seed.rows')::int) as g
), rows as (
  select
    g,
    case when g <= current_setting('seed.users')::int then g
         else 1 + floor(current_setting('seed.users')::int * r_user ^ 3)::int end as user_n,
    current_date - floor(1095 * (1 - sqrt(r_date)))::int as start_date,
    case when r_status < 0.70 then 'active' when r_status < 0.80 then 'trialing'
         when r_status < 0.85 then 'past_due' else 'canceled' end as status,
    1 + floor(r_price ^ 1.5 * 6)::int as point,
    case when r_kind < 0.15 then 'custom' when r_kind < 0.25 then 'seats' else 'flat' end as kind,
    case when r_kind > 0.87 then 'year' else 'month' end as billing_interval,
    case when r_kind >= 0.15 and r_kind < 0.25 then 1 + floor(r_seats ^ 2 * 41)::int else 1 end as quantity
  from draws
)
insert into subscriptions (user_id, status, plan_cost, billing_interval, start_date, canceled_at, created_at,
  updated_at, plan_id, plan_version_id, quantity, price_breakdown)
select u.id, r.status,
       coalesce(p.plan_cost, round((array[9.99, 19.99, 29.99, 49.99, 99.99, 199.00])[r.point]
         * case when r.billing_interval = 'year' then 9 else 0.9 end, 2)),
       case when r.kind = 'seats' then 'month' else r.billing_interval end,
       r.start_date,
       -- 30 days after the start, or today for the younger ones: never in the future.
       case when r.status = 'canceled' then r.start_date + least(30, current_date - r.start_date) * interval '1 day' end,
       r.start_date, r.start_date, p.plan_id, p.version_id, r.quantity, p.snapshot
from rows r
join numbered_users u on u.n = r.user_n
left join priced p
  on r.kind <> 'custom'
 and p.code = case when r.kind = 'seats' then 'team-seats'
                   else (array['basic', 'standard', 'plus', 'pro', 'business', 'enterprise'])[r.point]
                        || case when r.billing_interval = 'year' then '-yearly' else '-monthly' end end
 and p.quantity = r.quantity
 and r.start_date >= p.valid_from and r.start_date < p.valid_until
order by r.start_date, r.g
