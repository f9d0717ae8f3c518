#!/usr/bin/env bash
# The core resources: users, features, subscriptions and the links between them; filters, paging,
# embedding, cancelling, and a subscription's history.
# Run: KEY=sk_... bash docs/examples/api-tour.sh   (BASE defaults to http://localhost:3000)
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

echo '== A user, a feature, and three subscriptions of the user'
# Emails are unique in a tenant (compared case-insensitively); feature names too, as written (exact match).
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada Lovelace", email: $email}')" | jq -r .id)
feature_id=$(api -X POST "$API/features" \
  -d "$(jq -n --arg name "priority-support-$RUN" '{name: $name, description: "Answers within one business hour."}')" |
  jq -r .id)
# plan_cost is a decimal string, start_date a calendar date; billing_interval is month (the
# default) or year. A custom plan_cost (no plan_id) needs an admin key.
for start in 2026-09-01 2026-10-01 2026-11-01; do
  body=$(jq -n --arg user "$user_id" --arg start "$start" \
    '{user_id: $user, status: "active", plan_cost: "49.99", start_date: $start}')
  sub_id=$(api -X POST "$API/subscriptions" -d "$body" | jq -r .id)
done
api "$API/subscriptions/$sub_id" | jq -c '{status, plan_cost, start_date, billing_interval}'

echo '== Link the feature (idempotent: 201 when linked, 200 when it already was)'
for _ in 1 2; do
  curl -sS -o /dev/null -w '%{http_code}\n' -X PUT "$API/subscriptions/$sub_id/features/$feature_id" \
    -H "Authorization: Bearer $KEY"
done

echo '== Filters combine; repeat status for several; -G --data-urlencode encodes each value'
api -G "$API/subscriptions" --data-urlencode status=active --data-urlencode status=trialing \
  --data-urlencode "user_id=$user_id" --data-urlencode start_date_gte=2026-10-01 \
  --data-urlencode start_date_lte=2026-12-31 --data-urlencode limit=10 |
  jq -c '[.data[].start_date]'

echo '== Every page: pass next_cursor as cursor until it is null (here 2 per page)'
cursor=''
while :; do
  page=$(api -G "$API/subscriptions" --data-urlencode "user_id=$user_id" --data-urlencode limit=2 \
    ${cursor:+--data-urlencode "cursor=$cursor"})
  jq -c '{page: [.data[].start_date], last: (.next_cursor == null)}' <<<"$page"
  cursor=$(jq -r '.next_cursor // empty' <<<"$page")
  [[ -n $cursor ]] || break
done

echo '== Embed the features'
api "$API/subscriptions/$sub_id?include=features" | jq -c '[.features[].description]'

echo '== Cancel at the end of the current billing period (or "at": "now"); canceled is final'
api -X POST "$API/subscriptions/$sub_id/cancel" -d '{"at": "period_end", "reason": "Switching providers"}' |
  jq -c '{status, cancel_at_period_end: (.cancel_at[0:10] == .current_period_end)}'

echo '== Its history: every change, who made it, the previous values (here only what this key did;'
echo '   the worker'"'"'s renewals are there too, by the system)'
api "$API/subscriptions/$sub_id/events" |
  jq -c '.data[] | select(.actor.type == "api_key") | {type, previous}'
