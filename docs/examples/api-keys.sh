#!/usr/bin/env bash
# API keys: an admin key makes a read-only key, sees it work and hit its limits, and revokes it.
# Needs an admin key (the keys scope).
# Run: KEY=sk_... bash docs/examples/api-keys.sh   (BASE defaults to http://localhost:3000)
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

echo '== Create a key: role viewer, editor, analyst or admin; expires_at is optional (absent or null:'
echo '   never; in the past: 422). The secret, in "key", is in this answer only: store it now.'
created=$(api -X POST "$API/api-keys" \
  -d '{"name": "billing dashboard", "role": "viewer", "expires_at": "2030-01-01T00:00:00Z"}')
key_id=$(jq -r .id <<<"$created")
viewer_key=$(jq -r .key <<<"$created")
jq -c '{name, role, scopes, expires_at, prefix: (.prefix | test("^sk_[0-9a-f]{8}$"))}' <<<"$created"

echo '== The viewer key reads (200) and may not write (403, naming the scope it lacks)'
curl -sS -o /dev/null -w '%{http_code}\n' "$API/users?limit=1" -H "Authorization: Bearer $viewer_key"
curl -sS -X POST "$API/features" -H "Authorization: Bearer $viewer_key" -H 'Content-Type: application/json' \
  -d "$(jq -n --arg name "nope-$RUN" '{name: $name}')" | jq -c '{status, type, detail}'

echo '== The tenant'"'"'s keys, newest first, revoked and expired ones too; never their secrets'
api "$API/api-keys" | jq -c --arg id "$key_id" '.data[] | select(.id == $id) | {name, role, revoked_at}'

echo '== Revoke it: 204; it stops working at once (401) and stays listed with revoked_at'
api -X DELETE "$API/api-keys/$key_id" >/dev/null
curl -sS -o /dev/null -w '%{http_code}\n' "$API/users?limit=1" -H "Authorization: Bearer $viewer_key"
api "$API/api-keys" | jq -c --arg id "$key_id" '.data[] | select(.id == $id) | {name, revoked: (.revoked_at != null)}'
