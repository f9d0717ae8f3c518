#!/usr/bin/env bash
# A tenant over HTTP: only the platform operator's key (PLATFORM_ADMIN_KEY, set on the server) may
# create one, and it can do nothing else. The answer holds the tenant's first admin key, shown once.
# (Without the platform key: make tenant NAME="Acme Inc." on the server's machine.)
# Run: PLATFORM_ADMIN_KEY=... bash docs/examples/create-tenant.sh   (BASE defaults to http://localhost:3000)
set -euo pipefail
BASE=${BASE:-http://localhost:3000}
: "${PLATFORM_ADMIN_KEY:?set PLATFORM_ADMIN_KEY to the platform key the server was started with}"
RUN=${RUN:-$(date +%s)-$RANDOM} # this run's names are its own
API=$BASE/api/v1

echo '== Create the tenant: 201 with its first admin key'
created=$(curl -sS --fail-with-body -X POST "$API/tenants" -H "Authorization: Bearer $PLATFORM_ADMIN_KEY" \
  -H 'Content-Type: application/json' -d "$(jq -n --arg name "Acme $RUN" '{name: $name}')")
jq -c '{tenant: .tenant.name, role: .api_key.role, scopes: .api_key.scopes}' <<<"$created"
tenant_key=$(jq -r .api_key.key <<<"$created")

echo '== Its key sees its own tenant only: no users yet'
curl -sS --fail-with-body "$API/users" -H "Authorization: Bearer $tenant_key" | jq -c '{data}'

echo '== The platform key can do nothing else: 403'
curl -sS "$API/users" -H "Authorization: Bearer $PLATFORM_ADMIN_KEY" | jq -c '{status, type}'
