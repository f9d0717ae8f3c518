#!/usr/bin/env bash
# Usage margins: events carry what serving them cost; once their month is invoiced, the report
# compares that cost with what the usage was billed, per model and per customer, and names the
# customers who cost more than they pay. A month not invoiced yet is unbilled cost, apart.
# Run: KEY=sk_... bash docs/examples/usage-margin.sh   (BASE defaults to http://localhost:3000)
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

echo '== AI tokens by model, billed at 0.002 (advanced) and 0.0002 (cheap) a token'
code=$(api -X POST "$API/billable-metrics" -d "$(jq -n --arg code "ai-tokens-$RUN" '{code: $code,
  name: "AI tokens", aggregation: "sum", field: "tokens", group_by: "model"}')" | jq -r .code)
plan_id=$(api -X POST "$API/plans" -d "$(jq -n --arg code "ai-$RUN" --arg metric "$code" '{code: $code,
  name: "AI", interval: "month", price: {model: "flat", amount: "20.00"}, usage_charges: [
    {metric: $metric, dimension_value: "advanced", model: "per_unit", amount: "0.002"},
    {metric: $metric, dimension_value: "cheap", model: "per_unit", amount: "0.0002"}]}')" | jq -r .id)

echo '== Ada and Bob on it since 2026-01-01, following a test clock frozen at 2026-01-10'
clock_id=$(api -X POST "$API/test-clocks" -d '{"name": "margins", "frozen_time": "2026-01-10T00:00:00Z"}' | jq -r .id)
customer() {
  local user_id
  user_id=$(api -X POST "$API/users" -d "$(jq -n --arg name "$1" --arg email "$1-$RUN@example.com" \
    '{name: $name, email: $email}')" | jq -r .id)
  api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" --arg plan "$plan_id" --arg clock "$clock_id" \
    '{user_id: $user, plan_id: $plan, status: "active", start_date: "2026-01-01", test_clock_id: $clock}')" >/dev/null
  echo "$user_id"
}
ada=$(customer Ada)
bob=$(customer Bob)

echo "== January's events, each with its cost (Bob's advanced tokens cost more than they bill)"
event() { jq -nc --arg id "$1-$RUN" --arg user "$2" --arg metric "$code" --arg at "$3" --argjson tokens "$4" \
  --arg model "$5" --arg cost "$6" \
  '{event_id: $id, user_id: $user, metric: $metric, timestamp: $at, properties: {tokens: $tokens, model: $model}, cost: $cost}'; }
api -X POST "$API/usage-events/batch" -d "$(jq -n \
  --argjson a "$(event a1 "$ada" 2026-01-03T10:00:00Z 2000 advanced 1.20)" \
  --argjson b "$(event a2 "$ada" 2026-01-04T10:00:00Z 10000 cheap 0.50)" \
  --argjson c "$(event b1 "$bob" 2026-01-05T10:00:00Z 3000 advanced 9.00)" \
  --argjson d "$(event b2 "$bob" 2026-01-06T10:00:00Z 5000 cheap 0.25)" '{events: [$a, $b, $c, $d]}')" |
  jq -c '{created}'

echo '== The clock moves into February; the worker invoices it, with January usage'
api -X POST "$API/test-clocks/$clock_id/advance" -d '{"frozen_time": "2026-02-02T00:00:00Z"}' >/dev/null
for _ in $(seq 120); do
  status=$(api "$API/test-clocks/$clock_id" | jq -r .status)
  [[ $status == ready ]] && break
  sleep 0.5
done
[[ $status == ready ]] || { echo "the clock is still $status after a minute: is the worker running?" >&2; exit 1; }

echo '== A February event: its month is not invoiced yet'
api -X POST "$API/usage-events" -d "$(event a3 "$ada" 2026-02-01T12:00:00Z 1000 advanced 0.60)" | jq -c '{counted}'

echo '== January and February, per model: revenue, cost, margin; February is unbilled cost'
api -G "$API/reports/usage-margin" --data-urlencode from=2026-01-01 --data-urlencode to=2026-03-01 \
  --data-urlencode group_by=dimension |
  jq -c '{totals}, (.rows[] | {metric: .metric.code, dimension_value, revenue, cost, margin, margin_percent, unbilled_cost})'

echo '== The loss leaders: customers whose cost exceeds their revenue'
api -G "$API/reports/usage-margin" --data-urlencode from=2026-01-01 --data-urlencode to=2026-03-01 |
  jq -c '.loss_leader_count, (.loss_leaders[] | {name: .user.name, revenue, cost, margin, margin_percent})'
