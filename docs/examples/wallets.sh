#!/usr/bin/env bash
# Prepaid credits: a wallet, a grant, a hold before an AI request, its capture at the actual cost,
# and the ledger. Run: KEY=sk_... bash docs/examples/wallets.sh   (BASE defaults to http://localhost:3000)
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

echo '== A customer and a wallet: 100 credits per currency unit'
user_id=$(api -X POST "$API/users" \
  -d "$(jq -n --arg email "ada-$RUN@example.com" '{name: "Ada", email: $email}')" | jq -r .id)
wallet_id=$(api -X POST "$API/wallets" -d "$(jq -n --arg user "$user_id" \
  '{user_id: $user, name: "AI credits", rate: "100"}')" | jq -r .id)

echo '== 2,000 free credits (an admin key: grants give value away)'
api -X POST "$API/wallets/$wallet_id/grants" -d '{"credits": "2000", "priority": 10}' | jq -c '{kind, credits, remaining}'

echo '== Before an AI request estimated at 150 credits: hold them'
hold_id=$(api -X POST "$API/wallets/$wallet_id/holds" -d '{"credits": "150", "expires_in": 300}' | jq -r .id)
api "$API/wallets/$wallet_id" | jq -c '{available, held, total}'

echo '== It cost 97.5: capture that, the rest of the hold goes back'
api -X POST "$API/holds/$hold_id/capture" -d '{"credits": "97.5"}' | jq -c '{status, credits, captured}'
api "$API/wallets/$wallet_id" | jq -c '{available, held, total}'

echo '== A hold larger than the balance is refused'
curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -X POST \
  "$API/wallets/$wallet_id/holds" -d '{"credits": "5000", "expires_in": 60}' | jq -c '{status, type, detail}'

echo '== The ledger, oldest first, with the balances after each entry'
api "$API/wallets/$wallet_id/transactions" | jq -c '.data | reverse | .[] | {type, credits, available_after, held_after}'
