#!/usr/bin/env bash
# Safe retries: the same Idempotency-Key replays the first answer and writes nothing again.
# Run: KEY=sk_... bash docs/examples/idempotency.sh   (BASE defaults to http://localhost:3000)
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
: "${KEY:?set KEY to an API key: make tenant NAME=\"Acme Inc.\" prints one}"
RUN=${RUN:-$(date +%s)-$RANDOM} # this run's names and emails are its own: works on a tenant with data
API=$BASE/api/v1

# A UUID v4 is a good key: one per logical operation, reused by every retry of it.
idem=$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid)
body=$(jq -n --arg email "grace-$RUN@example.com" '{name: "Grace Hopper", email: $email}')

echo '== Two attempts with one key: the second replays the first answer (status, headers, body)'
for attempt in 1 2; do
  curl -sS -o /dev/null -D - -X POST "$API/users" -H "Authorization: Bearer $KEY" \
    -H "Idempotency-Key: $idem" -H 'Content-Type: application/json' -d "$body" |
    tr -d '\r' | grep -i -E '^(HTTP/|idempotent-replayed:)'
done

echo '== The same key with another body is refused with 422, and nothing is written'
other=$(jq -n --arg email "grace.h-$RUN@example.com" '{name: "Grace Hopper", email: $email}')
curl -sS -X POST "$API/users" -H "Authorization: Bearer $KEY" \
  -H "Idempotency-Key: $idem" -H 'Content-Type: application/json' -d "$other" | jq -c '{status, type}'
