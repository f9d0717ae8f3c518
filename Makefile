.PHONY: install start worker build bundle sdk test canary check spec-diff gen check-gen lint typecheck format docs docs-check migrate tenant seed rebuild bench clean
SHELL := /bin/bash

# The contract is written in openapi/ (openapi.yaml and the files it $refs); this makes it one document.
BUNDLE_SPEC := npx redocly bundle openapi/openapi.yaml

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

# dist/ for production (node dist/main.js, dist/worker-main.js): tsc, then the files read at run time; the Dockerfile runs this.
build: install
	rm -rf dist && npx tsc -p tsconfig.build.json
	mkdir -p dist/generated dist/src/dashboard dist/db/seeds
	cp generated/openapi.yaml dist/generated/ && cp src/dashboard/* dist/src/dashboard/ && cp db/seeds/*.sql dist/db/seeds/
	echo "import './src/main.js';" > dist/main.js && echo "import './src/worker-main.js';" > dist/worker-main.js

test: install check-gen
	npx vitest run
	npx tsx test/contract/check-coverage.ts

# Proves that a failing test fails the run (and a passing one passes it): test/canary/.
canary: install
	test/canary/run.sh

# Everything CI checks besides the tests: contract drift, types, lint (spec and code), formatting,
# and the docs showing their examples as they are.
check: check-gen typecheck lint format docs-check

# The examples of the docs (docs/examples/*.sh): run against a test server, their output recorded
# (docs/examples/output/), then each example and its output written into the pages that show it.
docs: install
	RECORD_EXAMPLES=1 npx vitest run test/docs/examples.test.ts
	node --import tsx src/cli/docs.ts

# Fails if a page does not show an example, or its recorded output, exactly as the files are.
docs-check: install
	node --import tsx src/cli/docs.ts --check

# Breaking changes of the contract against BASE (default: the newest v* tag, else HEAD~1); fails
# unless info.version's major (its minor while 0.x) went up. make spec-diff BASE=<ref>
spec-diff: install
	node --import tsx src/cli/spec-diff.ts $(BASE)

# Everything generated from a source of truth: the contract as one document (generated/openapi.yaml,
# bundled from openapi/, and what the server, the types and the SDK read); API types from it (for the
# server and for the SDK); table types and the SQL of every query (db/sql/) from the migrations and
# src/ (runs a throwaway PostgreSQL).
gen: install
	$(BUNDLE_SPEC) -o generated/openapi.yaml
	npx openapi-typescript generated/openapi.yaml -o generated/openapi.ts
	npx openapi-typescript generated/openapi.yaml -o clients/typescript/src/generated/openapi.ts --default-non-nullable=false
	node --import tsx clients/typescript/gen/idempotent-writes.ts
	node --import tsx src/cli/db-snapshots.ts

check-gen: install
	mkdir -p .data && $(BUNDLE_SPEC) -o .data/openapi.bundle.yaml
	@cmp -s .data/openapi.bundle.yaml generated/openapi.yaml || \
	  { echo "generated/openapi.yaml is out of date with openapi/: run make gen" >&2; exit 1; }
	npx openapi-typescript generated/openapi.yaml -o generated/openapi.ts --check
	npx openapi-typescript generated/openapi.yaml -o clients/typescript/src/generated/openapi.ts --default-non-nullable=false --check
	node --import tsx clients/typescript/gen/idempotent-writes.ts --check
	node --import tsx src/cli/db-snapshots.ts --check

# The SDK as a tarball for partners: dist/subscriptions-api-sdk-<version>.tgz (npm install <it>).
sdk: install
	mkdir -p dist && npm pack -w clients/typescript --pack-destination dist

# The contract as one self-contained file for other tools (dist/openapi.yaml), linted strictly.
bundle: install
	$(BUNDLE_SPEC) -o dist/openapi.yaml
	npx redocly lint --extends recommended-strict dist/openapi.yaml

lint: install
	npx redocly lint --extends recommended-strict openapi/openapi.yaml
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

# Rebuilds and checks one tenant's analytics aggregates: make rebuild TENANT=<id or name>
rebuild: install
	node --import tsx src/cli/rebuild.ts

# Latency and throughput of analytics and CRUD over HTTP, written to bench/results.md. The API runs
# compiled (dist/, as in production); BENCH_TSX=1 serves it through tsx instead.
bench: build
	node --import tsx bench/run.ts

# A tenant and its first admin key: make tenant NAME="Acme Inc."
tenant: install
	node --import tsx src/cli/create-tenant.ts "$(NAME)"

clean:
	rm -rf .data
