#!/usr/bin/env bash
# GET /analytics: revenue and customer figures of the whole tenant, here after adding three
# subscriptions. On a tenant with other data the figures include it. Needs an admin key: it also
# creates customers (GET /analytics alone takes an analyst or admin key).
# Run: KEY=sk_... bash docs/examples/analytics.sh   (BASE defaults to http://localhost:3000)
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

# Two customers, three subscriptions (custom prices: an admin key).
user() {
  api -X POST "$API/users" -d "$(jq -n --arg name "$1" --arg email "$1-$RUN@example.com" \
    '{name: $name, email: $email}')" | jq -r .id
}
subscribe() {
  api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$1" --arg cost "$2" --arg start "$3" \
    '{user_id: $user, status: "active", plan_cost: $cost, start_date: $start}')" >/dev/null
}
ada=$(user Ada) bob=$(user Bob)
subscribe "$ada" 49.99 2026-09-01
subscribe "$ada" 19.00 2026-10-15
subscribe "$bob" 120.00 2026-11-01

echo '== The figures: 6 months of booked revenue ending with November 2026, the top 3 customers'
api -G "$API/analytics" --data-urlencode months=6 --data-urlencode top=3 --data-urlencode as_of=2026-11-23 |
  jq '{mrr, arr, subscription_count, total_recurring_revenue, average_subscription_cost,
    monthly_revenue: [.monthly_revenue[] | "\(.month): \(.revenue) from \(.subscription_count)"],
    top_users: [.top_users[] | "\(.name): \(.total_value) from \(.subscription_count)"]}'

