-- Usage: two billable metrics (API calls, counted; AI tokens, summed by model), charged by the
-- monthly Pro and Business plans, and 5 to 15 events in the current period for a fifth of the
-- live subscriptions on them. Their earlier periods count as invoiced (usage_invoiced_until), as
-- renewals would have left them; totals are computed from the events, as recording them one by
-- one would have.
insert into billable_metrics (code, name, aggregation, field, group_by, created_at, updated_at)
values ('api-calls', 'API calls', 'count', null, null, current_date - 1100, current_date - 1100),
       ('ai-tokens', 'AI tokens', 'sum', 'tokens', 'model', current_date - 1100, current_date - 1100);

update plans p set usage_charges = (
  select jsonb_build_array(
    jsonb_build_object('metric', 'api-calls', 'billable_metric_id', calls.id, 'dimension_value', null,
      'model', 'per_unit', 'amount', '0.001', 'package_size', null, 'tiers', null, 'free_units', '10',
      'minimum_amount', null),
    jsonb_build_object('metric', 'ai-tokens', 'billable_metric_id', tokens.id, 'dimension_value', 'advanced',
      'model', 'package', 'amount', '2.00', 'package_size', 1000, 'tiers', null, 'free_units', '0',
      'minimum_amount', null),
    jsonb_build_object('metric', 'ai-tokens', 'billable_metric_id', tokens.id, 'dimension_value', 'cheap',
      'model', 'package', 'amount', '0.20', 'package_size', 1000, 'tiers', null, 'free_units', '0',
      'minimum_amount', null))
  from billable_metrics calls, billable_metrics tokens
  where calls.tenant_id = p.tenant_id and calls.code = 'api-calls'
    and tokens.tenant_id = p.tenant_id and tokens.code = 'ai-tokens')
where p.tenant_id = current_setting('app.tenant_id')::uuid and p.code in ('pro-monthly', 'business-monthly');

-- The subscriptions on those (monthly) plans, live today, with the start of their current period:
-- the last anniversary of the start date (clamped to shorter months, as src/billing/periods.ts).
-- random() drawn in id order, so that the same seed chooses the same subscriptions, and how many
-- events each gets (drawn here: in the generate_series below, which refers to no column of the row,
-- PostgreSQL would draw once for all of them).
create temporary table seed_usage_subscriptions on commit drop as
select id, user_id, period_start, random() < 0.2 as chosen, 5 + floor(random() * 11)::int as events
from (
  select s.id, s.user_id,
    case when (s.start_date + m.n * interval '1 month')::date > current_date
         then (s.start_date + (m.n - 1) * interval '1 month')::date
         else (s.start_date + m.n * interval '1 month')::date end as period_start
  from subscriptions s
  join plans p on p.tenant_id = s.tenant_id and p.id = s.plan_id and p.usage_charges <> '[]'
  cross join lateral (
    select ((date_part('year', current_date) - date_part('year', s.start_date)) * 12
            + date_part('month', current_date) - date_part('month', s.start_date))::int as n) m
  where s.tenant_id = current_setting('app.tenant_id')::uuid
    and s.status in ('active', 'past_due') and s.end_date is null and s.canceled_at is null
    and s.cancel_at is null and s.start_date <= current_date and s.interval_count = 1
  order by s.id
) live;

update subscriptions s set usage_invoiced_until = u.period_start
from seed_usage_subscriptions u
where s.tenant_id = current_setting('app.tenant_id')::uuid and s.id = u.id;

insert into usage_events (event_id, user_id, subscription_id, billable_metric_id, timestamp, properties, value,
  dimension, counted, period_start, received_at)
select 'seed-' || u.id || '-' || k, u.user_id, u.id, m.id, e.at,
  case when m.code = 'api-calls' then jsonb_build_object('endpoint', '/v1/answers')
       else jsonb_build_object('tokens', e.tokens, 'model', e.model) end,
  case when m.code = 'api-calls' then null else e.tokens::text end,
  case when m.code = 'api-calls' then null else e.model end,
  true, u.period_start, e.at
from seed_usage_subscriptions u
cross join lateral generate_series(1, u.events) k
-- Per event (k is referenced so that each row draws its own values).
cross join lateral (select u.period_start + (random() * (current_date - u.period_start)) * interval '1 day' as at,
                           100 + floor(random() * 4900)::int as tokens,
                           case when random() < 0.3 then 'advanced' else 'cheap' end as model,
                           random() < 0.5 as is_call
                    where k > 0) e
join billable_metrics m on m.tenant_id = current_setting('app.tenant_id')::uuid
  and m.code = case when e.is_call then 'api-calls' else 'ai-tokens' end
where u.chosen
order by e.at;

insert into usage_totals (subscription_id, billable_metric_id, period_start, dimension, events, total)
select subscription_id, billable_metric_id, period_start, dimension, count(*), coalesce(sum(value::numeric), 0)
from usage_events
where tenant_id = current_setting('app.tenant_id')::uuid
group by grouping sets ((subscription_id, billable_metric_id, period_start, dimension),
                        (subscription_id, billable_metric_id, period_start))
-- The api-calls metric has no group_by: only its all-events total.
having grouping(dimension) = 1 or dimension is not null;
