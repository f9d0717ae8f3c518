#!/usr/bin/env bash
# Subscription metrics: the worked example of docs/metrics.md, built and read back. Three customers
# on custom prices (so an admin key), linked to a feature of their own, which the metrics filter on:
# the numbers are this example's alone, whatever else the tenant holds. Needs an admin key.
# Run: KEY=sk_... bash docs/examples/metrics.sh   (BASE defaults to http://localhost:3000)
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

feature_id=$(api -X POST "$API/features" -d "$(jq -n --arg name "worked-example-$RUN" '{name: $name}')" |
  jq -r .id)
customer() {
  api -X POST "$API/users" -d "$(jq -n --arg name "$1" --arg email "$1-$RUN@example.com" \
    '{name: $name, email: $email}')" | jq -r .id
}
# subscribe <user> <plan_cost> <billing_interval> <start_date> [end_date]
subscribe() {
  local sub_id
  sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$1" --arg cost "$2" --arg interval "$3" \
    --arg start "$4" --arg until "${5:-}" '{user_id: $user, status: "active", plan_cost: $cost,
    billing_interval: $interval, start_date: $start, end_date: (if $until == "" then null else $until end)}')" |
    jq -r .id)
  api -X PUT "$API/subscriptions/$sub_id/features/$feature_id" >/dev/null
}

# Ada: 30.00 a month from 2026-01-10, and 20.00 more from 2026-03-15, both to 2026-05-19;
# Bob: 1,200.00 a year from 2026-02-01 (100.00 a month); Cy: 40.00 a month from 2026-04-05.
ada=$(customer ada) bob=$(customer bob) cy=$(customer cy)
subscribe "$ada" 30.00 month 2026-01-10 2026-05-19
subscribe "$ada" 20.00 month 2026-03-15 2026-05-19
subscribe "$bob" 1200.00 year 2026-02-01
subscribe "$cy" 40.00 month 2026-04-05

echo '== MRR per month, with customers, ARPA and the movements (months are UTC, YYYY-MM)'
api -G "$API/metrics/mrr" --data-urlencode from=2026-01 --data-urlencode to=2026-06 \
  --data-urlencode "feature_id=$feature_id" |
  jq -c '.months[] | {month, starting_mrr, new: .movements.new.amount,
    expansion: .movements.expansion.amount, churn: .movements.churn.amount, mrr, arr, customers, arpa}'

echo '== Churn and retention per month'
api -G "$API/metrics/churn" --data-urlencode from=2026-04 --data-urlencode to=2026-06 \
  --data-urlencode "feature_id=$feature_id" |
  jq -c '.months[] | {month, customer_churn_rate, gross_mrr_churn_rate, net_revenue_retention, ltv}'
