#!/usr/bin/env bash
# A mid-period upgrade on a test clock: January is invoiced, the customer moves from Basic (30.00 a
# month) to Pro (60.00) on January 11, after a preview; February's invoice bills Pro and the
# proration of January's last 21 days. The background worker does the billing (make start runs it).
# Run: KEY=sk_... bash docs/examples/prorations.sh   (BASE defaults to http://localhost:3000)
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

plan() {
  api -X POST "$API/plans" -d "$(jq -n --arg code "$1-$RUN" --arg name "$2" --arg amount "$3" \
    '{code: $code, name: $name, interval: "month", price: {model: "flat", amount: $amount}}')" | jq -r .id
}
basic=$(plan basic Basic 30.00)
pro=$(plan pro Pro 60.00)
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada", email: $email}')" | jq -r .id)

echo '== On Basic from 2026-01-01, on a clock; on January 11 January is invoiced (in advance)'
clock_id=$(api -X POST "$API/test-clocks" -d '{"name": "upgrade", "frozen_time": "2026-01-01T00:00:00Z"}' |
  jq -r .id)
sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" --arg plan "$basic" \
  --arg clock "$clock_id" '{user_id: $user, plan_id: $plan, status: "active", start_date: "2026-01-01",
  test_clock_id: $clock}')" | jq -r .id)
advance 2026-01-11T09:00:00Z
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" |
  jq -c '.data[] | {period_start, period_end, total}'

echo '== Preview the upgrade to Pro: what it would bill, writing nothing'
api -X POST "$API/subscriptions/$sub_id/preview-change" -d "{\"plan_id\": \"$pro\"}" |
  jq '{proration_date, items: [.items[] | {kind, amount, description}], invoice, plan_cost: .subscription.plan_cost}'

echo '== Make it: the same two items wait for the next invoice'
api -X PATCH "$API/subscriptions/$sub_id" -d "{\"plan_id\": \"$pro\"}" | jq -c '{plan_cost, billed_until}'
api "$API/subscriptions/$sub_id/invoice-items?pending=true" | jq -c '[.data[] | .amount] | sort'

echo "== February 1: February's invoice bills Pro and the proration"
advance 2026-02-01T09:00:00Z
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" --data-urlencode period=2026-02-01 |
  jq '.data[0] | {period_start, lines: [.lines[] | {type, amount, period_start, period_end}], subtotal, total}'

echo '== A downgrade back to Basic, scheduled for the end of the period: nothing to prorate'
api -X POST "$API/subscriptions/$sub_id/scheduled-change" -d "{\"plan_id\": \"$basic\"}" |
  jq -c '{plan_cost, scheduled_change: (.scheduled_change | {plan_id: (.plan_id != null), effective_date})}'
advance 2026-03-01T09:00:00Z
api "$API/subscriptions/$sub_id" | jq -c '{plan_cost, scheduled_change}'
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" --data-urlencode period=2026-03-01 |
  jq -c '.data[0] | {period_start, lines: [.lines[] | {type, amount}], total}'
