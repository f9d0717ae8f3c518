#!/usr/bin/env bash
# Versions and conditional requests: If-Match changes only what you read; If-None-Match saves a
# download while nothing changed.
# Run: KEY=sk_... bash docs/examples/conditional-requests.sh   (BASE defaults to http://localhost:3000)
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
: "${KEY:?set KEY to an API key: make tenant NAME=\"Acme Inc.\" prints one}"
RUN=${RUN:-$(date +%s)-$RANDOM} # this run's names and emails are its own: works on a tenant with data
API=$BASE/api/v1
auth=(-H "Authorization: Bearer $KEY")
json=(-H 'Content-Type: application/json')

echo '== A new user is version 1; its ETag says so'
user_id=$(curl -sS --fail-with-body -X POST "$API/users" "${auth[@]}" "${json[@]}" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada Lovelace", email: $email}')" | jq -r .id)
curl -sS --fail-with-body -o /dev/null -D - "$API/users/$user_id" "${auth[@]}" | tr -d '\r' | grep -i '^etag:'

echo '== Change it only if it is still version 1: 200, now version 2'
curl -sS --fail-with-body -X PATCH "$API/users/$user_id" "${auth[@]}" "${json[@]}" -H 'If-Match: "1"' \
  -d '{"name": "Ada King"}' | jq -c '{name, version}'

echo '== The same request again: 412, nothing changes (someone else would have changed it)'
curl -sS -X PATCH "$API/users/$user_id" "${auth[@]}" "${json[@]}" -H 'If-Match: "1"' \
  -d '{"name": "Ada, Countess of Lovelace"}' | jq -c '{status, type}'

echo '== Read it only if it changed since version 2: 304, no body'
curl -sS -o /dev/null -w '%{http_code}\n' "$API/users/$user_id" "${auth[@]}" -H 'If-None-Match: "2"'
