# syntax=docker/dockerfile:1
# The API's image: compiled JavaScript run by plain node (no tsx), production dependencies only,
# as the unprivileged user node. docker compose up --build (docker-compose.yml) runs it with
# PostgreSQL 16; alone: docker run -e DATABASE_URL=postgres://... -p 3000:3000 subscriptions-api.
# The build stage runs `make build`, so `make build && node dist/main.js` is this image without Docker.
# Pinned base: bump the tag deliberately (or pin its digest: node:20.20.2-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# npm 11 honours allowScripts in package.json; Node 20's own npm 10 ignores it and would run every
# dependency's install script. Only the manifests, so the installs below are cached until they change.
FROM ${NODE_IMAGE} AS manifests
RUN npm install -g npm@11.19.1 --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json ./
COPY clients/typescript/package.json clients/typescript/

# Every dependency (TypeScript, and embedded-postgres whose types tsc reads), then make build: tsc to
# dist/ and the files the code reads at run time (the bundled contract generated/openapi.yaml, the
# dashboard, the seeds). openapi/, the contract's sources, is not needed: make gen bundled it.
FROM manifests AS build
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
RUN npm ci --no-audit --no-fund
COPY Makefile tsconfig.json tsconfig.build.json ./
COPY generated generated
COPY db db
COPY src src
RUN make build

# Production dependencies only: no devDependencies (tsx, typescript, vitest, ...), no optional ones
# (embedded-postgres and its PostgreSQL binaries: the image always has DATABASE_URL), and not the
# SDK workspace (clients/typescript), which the server does not use.
FROM manifests AS prod-deps
RUN npm ci --omit=dev --omit=optional --workspaces=false --no-audit --no-fund

FROM ${NODE_IMAGE}
# tini is PID 1: it passes docker stop's SIGTERM on to node (which drains, then exits 0) and reaps
# zombies. Debian's package, so nothing is downloaded at container start.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# package.json for "type": "module" (dist/ is ES modules); root owns every file, node only reads them.
COPY package.json ./
COPY --from=prod-deps /app/node_modules node_modules
COPY --from=build /app/dist dist
USER node
EXPOSE 3000
# /readyz is 200 while the database answers; slim images have no curl, node has fetch.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# The API (it migrates on startup). The same image runs the worker (node dist/worker-main.js) and
# the CLIs: node dist/src/cli/migrate.js, node dist/src/cli/create-tenant.js "Acme Inc.".
CMD ["node", "dist/main.js"]
