#!/usr/bin/env bash
# Webhooks on your machine: a local receiver, an endpoint for it, a delivery, its signature checked,
# the secret rotated (both secrets sign during the grace period), and the delivery log.
# The server must allow local URLs and run the worker: WEBHOOKS_ALLOW_PRIVATE_URLS=true make start
# Needs an admin key, and node for the receiver (docs/examples/webhook-receiver.mjs).
# Run: KEY=sk_... bash docs/examples/webhooks.sh   (BASE defaults to http://localhost:3000)
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
examples=$(dirname "$0")

# Waits until the receiver has a delivery about resource $1 (the body is the event), then prints it.
delivery_about() {
  for _ in $(seq 120); do
    if [[ -s $received ]] && jq -ce --arg id "$1" 'select((.body | fromjson).resource_id == $id)' "$received"; then
      return
    fi
    sleep 0.5
  done
  echo "no delivery about $1 after a minute: is the worker running?" >&2
  return 1
}

# A receiver on this machine, on any free port; it stops with this script.
work=$(mktemp -d)
received=$work/deliveries.jsonl
node "$examples/webhook-receiver.mjs" "$received" &
receiver=$!
trap 'kill $receiver 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [[ -s $received.port ]] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$received.port")/hook"

echo '== Register it: enabled_events lists event types (or ["*"] for all). The secret is in this'
echo '   answer only (and in a rotation'"'"'s): GET never shows it.'
endpoint=$(api -X POST "$API/webhook-endpoints" \
  -d "$(jq -n --arg url "$url" '{url: $url, enabled_events: ["user.created"]}')")
endpoint_id=$(jq -r .id <<<"$endpoint")
secret=$(jq -r .secret <<<"$endpoint")
jq -c '{status, enabled_events, secret: (.secret | startswith("whsec_"))}' <<<"$endpoint"

echo '== A change it listens to: the worker POSTs the event, signed; check the signature'
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada", email: $email}')" | jq -r .id)
delivery=$(delivery_about "$user_id")
jq -c '.body | fromjson | {type, resource_type, data: {name: .data.name}}' <<<"$delivery"
node "$examples/verify-webhook.mjs" "$secret" <<<"$delivery"

echo '== Rotate the secret: the old one keeps signing for grace_period_seconds (default 86400,'
echo '   at most 7 days; 0 ends it now), so deliveries carry two v1= signatures meanwhile'
new_secret=$(api -X POST "$API/webhook-endpoints/$endpoint_id/rotate-secret" \
  -d '{"grace_period_seconds": 3600}' | jq -r .secret)
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "grace-$RUN@example.com" '{name: "Grace", email: $email}')" | jq -r .id)
delivery=$(delivery_about "$user_id")
jq -r '.signature | split(",") | map(split("=")[0]) | join(",")' <<<"$delivery"
echo "new secret: $(node "$examples/verify-webhook.mjs" "$new_secret" <<<"$delivery")"
echo "old secret: $(node "$examples/verify-webhook.mjs" "$secret" <<<"$delivery")"

echo '== Every delivery to the endpoint, newest first, with its attempts (status=failed: the failures)'
api -G "$API/webhook-endpoints/$endpoint_id/deliveries" --data-urlencode status=succeeded |
  jq -c '.data[] | {event_type, status, attempt_count}'

# Remove the endpoint: its receiver is about to stop.
api -X DELETE "$API/webhook-endpoints/$endpoint_id" >/dev/null
