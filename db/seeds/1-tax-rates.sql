-- Tax rates in two regions: German VAT at 19%, and a California sales tax that went from 7.25% to
-- 7.50% on the first day of the month six months ago (a fictional change, to show history: the
-- invoices before it keep 7.25%, the tax report shows both). GB has no rate: its users are untaxed.
insert into tax_rates (code, name, percentage, region, effective_from, effective_until)
values
  ('VAT', 'Umsatzsteuer', 19.0000, 'DE', date '2021-01-01', null),
  ('SALES', 'California sales tax', 7.2500, 'US-CA', date '2017-04-01',
   date_trunc('month', current_date - interval '6 months')::date),
  ('SALES', 'California sales tax', 7.5000, 'US-CA',
   date_trunc('month', current_date - interval '6 months')::date, null)
