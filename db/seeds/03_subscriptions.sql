-- seed.rows subscriptions, inserted in start_date order so the BRIN index on start_date stays
-- tight. Every user gets one; the rest go mostly to a minority of users (random()^3 skews low
-- numbers), so some users hold many. Start dates span three years with growth (more recent is
-- denser), statuses are mostly active, and prices cluster on a few price points.
with numbered_users as (
  select id, substring(email from '^user([0-9]+)@')::int as n from users
  where tenant_id = current_setting('app.tenant_id')::uuid
), draws as (
  select g, random() as r_user, random() as r_date, random() as r_status, random() as r_price, random() as r_discount
  from generate_series(1, current_setting('seed.rows')::int) as g
), rows as (
  select
    g,
    case when g <= current_setting('seed.users')::int then g
         else 1 + floor(current_setting('seed.users')::int * r_user ^ 3)::int end as user_n,
    current_date - floor(1095 * (1 - sqrt(r_date)))::int as start_date,
    case when r_status < 0.70 then 'active' when r_status < 0.80 then 'trialing'
         when r_status < 0.85 then 'past_due' else 'canceled' end as status,
    round((array[9.99, 19.99, 29.99, 49.99, 99.99, 199.00])[1 + floor(r_price ^ 1.5 * 6)::int]
          * case when r_discount < 0.2 then 0.9 else 1 end, 2) as plan_cost,
    case when r_discount > 0.85 then 'year' else 'month' end as billing_interval
  from draws
)
insert into subscriptions (user_id, status, plan_cost, billing_interval, start_date, canceled_at, created_at, updated_at)
select u.id, r.status, r.plan_cost, r.billing_interval, r.start_date,
       case when r.status = 'canceled' then r.start_date + interval '30 days' end,
       r.start_date, r.start_date
from rows r join numbered_users u on u.n = r.user_n
order by r.start_date, r.g
