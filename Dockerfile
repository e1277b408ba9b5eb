# syntax=docker/dockerfile:1
# operator-management-service: one image, every process role. The role is chosen at run time with
# PROCESS_ROLES (comma list of api,worker) for dist/main.js, or `node dist/health-main.js` for
# health ingestion; `scripts/migrate.sh up` runs the migrations.

# ---------------------------------------------------------------- build
FROM node:20-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so source edits reuse this layer. Install scripts stay off, as package.json's
# allowScripts says: the native Temporal bridge and swc ship prebuilt binaries.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# tsc into dist/, then the prebuilt Temporal workflow bundle at dist/workflow-bundle.js.
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && test -f dist/main.js \
  && test -f dist/workflow-bundle.js \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------- runtime
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    TEMPORAL_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    NPM_CONFIG_UPDATE_NOTIFIER=false

# Owned by root and only readable by the `node` user the processes run as.
# node-pg-migrate is a runtime dependency, so the pruned node_modules can still migrate.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY scripts/migrate.sh ./scripts/migrate.sh

USER node
# Admin API, internal API (mTLS), ops (metrics/probes); 9091: ops of the health process.
EXPOSE 8080 8443 9090 9091
CMD ["node", "dist/main.js"]
