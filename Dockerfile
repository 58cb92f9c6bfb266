# syntax=docker/dockerfile:1
# One image for both commands: `serve` (the sidecar, the default) and `controller` (the
# webhook / status / RBAC Deployment). Node 24 LTS; production dependencies only; no tests,
# no TypeScript sources, no source maps; runs as a numeric non-root user.
#
# The base is pinned to an exact release tag. Pin it further to a digest where your registry
# policy wants one: node:24.20.0-trixie-slim@sha256:<digest from `docker buildx imagetools inspect`>.
ARG NODE_IMAGE=node:24.20.0-trixie-slim

# ---- build: all dependencies, then tsc → dist/ ----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script in the tree is the `node` devDependency, which
# downloads a Node binary the image already has.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: production dependencies only ------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# Type declarations, source maps and READMEs are half of the production tree's bytes
# (54 of 111 MB, most of it @kubernetes/client-node's generated API) and nothing loads them.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && npm cache clean --force \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete

# ---- runtime ---------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# A sidecar runs in every pod, so memory matters more than peak throughput: capped heaps
# took the proxy's peak RSS under benchmark load from ~324 MB to ~149 MB for ~20% fewer
# requests per second (docs/bench/findings.md). Override NODE_OPTIONS to trade back.
# 96 MB of old space holds the live set of a full request-body budget (40 MiB: bodies parsed,
# sent upstream, translated) and makes V8 collect large garbage strings early: with it, the
# worst load the default limits allow peaks at 190-225 MiB RSS, under the sidecar's 256Mi limit
# (test/integration/memory-limit.test.ts; the defaults are listed in src/config/options.ts).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=2 --max-old-space-size=96"
WORKDIR /app
COPY --from=prod-deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /app/dist ./dist
COPY --chown=0:0 package.json ./
# `serve` with no --config serves examples/ (found from package.json, next to dist/).
COPY --chown=0:0 examples ./examples
# Files owned by root, process not: nothing in the image is writable by the process.
USER 65532:65532
# 4000 proxy API, 4001 sidecar admin (/healthz /readyz /metrics), 9443 webhook, 8081 health.
EXPOSE 4000 4001 9443 8081
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
