#!/usr/bin/env bash
# Paying an invoice: 202 with a pending payment, which the background worker submits and settles.
# A card settles at once; pm_card_declined shows a failure. Needs the worker (make start runs it).
# Run: KEY=sk_... bash docs/examples/payments.sh   (BASE defaults to http://localhost:3000)
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

# Waits until the payment is settled (succeeded or failed), then prints it.
settled() {
  local payment status
  for _ in $(seq 120); do
    payment=$(api "$API/payments/$1")
    status=$(jq -r .status <<<"$payment")
    if [[ $status == succeeded || $status == failed ]]; then
      jq -c '{status, failure_reason, amount, rail}' <<<"$payment"
      return
    fi
    sleep 0.5
  done
  echo "payment $1 is still $status after a minute: is the worker running?" >&2
  return 1
}

# An open invoice of 49.99 (a custom-priced monthly subscription's February).
open_invoice() {
  local user_id sub_id invoice_id
  user_id=$(api -X POST "$API/users" \
    -d "$(jq -n --arg email "$1-$RUN@example.com" '{name: "A customer", email: $email}')" | jq -r .id)
  sub_id=$(api -X POST "$API/subscriptions" -d "$(jq -n --arg user "$user_id" '{user_id: $user,
    status: "active", plan_cost: "49.99", start_date: "2026-01-01", end_date: "2026-06-30"}')" | jq -r .id)
  invoice_id=$(api -X POST "$API/subscriptions/$sub_id/invoices" -d '{"date": "2026-02-01"}' | jq -r .id)
  api -X POST "$API/invoices/$invoice_id/finalize" | jq -r .id
}

echo '== Pay an open invoice by card: 202, pending; the amount is the whole balance'
invoice_id=$(open_invoice card)
payment=$(api -X POST "$API/invoices/$invoice_id/payments" \
  -d '{"amount": "49.99", "payment_method": "pm_card_visa", "rail": "card"}')
jq -c '{status, amount, rail}' <<<"$payment"
settled "$(jq -r .id <<<"$payment")"
api "$API/invoices/$invoice_id" | jq -c '{status}'

echo '== A declined card: the payment fails with a reason, and the invoice stays open'
invoice_id=$(open_invoice declined)
payment_id=$(api -X POST "$API/invoices/$invoice_id/payments" \
  -d '{"amount": "49.99", "payment_method": "pm_card_declined", "rail": "card"}' | jq -r .id)
settled "$payment_id"
api "$API/invoices/$invoice_id" | jq -c '{status}'
