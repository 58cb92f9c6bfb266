# syntax=docker/dockerfile:1
# One image for both commands: `serve` (the sidecar, the default) and `controller` (the
# webhook / status / RBAC Deployment). Node 24 LTS; the production code as one bundle (no
# devDependencies, no tests, no TypeScript sources, no source maps); runs as a numeric
# non-root user.
#
# The base is pinned to an exact release tag. Pin it further to a digest where your registry
# policy wants one: node:24.20.0-trixie-slim@sha256:<digest from `docker buildx imagetools inspect`>.
ARG NODE_IMAGE=node:24.20.0-trixie-slim

# ---- build: all dependencies, then tsc (the type check) and the bundle ----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script in the tree is the `node` devDependency, which
# downloads a Node binary the image already has.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.ts ./scripts/
COPY src ./src
# The image runs esbuild's bundle of the sources (dist/bundle/: one file and the chunks only
# some commands load; every package inside, licences in THIRD-PARTY-LICENSES.txt), which
# starts in ~60% of the CPU time of tsc's output and its ~340 modules (docs/bench/findings.md).
RUN npm run build && npm run bundle
# Node's compile cache for the bundle, made here for the runtime: V8's code for the modules
# every command loads, so the sidecar does not compile them at start (~20% less CPU until
# ready). Node keeps one cache directory per uid, so it is made as the runtime's user; at run
# time the root file system is read-only and Node only reads it. The flags are the runtime's.
RUN mkdir /app/compile-cache && chown 65532:65532 /app/compile-cache
USER 65532:65532
RUN NODE_COMPILE_CACHE=/app/compile-cache NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=96" \
    node --preserve-symlinks --no-concurrent-recompilation --no-maglev --liftoff-only --no-memory-reducer-favors-memory --expose-gc dist/bundle/llm-fallback.mjs help >/dev/null
USER 0:0
# Node writes its cache files for their owner only: readable by all, written by none.
RUN chmod -R a+rX,go-w /app/compile-cache

# ---- runtime ---------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# A sidecar runs in every pod, so memory matters more than peak throughput: capped heaps
# took the proxy's peak RSS under benchmark load from ~324 MB to ~149 MB for ~20% fewer
# requests per second (docs/bench/findings.md). Override NODE_OPTIONS to trade back.
# 4 MB semi-spaces, not 2: with 128 requests in flight, 2 MB scavenges came often enough to
# carry requests' objects into the old space; 4 MB took 11% of the instructions per request
# off at c=128 (callgrind), for the same idle RSS and peak RSS within run-to-run spread.
# 96 MB of old space holds the live set of a full request-body budget (40 MiB: bodies parsed,
# sent upstream, translated) and makes V8 collect large garbage strings early: with it, the
# worst load the default limits allow peaks at 190-225 MiB RSS, under the sidecar's 256Mi limit
# (test/integration/memory-limit.test.ts; the defaults are listed in src/config/options.ts).
# --no-concurrent-recompilation: V8 optimises hot functions on the main thread, not on its
# worker threads. On a sidecar's core those threads only take turns with the main thread, and
# each kept its compile jobs' memory in its own malloc arena after warm-up: ~14 MB of peak RSS
# under load (5 arenas of 2-4 MB against one), for the same instructions per request
# (docs/bench/findings.md, "RSS under load").
# --no-maglev: hot functions go from the baseline code straight to TurboFan, without V8's
# middle tier. With the compiles on the main thread, Maglev was one more compile per hot
# function in the request's time and code the sidecar ran for long after warm-up: without it,
# CPU per request at c=32 fell ~12% (median of 5 interleaved pairs after 15 s of load: 219 to
# 192 us) and peak RSS ~2.5 MB, where the Node floor's CPU did not move (findings.md, "sixth
# sitting"). The compile cache is made with the same flags: Node keeps one cache directory
# per set of V8 flags, and would not find a cache made under others.
# --preserve-symlinks: the module loader takes each of the bundle's chunk files by the path it
# was imported by, without a realpath and a new file URL per import. The image has no symlinks
# to resolve, and those path walks were what made two of Node's `path` functions hot at a
# --kubernetes start: with --no-maglev they went to TurboFan before /readyz, whose first
# compile maps TurboFan's pages of the node binary: idle RSS in --kubernetes mode 84-85 against
# 91 MB without the flag (bench:startup, 3 runs x 2, alternated; findings.md, "seventh sitting").
# --liftoff-only: WebAssembly is compiled by V8's baseline compiler only. The one WebAssembly
# module the sidecar runs is undici's HTTP parser (the upstream client's); optimising it with
# TurboFan, on V8's worker threads, left ~11 MB more resident under load (c=32: 89 against
# 100 MB) for no CPU per request the benchmark could tell apart (findings.md, "ninth sitting").
# --no-memory-reducer-favors-memory: the collections V8's memory reducer makes when the sidecar
# turns idle (or is resumed after a stop) are ordinary ones, not memory-reducing ones. An
# ordinary collection keeps the object layouts (maps) no live object uses for two more; a
# memory-reducing one lets them go at once, and with them the optimised code made for them:
# the first requests after an idle spell deoptimised and recompiled the request path on the
# main thread. After a 3-minute stop, the next 10 s at c=1 made 183 compiles (480 ms) with the
# reducer's default and 27 (76 ms) with the flag, p99 26 against 3.5 ms; the bench's c=1 p99
# after its pauses fell from 20-34 ms to ~3 ms. RSS 40 s after a c=128 run: 98-100 MB either
# way (findings.md, "eleventh sitting").
# --expose-gc: once ready, `serve` asks V8 for one memory-reducing collection, which gives back
# the ~4 MB the start left in V8's grown new space and in code that ran once (src/core/
# start-memory.ts; idle RSS 65.5 -> 61.2 MB, findings.md, "tenth sitting"). Nothing else calls it.
# Node does not take the four other V8 flags from NODE_OPTIONS (it refuses to start), so they
# are in the ENTRYPOINT, as are --expose-gc and --preserve-symlinks, which a child process the
# sidecar starts (a kubeconfig's exec credential plugin) must not inherit through NODE_OPTIONS;
# the heap flags stay in NODE_OPTIONS, where an operator can override them.
# NODE_COMPILE_CACHE: the cache made in the build stage (same Node, same paths, same uid).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=96" \
    NODE_COMPILE_CACHE=/app/compile-cache
WORKDIR /app
# The bundle holds every package it uses: no node_modules in the image.
COPY --from=build --chown=0:0 /app/dist/bundle ./dist/bundle
COPY --from=build --chown=0:0 /app/compile-cache ./compile-cache
COPY --chown=0:0 package.json ./
# `serve` with no --config serves examples/ (found from package.json, above dist/).
COPY --chown=0:0 examples ./examples
# Files owned by root, process not: nothing in the image is writable by the process.
USER 65532:65532
# 4000 proxy API, 4001 sidecar admin (/healthz /readyz /metrics), 9443 webhook, 8081 health.
EXPOSE 4000 4001 9443 8081
ENTRYPOINT ["node", "--preserve-symlinks", "--no-concurrent-recompilation", "--no-maglev", "--liftoff-only", "--no-memory-reducer-favors-memory", "--expose-gc", "dist/bundle/llm-fallback.mjs"]
CMD ["serve"]
