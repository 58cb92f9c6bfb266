#!/usr/bin/env bash
# Build the product image from the project's real Dockerfile without a Docker engine:
#
#   npm run image            # -> localhost/llm-fallback:dev, saved as a docker-archive tar
#
# The Dockerfile is the one users build with Docker; only its NODE_IMAGE build-arg changes. No
# registry is reachable here, so the Node 24 base is made locally: a Debian trixie minbase
# rootfs (debootstrap) plus the Node binary of the npm `node@24` devDependency and npm itself
# from the npm registry, imported `FROM scratch`. Builds run with buildah, `--network host`
# (buildah's default network setup would add a bridge to the host's namespace) and
# `--isolation chroot` (no user namespaces or cgroups of its own).
#
# Environment:
#   LLM_FALLBACK_IMAGE_CACHE  where the base rootfs, the archives and their input hashes live
#                             (default: $HOME/.cache/llm-fallback/images)
#   IMAGE                     tag of the product image (default localhost/llm-fallback:dev)
#   NPM_VERSION               npm for the base image (default 11, as Node 24 bundles)
#   FORCE=1                   rebuild even when the inputs did not change
#
# stdout carries only the last line: IMAGE_ARCHIVE=<absolute path of the docker-archive tar>.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
CACHE="${LLM_FALLBACK_IMAGE_CACHE:-$HOME/.cache/llm-fallback/images}"
IMAGE="${IMAGE:-localhost/llm-fallback:dev}"
FORCE="${FORCE:-0}"
NODE_BIN="$ROOT/node_modules/node/bin/node"

log() { printf '[image %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -x "$NODE_BIN" ]] || die "no $NODE_BIN: run npm ci first (the node@24 devDependency provides the binary)"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
exec 9>"$CACHE/.lock"
flock 9

# shellcheck source=scripts/lib/debian.sh
source "$ROOT/scripts/lib/debian.sh"
need_debian buildah debootstrap ca-certificates

NODE_VERSION="$("$NODE_BIN" --version)"   # v24.x.y
BASE_TAG="localhost/llm-fallback-node-base:${NODE_VERSION#v}"
BASE_ARCHIVE="$CACHE/node-base-${NODE_VERSION#v}.tar"

# buildah's storage is the machine's (/var/lib/containers); an image there survives between
# runs, the archive in the cache is what survives a `buildah rmi` or a cleaned storage.
have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

build_base() {
  local work="$CACHE/base-work" start=$SECONDS
  rm -rf "$work" && mkdir -p "$work/rootfs"
  log "debootstrap trixie (minbase) -> $work/rootfs"
  debootstrap --variant=minbase trixie "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }
  # What the node:*-slim images also leave out: package lists, docs, man pages, caches.
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/* "$work/rootfs"/usr/share/doc/* \
    "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/* "$work/rootfs"/var/log/*
  install -m 0755 "$NODE_BIN" "$work/rootfs/usr/local/bin/node"
  # npm from the npm registry (Node's own releases bundle npm 11 with Node 24).
  local npm_version="${NPM_VERSION:-11}"
  log "npm@$npm_version from the npm registry"
  (cd "$work" && npm pack --silent "npm@$npm_version" >npm-pack.txt)
  mkdir -p "$work/rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/$(tail -n1 "$work/npm-pack.txt")" -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  # npm inside an image build reaches the registry through this machine's TLS setup: the build
  # mounts the machine's CA bundle at /etc/ssl/certs (read-only) and this file points npm at it.
  mkdir -p "$work/rootfs/usr/local/etc" "$work/rootfs/etc/ssl/certs"
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nupdate-notifier=false\nfund=false\naudit=false\n' >"$work/rootfs/usr/local/etc/npmrc"
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  cat >"$work/Containerfile" <<EOF
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_VERSION=${NODE_VERSION#v}
CMD ["node"]
EOF
  buildah bud --quiet --network host --isolation chroot -f "$work/Containerfile" -t "$BASE_TAG" "$work" >&2
  buildah push --quiet "$BASE_TAG" "docker-archive:$BASE_ARCHIVE.tmp:$BASE_TAG" >&2
  mv -f "$BASE_ARCHIVE.tmp" "$BASE_ARCHIVE"
  rm -rf "$work"
  log "base $BASE_TAG built in $((SECONDS - start))s"
}

if [[ "$FORCE" == "1" ]] || ! have_image "$BASE_TAG"; then
  if [[ "$FORCE" != "1" && -f "$BASE_ARCHIVE" ]]; then
    log "base $BASE_TAG from $BASE_ARCHIVE"
    id="$(buildah pull --quiet "docker-archive:$BASE_ARCHIVE" | tail -n1)"
    have_image "$BASE_TAG" || buildah tag "$id" "$BASE_TAG"
  else
    build_base
  fi
fi

# The product image is rebuilt only when something the build context holds changed: the files
# the Dockerfile copies (see .dockerignore), hashed as git sees them in the working tree.
inputs_hash() {
  (cd "$ROOT" && { git ls-files -co --exclude-standard -- Dockerfile .dockerignore package.json package-lock.json \
      tsconfig.json tsconfig.build.json scripts/bundle.ts src examples | sort | while read -r f; do [[ -f "$f" ]] && sha256sum "$f"; done
    echo "$BASE_TAG"; } | sha256sum | cut -d' ' -f1)
}
slug="$(printf '%s' "$IMAGE" | tr '/:' '__')"
ARCHIVE="$CACHE/$slug.tar"
HASH_FILE="$CACHE/$slug.inputs"
hash="$(inputs_hash)"
if [[ "$FORCE" != "1" && -f "$ARCHIVE" && "$(cat "$HASH_FILE" 2>/dev/null)" == "$hash" ]]; then
  log "$IMAGE is up to date ($ARCHIVE)"
else
  start=$SECONDS
  log "buildah bud $IMAGE from $ROOT/Dockerfile (NODE_IMAGE=$BASE_TAG)"
  buildah bud --quiet --network host --isolation chroot --layers \
    --build-arg "NODE_IMAGE=$BASE_TAG" \
    -v /etc/ssl/certs:/etc/ssl/certs:ro \
    -f "$ROOT/Dockerfile" -t "$IMAGE" "$ROOT" >&2
  rm -f "$ARCHIVE.tmp"
  buildah push --quiet "$IMAGE" "docker-archive:$ARCHIVE.tmp:$IMAGE" >&2
  mv -f "$ARCHIVE.tmp" "$ARCHIVE"
  echo "$hash" >"$HASH_FILE"
  log "$IMAGE built in $((SECONDS - start))s"
fi
size="$(buildah inspect --type image --format '{{.ImageSize}}' "$IMAGE" 2>/dev/null || true)"
[[ -n "$size" && "$size" != "0" ]] || size="$(stat -c %s "$ARCHIVE")"
log "$IMAGE: $(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1e6 }') (base $BASE_TAG: Debian trixie minbase + Node ${NODE_VERSION#v})"
echo "IMAGE_ARCHIVE=$ARCHIVE"
