-- Users of the demo tenant: one per three subscriptions (seed.users), numbered for the next steps.
insert into users (name, email, created_at, updated_at)
select 'Demo User ' || n, 'user' || n || '@demo.example', now(), now()
from generate_series(1, current_setting('seed.users')::int) as n
