#!/usr/bin/env bash
# Billing: a tiered plan, a quote, a tax rate, a subscription priced by the server, its invoice,
# finalized and voided, and the taxes report. Needs an admin key: the catalog (plans, tax rates),
# voiding and the report are beyond an editor's.
# Run: KEY=sk_... bash docs/examples/billing.sh   (BASE defaults to http://localhost:3000)
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
: "${KEY:?set KEY to an API key: make tenant NAME=\"Acme Inc.\" prints one}"
RUN=${RUN:-$(date +%s)-$RANDOM} # this run's names and emails are its own: works on a tenant with data
API=$BASE/api/v1

# curl with the key and JSON. Prints the body of a 2xx or 3xx answer; any other answer is printed
# on stderr with its status, and fails, which stops the script (set -e).
api() {
  local out status body
  out=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@")
  status=${out##*$'\n'} body=${out%$'\n'*}
  if [[ $status != [23]?? ]]; then
    printf 'HTTP %s from curl %s\n%s\n' "$status" "$*" "$body" >&2
    return 1
  fi
  printf '%s\n' "$body"
}

echo '== 1. A plan: a unique code, an interval (month or year; interval_count 1-36), a price model.'
echo '   Tiered (graduated): each unit at the price of the tier it falls in; the last tier is open.'
plan=$(api -X POST "$API/plans" -d "$(jq -n --arg code "team-$RUN" '{code: $code, name: "Team",
  interval: "month", price: {model: "tiered", tiers: [
    {up_to: 5,    unit_amount: "12.00", flat_amount: "0"},
    {up_to: 20,   unit_amount: "10.00", flat_amount: "0"},
    {up_to: null, unit_amount: "8.00",  flat_amount: "0"}]}}')")
plan_id=$(jq -r .id <<<"$plan")
jq -c '{name, interval, price_version}' <<<"$plan"

echo '== 2. What 7 seats cost, with the breakdown; creates nothing'
api -X POST "$API/plans/$plan_id/quote" -d '{"quantity": 7}' | jq -c '{amount}, .breakdown[]'

echo '== 3. German VAT (19% since 2021), unless the tenant has it already, and a customer in Germany'
echo '   (a region is an ISO 3166-1 country, "DE", or subdivision, "US-CA")'
vat_id=$(api -G "$API/tax-rates" --data-urlencode code=VAT --data-urlencode region=DE \
  --data-urlencode on=2026-02-28 | jq -r '.data[0].id // empty')
if [[ -z $vat_id ]]; then
  vat_id=$(api -X POST "$API/tax-rates" -d '{"code": "VAT", "name": "Umsatzsteuer", "percentage": "19",
    "region": "DE", "effective_from": "2021-01-01"}' | jq -r .id)
fi
api "$API/tax-rates/$vat_id" | jq -c '{code, percentage, region, effective_from, effective_until}'
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada", email: $email, region: "DE"}')" | jq -r .id)

echo '== 4. A subscription on the plan, for the first half of 2026: the server computes plan_cost and'
echo '   keeps the snapshot that explains it (price_breakdown). Sending plan_cost as well is 422.'
sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" --arg plan "$plan_id" \
  '{user_id: $user, plan_id: $plan, quantity: 7, status: "active",
    start_date: "2026-01-31", end_date: "2026-06-30"}')" | jq -r .id)
api "$API/subscriptions/$sub_id" | jq -c '{plan_cost, plan_version, quantity}'

echo '== 5. The invoice of the period containing a date (default: the current period). Periods are'
echo '   anchored on start_date and clamped at month ends. Asking again answers the same invoice (200).'
invoice=$(api -X POST "$API/subscriptions/$sub_id/invoices" -d '{"date": "2026-02-28"}')
invoice_id=$(jq -r .id <<<"$invoice")
jq '{status, number, period_start, period_end, lines: [.lines[] | {description, quantity, amount}],
  subtotal, taxes: [.taxes[] | {code, percentage, region, taxable_amount, amount}], tax_total, total}' \
  <<<"$invoice"

echo '== 6. Finalize: the tenant'"'"'s next invoice number; from now on nothing about it changes'
api -X POST "$API/invoices/$invoice_id/finalize" | jq -c '{status, number}'
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" --data-urlencode status=open |
  jq -c '[.data[] | {status, period_start, total}]'

echo '== 7. Taxes per month and code, from the issued invoices'"'"' snapshots (analytics scope)'
api -G "$API/reports/taxes" --data-urlencode from=2026-01 --data-urlencode to=2026-03 |
  jq -c '.months[] | {month, taxes: [.taxes[] | select(.code == "VAT" and .region == "DE")]}'

echo '== 8. Void it: it keeps its number, and leaves the taxes report'
api -X POST "$API/invoices/$invoice_id/void" | jq -c '{status, number}'
