-- Plans: six flat prices, each monthly and yearly (ten months' price), and "team-seats", priced per
-- seat in graduated tiers. All exist since before the first seeded subscription. The price of
-- "standard-monthly" went up 180 days ago: version 1 (19.99) still prices the subscriptions made
-- before, version 2 (21.99) the newer ones.
with points (code, name, amount, rank) as (
  values ('basic', 'Basic', 9.99, 1), ('standard', 'Standard', 19.99, 2), ('plus', 'Plus', 29.99, 3),
         ('pro', 'Pro', 49.99, 4), ('business', 'Business', 99.99, 5), ('enterprise', 'Enterprise', 199.00, 6)
), wanted (code, name, interval, price_model, amount, tiers, rank) as (
  select code || '-monthly', name || ' (monthly)', 'month', 'flat', amount, null::jsonb, rank from points
  union all
  select code || '-yearly', name || ' (yearly)', 'year', 'flat', amount * 10, null, 6 + rank from points
  union all
  select 'team-seats', 'Team (per seat)', 'month', 'tiered', null, '[
    {"up_to": 5, "unit_amount": "12.00", "flat_amount": "0.00"},
    {"up_to": 20, "unit_amount": "10.00", "flat_amount": "0.00"},
    {"up_to": null, "unit_amount": "8.00", "flat_amount": "0.00"}]'::jsonb, 13
), made as (
  insert into plans (code, name, interval, current_version, created_at, updated_at)
  select code, name, interval, case when code = 'standard-monthly' then 2 else 1 end,
         current_date - 1100 + rank * interval '1 minute', current_date - 1100 + rank * interval '1 minute'
  from wanted
  order by rank
  returning id, code, created_at
)
insert into plan_versions (plan_id, number, price_model, amount, tiers, created_at)
select made.id, 1, w.price_model, w.amount, w.tiers, made.created_at
from made join wanted w using (code)
union all
select made.id, 2, 'flat', 21.99, null, current_date - 180
from made where code = 'standard-monthly'
