-- Invoices for the past year, for one subscription in forty (a sample: every period of all of
-- them would be millions of rows). Each sampled subscription that is not trialing is invoiced for
-- every period that started in the last twelve whole months and has ended, up to its
-- cancellation, as the API would have invoiced it (src/services/invoices.ts): dated on the
-- period's first day, with the tax rates of the user's region in force that day, each rounded to
-- the cent, half up. Finalized in date order, so numbers run 1, 2, 3, ... without gaps. Most are
-- paid a few days later; a past-due subscription's last invoice is still open; about 1% are
-- uncollectible and 0.5% void. The draws hash what the seed makes the same every time (the
-- user's email, the dates, the price) rather than call random(), whose order of calls would
-- follow the query plan.
with sampled as (
  select s.id, s.user_id, u.email, u.region, s.status, s.plan_id, round(s.plan_cost, 2) as subtotal, s.quantity,
         s.start_date, s.canceled_at, s.price_breakdown->'breakdown' as breakdown,
         s.price_breakdown->>'plan_version' as plan_version,
         (case when s.billing_interval = 'year' then 12 else 1 end) * s.interval_count as step
  from subscriptions s join users u on u.tenant_id = s.tenant_id and u.id = s.user_id
  where s.tenant_id = current_setting('app.tenant_id')::uuid and s.status <> 'trialing'
    and abs(hashtext(u.email || s.start_date || s.plan_cost || s.status) % 40) = 0
), periods as (
  -- From the period before the window (n_from) on; the window and "has ended" filter them below.
  select s.*, (s.start_date + n * s.step * interval '1 month')::date as period_start,
         (s.start_date + (n + 1) * s.step * interval '1 month')::date as period_end,
         (s.start_date + (n + 2) * s.step * interval '1 month')::date as next_period_end
  from sampled s
  cross join lateral (
    select greatest(0, ((date_part('year', w) - date_part('year', s.start_date)) * 12
             + date_part('month', w) - date_part('month', s.start_date))::int / s.step - 1) as n_from
    from (select date_trunc('month', current_date) - interval '12 months' as w) as window_start
  ) as first
  cross join generate_series(first.n_from, first.n_from + 13) as n
), billed as (
  select p.*, (hashtext(p.email || p.start_date || p.subtotal || p.period_start)::bigint + 2147483648)
                / 4294967296.0 as r_status
  from periods p
  where p.period_start >= date_trunc('month', current_date) - interval '12 months'
    and p.period_end <= current_date
    and p.period_start < coalesce(p.canceled_at::date, 'infinity')
), taxed as (
  -- Each rate in force on the invoice date, in the user's region or its country.
  select b.id, b.period_start,
         jsonb_agg(jsonb_build_object('tax_rate_id', r.id, 'code', r.code, 'name', r.name,
           'percentage', r.percentage::text, 'region', r.region, 'taxable_amount', b.subtotal::text,
           'amount', round(b.subtotal * r.percentage / 100, 2)::text) order by r.region, r.code) as taxes,
         sum(round(b.subtotal * r.percentage / 100, 2)) as tax_total
  from billed b
  join tax_rates r
    on r.tenant_id = current_setting('app.tenant_id')::uuid
   and r.region in (b.region, split_part(b.region, '-', 1))
   and r.effective_from <= b.period_start and (r.effective_until is null or r.effective_until > b.period_start)
  group by b.id, b.period_start
), numbered as (
  select b.*, coalesce(t.taxes, '[]') as taxes, coalesce(t.tax_total, 0) as tax_total,
         case when b.r_status < 0.005 then 'void'
              when b.r_status < 0.015 then 'uncollectible'
              when b.status = 'past_due' and b.next_period_end > current_date then 'open'
              else 'paid' end as invoice_status,
         row_number() over (order by b.period_start, b.id) as number
  from billed b left join taxed t using (id, period_start)
), counter as (
  insert into invoice_counters (last_number)
  select coalesce(max(number), 0) from numbered
)
insert into invoices (subscription_id, user_id, status, number, period_start, period_end, invoice_date, region,
  lines, subtotal, taxes, tax_total, total, finalized_at, paid_at, voided_at, uncollectible_at, created_at, updated_at)
select n.id, n.user_id, n.invoice_status, n.number, n.period_start, n.period_end, n.period_start, n.region,
       jsonb_build_array(jsonb_build_object(
         'type', 'subscription', 'period_start', n.period_start, 'period_end', n.period_end, 'usage', null,
         'description', case when n.plan_id is null then 'Subscription, ' || n.period_start || ' to ' || n.period_end
           else pl.name || ' (' || pl.code || ', price version ' || n.plan_version || '), '
                || n.period_start || ' to ' || n.period_end end,
         'amount', n.subtotal::text, 'quantity', n.quantity, 'breakdown', coalesce(n.breakdown, '[]'))),
       n.subtotal, n.taxes, n.tax_total, n.subtotal + n.tax_total,
       n.period_start,
       case when n.invoice_status = 'paid' then n.period_start + (1 + floor(n.r_status * 1000)::int % 10) * interval '1 day' end,
       case when n.invoice_status = 'void' then n.period_start + interval '2 days' end,
       -- A month after the invoice date, but never after its period ended (before today).
       case when n.invoice_status = 'uncollectible' then least(n.period_start + interval '30 days', n.period_end) end,
       n.period_start, n.period_start
from numbered n left join plans pl on pl.tenant_id = current_setting('app.tenant_id')::uuid and pl.id = n.plan_id
