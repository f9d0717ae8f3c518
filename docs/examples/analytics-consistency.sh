#!/usr/bin/env bash
# The analytics consistency check and rebuild (admin key). An operator's tool, not something to poll:
# the check recomputes every aggregate from the tenant's subscriptions, and the rebuild replaces them
# while writes go on (they are slower meanwhile). What they cost on a large tenant: see
# docs/analytics.md. Fast on a small tenant like this example's.
# Run: KEY=sk_... bash docs/examples/analytics-consistency.sh   (BASE defaults to http://localhost:3000)
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

echo '== Recompute and compare: differences lists every aggregate row that disagrees'
api "$API/analytics/consistency" | jq -c '{consistent, differences}'

echo '== Only if a check ever finds a difference: replace the aggregates, then check again'
api -X POST "$API/analytics/rebuild" | jq -c '{consistent, differences}'
