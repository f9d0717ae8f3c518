.PHONY: install start worker test check gen check-gen lint typecheck format migrate tenant seed bench clean
SHELL := /bin/bash

# Reinstall only when the lock file changed since the last install. npm 11 is required: it honours
# allowScripts in package.json, where npm 10 would run every dependency's install script.
node_modules/.package-lock.json: package.json package-lock.json
	@v=$$(npm --version); if [ "$${v%%.*}" -lt 11 ]; then \
	  echo "error: npm $$v is too old: npm 11 or later is needed (older npm ignores allowScripts and runs every install script); upgrade with: npm install -g npm@11" >&2; exit 1; fi
	npm ci --no-audit --no-fund
install: node_modules/.package-lock.json

# node is make's direct child (no npx or tsx wrapper process), so a SIGTERM sent to make reaches
# the server, which drains and stops cleanly. Operators may signal either process.
start: install
	node --import tsx src/main.ts

# The background worker alone (renewals, payments, dunning, webhooks); run the API with JOBS=off.
worker: install
	node --import tsx src/worker-main.ts

test: install check-gen
	npx vitest run
	npx tsx test/contract/check-coverage.ts

# Everything CI checks besides the tests: contract drift, types, lint (spec and code), formatting.
check: check-gen typecheck lint format

# Everything generated from a source of truth: API types from openapi.yaml; table types and the
# SQL of every query (db/sql/) from the migrations and src/ (runs a throwaway PostgreSQL).
gen: install
	npx openapi-typescript openapi/openapi.yaml -o generated/openapi.ts
	node --import tsx src/cli/db-snapshots.ts

check-gen: install
	npx openapi-typescript openapi/openapi.yaml -o generated/openapi.ts --check
	node --import tsx src/cli/db-snapshots.ts --check

lint: install
	npx redocly lint openapi/openapi.yaml
	npx eslint --max-warnings 0 .

typecheck: install
	npx tsc -p .

format: install
	npx prettier --check .

migrate: install
	node --import tsx src/cli/migrate.ts $(or $(DIRECTION),latest)

# A demo tenant with ROWS subscriptions (default 500000), reproducible with SEED.
seed: install
	node --import tsx src/cli/seed.ts

# Latency and throughput of analytics and CRUD over HTTP, written to bench/results.md.
bench: install
	node --import tsx bench/run.ts

# A tenant and its first admin key: make tenant NAME="Acme Inc."
tenant: install
	node --import tsx src/cli/create-tenant.ts "$(NAME)"

clean:
	rm -rf .data
