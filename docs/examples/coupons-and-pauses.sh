#!/usr/bin/env bash
# A coupon and a pause on a test clock: 25% off Basic (30.00 a month) for its first 3 months, then
# a pause from May 11 to July 1. The background worker does the billing (make start runs it).
# Run: KEY=sk_... bash docs/examples/coupons-and-pauses.sh   (BASE defaults to http://localhost:3000)
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
: "${KEY:?set KEY to an admin API key: make tenant NAME=\"Acme Inc.\" prints one}"
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

# Advances the clock and waits until the worker has done every step due by then.
advance() {
  api -X POST "$API/test-clocks/$clock_id/advance" -d "{\"frozen_time\": \"$1\"}" >/dev/null
  for _ in $(seq 120); do
    [[ $(api "$API/test-clocks/$clock_id" | jq -r .status) == ready ]] && return 0
    sleep 0.5
  done
  echo "the clock is still advancing after a minute: is the worker running?" >&2
  exit 1
}

basic=$(api -X POST "$API/plans" -d "$(jq -n --arg code "basic-$RUN" \
  '{code: $code, name: "Basic", interval: "month", price: {model: "flat", amount: "30.00"}}')" | jq -r .id)
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada", email: $email}')" | jq -r .id)

echo '== A coupon: 25% off for 3 months (its terms are final)'
coupon_id=$(api -X POST "$API/coupons" -d '{"name": "Launch", "percent_off": "25", "duration": "repeating",
  "duration_in_months": 3}' | jq -r .id)
api "$API/coupons/$coupon_id" | jq -c '{name, percent_off, duration, duration_in_months, times_redeemed, valid}'

echo '== On Basic from 2026-01-01 with the coupon, on a clock: the discount runs to April 1'
clock_id=$(api -X POST "$API/test-clocks" -d '{"name": "coupon and pause", "frozen_time": "2026-01-01T00:00:00Z"}' |
  jq -r .id)
sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" --arg plan "$basic" \
  --arg clock "$clock_id" --arg coupon "$coupon_id" '{user_id: $user, plan_id: $plan, status: "active",
  start_date: "2026-01-01", test_clock_id: $clock, coupon_id: $coupon}')" | jq -r .id)
api "$API/subscriptions/$sub_id" | jq -c '.discount | {percent_off, duration, start, "end": .end}'

echo '== May 11: January to March were discounted (a line before tax), April was not'
advance 2026-05-11T09:00:00Z
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" |
  jq -c '.data | reverse | .[] | {period_start, lines: [.lines[] | {type, amount}], subtotal}'
api "$API/subscriptions/$sub_id" | jq -c '{discount}'

echo '== Paused until July 1: the unused days of May are credited'
api -X POST "$API/subscriptions/$sub_id/pause" -d '{"resumes_at": "2026-07-01"}' |
  jq -c '{status, paused_at, resumes_at}'
api "$API/subscriptions/$sub_id/invoice-items?pending=true" | jq -c '.data[] | {kind, amount, period_start, period_end}'

echo '== July 2: June was not invoiced; July was, with the credit'
advance 2026-07-02T09:00:00Z
api "$API/subscriptions/$sub_id" | jq -c '{status, paused_at, billed_until}'
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" |
  jq -c '.data | reverse | .[] | {period_start, subtotal}'
