#!/usr/bin/env bash
# A first request: the server answers, the key works, and a customer is created and read back.
# Run: KEY=sk_... bash docs/examples/first-request.sh   (BASE defaults to http://localhost:3000)
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
: "${KEY:?set KEY to an API key: make tenant NAME=\"Acme Inc.\" prints one}"
RUN=${RUN:-$(date +%s)-$RANDOM} # this run's names and emails are its own: works on a tenant with data

# Is it up? /healthz and /readyz need no key.
curl -sS --fail-with-body "$BASE/readyz"
echo

# Create a customer (a user). jq builds the JSON, so values are escaped properly.
body=$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada Lovelace", email: $email}')
user=$(curl -sS --fail-with-body -X POST "$BASE/api/v1/users" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$body")
user_id=$(jq -r .id <<<"$user")

# Read it back.
curl -sS --fail-with-body "$BASE/api/v1/users/$user_id" -H "Authorization: Bearer $KEY" |
  jq '{name, version}'
