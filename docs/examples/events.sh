#!/usr/bin/env bash
# The event feed: every change, oldest first. A poller reads page after page until a page is empty,
# keeps the last next_cursor, and asks again later with it to get only newer events.
# Run: KEY=sk_... bash docs/examples/events.sh   (BASE defaults to http://localhost:3000)
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

# Only this run's events: those after this instant, to the second (a second's pause first, so
# that nothing from before the script falls in the same second). A timestamp in a query must be
# URL-encoded: --data-urlencode does it; a "+01:00" offset pasted raw would arrive as a space.
sleep 1
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Some changes: a user created and renamed, a feature created and deleted.
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada Lovelace", email: $email}')" | jq -r .id)
api -X PATCH "$API/users/$user_id" -d '{"name": "Ada King"}' >/dev/null
feature_id=$(api -X POST "$API/features" -d "$(jq -n --arg name "beta-$RUN" '{name: $name}')" | jq -r .id)
api -X DELETE "$API/features/$feature_id" >/dev/null

# Reads every page from $cursor on (2 events a page here; up to 100) and prints each event's type.
# Unlike other lists, the feed's next_cursor is never null: it is where the next poll starts.
read_feed() {
  local page
  while :; do
    page=$(api -G "$API/events" --data-urlencode "after=$started" --data-urlencode limit=2 \
      ${cursor:+--data-urlencode "cursor=$cursor"})
    [[ $(jq '.data | length' <<<"$page") -gt 0 ]] || return 0
    jq -r '.data[] | "\(.type) by \(.actor.type)"' <<<"$page"
    cursor=$(jq -r .next_cursor <<<"$page")
    seen=$((seen + $(jq '.data | length' <<<"$page")))
  done
}

echo '== Poll until the 4 events are there (an event shows once the transactions running around it'
echo '   have ended, usually within milliseconds)'
cursor='' seen=0
for _ in $(seq 100); do
  read_feed
  ((seen >= 4)) && break
  sleep 0.2
done
((seen >= 4)) || { echo "only $seen of the 4 events after 20 s: is a long transaction running?" >&2; exit 1; }

echo '== One more change; the next poll, from the kept cursor, gets only it'
api -X PATCH "$API/users/$user_id" -d '{"name": "Ada, Countess of Lovelace"}' >/dev/null
seen=0
for _ in $(seq 100); do
  read_feed
  ((seen >= 1)) && break
  sleep 0.2
done
((seen >= 1)) || { echo "the new event did not show within 20 s: is a long transaction running?" >&2; exit 1; }

echo '== Filters: repeat type for several; resource_id for one resource'
api -G "$API/events" --data-urlencode type=user.created --data-urlencode type=user.updated \
  --data-urlencode "resource_id=$user_id" --data-urlencode "after=$started" |
  jq -c '.data[] | {type, name: .data.name, previous}'
