#!/usr/bin/env bash
# Usage-based billing: a metric, a plan that charges it, events recorded exactly once, the usage
# now, and the month's usage invoiced in arrears when a test clock moves into the next month.
# Run: KEY=sk_... bash docs/examples/usage.sh   (BASE defaults to http://localhost:3000)
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

echo '== A metric: the tokens an AI request used, split by model'
metric=$(api -X POST "$API/billable-metrics" -d "$(jq -n --arg code "ai-tokens-$RUN" '{code: $code,
  name: "AI tokens", aggregation: "sum", field: "tokens", group_by: "model"}')")
code=$(jq -r .code <<<"$metric")
jq -c '{aggregation, field, group_by}' <<<"$metric"

echo '== A plan: 20.00 a month, plus advanced tokens at 0.002 each and cheap ones at 1.00 per 1,000'
plan_id=$(api -X POST "$API/plans" -d "$(jq -n --arg code "ai-$RUN" --arg metric "$code" '{code: $code,
  name: "AI", interval: "month", price: {model: "flat", amount: "20.00"}, usage_charges: [
    {metric: $metric, dimension_value: "advanced", model: "per_unit", amount: "0.002"},
    {metric: $metric, dimension_value: "cheap", model: "package", amount: "1.00", package_size: 1000,
     free_units: "500"}]}')" | jq -r .id)

echo '== A customer on it, following a test clock frozen at 2026-01-10'
clock_id=$(api -X POST "$API/test-clocks" -d '{"name": "usage", "frozen_time": "2026-01-10T00:00:00Z"}' | jq -r .id)
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada", email: $email}')" | jq -r .id)
sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" --arg plan "$plan_id" \
  --arg clock "$clock_id" '{user_id: $user, plan_id: $plan, status: "active", start_date: "2026-01-01",
  test_clock_id: $clock}')" | jq -r .id)

echo '== Three events in one batch; the last repeats the first event_id, so it counts once'
event() { jq -nc --arg id "$1-$RUN" --arg user "$user_id" --arg metric "$code" --arg at "$2" \
  --argjson tokens "$3" --arg model "$4" \
  '{event_id: $id, user_id: $user, metric: $metric, timestamp: $at, properties: {tokens: $tokens, model: $model}}'; }
api -X POST "$API/usage-events/batch" -d "$(jq -n --argjson a "$(event req-1 2026-01-02T09:00:00Z 1200 advanced)" \
  --argjson b "$(event req-2 2026-01-03T10:30:00Z 2600 cheap)" \
  --argjson c "$(event req-1 2026-01-02T09:00:00Z 1200 advanced)" '{events: [$a, $b, $c]}')" |
  jq -c '{created, duplicates, statuses: [.data[].status]}'

echo '== Sent again a while later (a retry): 200 and the original event, counted once'
curl -sS -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -X POST "$API/usage-events" -d "$(event req-1 2026-01-02T09:00:00Z 1200 advanced)"

echo '== The usage now: exact, including the events just committed'
api "$API/subscriptions/$sub_id/usage" |
  jq -c '{period_start, period_end, invoiced, amount}, (.charges[] | {dimension_value, quantity, billable_quantity, amount})'

echo '== The clock moves into February; the worker invoices February, with January usage'
api -X POST "$API/test-clocks/$clock_id/advance" -d '{"frozen_time": "2026-02-02T00:00:00Z"}' >/dev/null
for _ in $(seq 120); do
  status=$(api "$API/test-clocks/$clock_id" | jq -r .status)
  [[ $status == ready ]] && break
  sleep 0.5
done
[[ $status == ready ]] || { echo "the clock is still $status after a minute: is the worker running?" >&2; exit 1; }
api -G "$API/invoices" --data-urlencode "subscription_id=$sub_id" |
  jq -c '.data[] | select(.period_start == "2026-02-01") | {subtotal}, (.lines[] | {type, period_start, amount, description})'

echo '== A January event arriving now is refused: that usage is invoiced'
curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -X POST "$API/usage-events" \
  -d "$(event late 2026-01-31T23:00:00Z 10 cheap)" | jq -c '{status, errors}'
