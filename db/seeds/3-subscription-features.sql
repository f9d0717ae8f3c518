-- One to five distinct features per subscription: consecutive features from a random start
-- (mod 20), in the table's physical order so that the same seed links the same features.
with picks as (
  select id, floor(random() * 20)::int as first, 1 + floor(random() * 5)::int as how_many
  from subscriptions where tenant_id = current_setting('app.tenant_id')::uuid
), numbered_features as (
  select id, row_number() over (order by name)::int - 1 as n from features
  where tenant_id = current_setting('app.tenant_id')::uuid
)
insert into subscription_features (subscription_id, feature_id)
select p.id, f.id
from picks p
cross join generate_series(0, 4) as k
join numbered_features f on f.n = (p.first + k) % 20
where k < p.how_many
