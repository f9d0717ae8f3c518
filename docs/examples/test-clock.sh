#!/usr/bin/env bash
# A year of billing in seconds: a test clock, a card subscription that follows it, and the clock
# advanced by a year. The background worker does the billing (make start runs it; JOBS=off does not).
# Run: KEY=sk_... bash docs/examples/test-clock.sh   (BASE defaults to http://localhost:3000)
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

# A monthly plan and a customer.
plan_id=$(api -X POST "$API/plans" -d "$(jq -n --arg code "basic-$RUN" '{code: $code, name: "Basic",
  interval: "month", price: {model: "flat", amount: "15.00"}}')" | jq -r .id)
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "grace-$RUN@example.com" '{name: "Grace", email: $email}')" | jq -r .id)

echo '== A clock frozen at 2026-01-01, and a subscription that follows it, paid by card'
clock=$(api -X POST "$API/test-clocks" -d '{"name": "a year", "frozen_time": "2026-01-01T00:00:00Z"}')
clock_id=$(jq -r .id <<<"$clock")
jq -c '{frozen_time, status}' <<<"$clock"
sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" --arg plan "$plan_id" \
  --arg clock "$clock_id" '{user_id: $user, plan_id: $plan, status: "active", start_date: "2026-01-01",
  test_clock_id: $clock, payment_method: "pm_card_visa", payment_rail: "card"}')" | jq -r .id)

echo '== Advance it to the end of the year: 202, advancing; the worker bills each month on its day'
api -X POST "$API/test-clocks/$clock_id/advance" -d '{"frozen_time": "2026-12-31T12:00:00Z"}' |
  jq -c '{frozen_time, status}'

echo '== Wait until the clock is ready again (every step due by then is done)'
for _ in $(seq 120); do
  status=$(api "$API/test-clocks/$clock_id" | jq -r .status)
  [[ $status == ready ]] && break
  sleep 0.5
done
[[ $status == ready ]] || { echo "the clock is still $status after a minute: is the worker running?" >&2; exit 1; }
echo "$status"

echo '== Its invoices, every page (next_cursor is null on the last): one a month, each paid'
cursor=''
invoices='[]'
while :; do
  page=$(api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" --data-urlencode limit=100 \
    ${cursor:+--data-urlencode "cursor=$cursor"})
  invoices=$(jq -c --argjson page "$page" '. + $page.data' <<<"$invoices")
  cursor=$(jq -r '.next_cursor // empty' <<<"$page")
  [[ -n $cursor ]] || break
done
jq -c 'length as $n | {invoices: $n, by_status: (group_by(.status) | map({(.[0].status): length}) | add),
  first: (min_by(.period_start) | .period_start), last: (max_by(.period_start) | .period_start)}' <<<"$invoices"
