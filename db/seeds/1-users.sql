-- Users of the demo tenant: one per three subscriptions (seed.users), numbered for the next steps.
-- Billing regions by number: 40% Germany (DE), 30% California (US-CA), 10% the United Kingdom (GB,
-- no tax rate configured: untaxed), 20% none. Created 1100 days ago, as the plans were: before
-- their first subscription (at most 1095 days old), as the API would have made them.
insert into users (name, email, region, created_at, updated_at)
select 'Demo User ' || n, 'user' || n || '@demo.example',
       case when n % 10 < 4 then 'DE' when n % 10 < 7 then 'US-CA' when n % 10 = 7 then 'GB' end,
       current_date - 1100, current_date - 1100
from generate_series(1, current_setting('seed.users')::int) as n
