#!/usr/bin/env bash
# The node's own images, built without a registry: the pod sandbox (`pause`, compiled from
# kubernetes' build/pause/linux/pause.c in the module cache), CoreDNS (the binary from
# scripts/k8s-binaries.sh) and the OpenTelemetry Collector (scripts/otelcol.sh) for the e2e.
# Each is one static binary `FROM scratch`, saved as a docker-archive in the image cache;
# rebuilt only when missing.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"
need_debian buildah gcc libc6-dev
export GOTOOLCHAIN=local
mkdir -p "$IMAGES"
exec 9>"$IMAGES/.lock"
flock 9

# image TAG ARCHIVE BINARY ENTRYPOINT-JSON
image() {
  local tag=$1 archive=$2 binary=$3 entrypoint=$4 ctx
  [[ -f "$archive" ]] && return 0
  ctx="$(mktemp -d)"
  cp "$binary" "$ctx/$(basename "$binary")"
  printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT %s\n' "$(basename "$binary")" "$(basename "$binary")" "$entrypoint" >"$ctx/Containerfile"
  buildah bud --quiet --network host --isolation chroot -f "$ctx/Containerfile" -t "$tag" "$ctx" >/dev/null
  buildah push --quiet "$tag" "docker-archive:$archive.tmp:$tag"
  mv -f "$archive.tmp" "$archive"
  rm -rf "$ctx"
  echo "[cluster] built $tag -> $archive" >&2
}

if [[ ! -f "$PAUSE_ARCHIVE" ]]; then
  k8s_version="$("$BIN/kubelet" --version | awk '{print $2}')"
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@$k8s_version/build/pause/linux/pause.c"
  [[ -f "$src" ]] || (cd "$(mktemp -d)" && go mod download "k8s.io/kubernetes@$k8s_version")
  [[ -f "$src" ]] || die "no $src"
  work="$(mktemp -d)"
  gcc -Os -static -DVERSION="\"$k8s_version-llm-fallback\"" -o "$work/pause" "$src"
  strip "$work/pause"
  image localhost/pause:local "$PAUSE_ARCHIVE" "$work/pause" '["/pause"]'
  rm -rf "$work"
fi
image "$COREDNS_IMAGE" "$COREDNS_ARCHIVE" "$BIN/coredns" '["/coredns"]'
image "$OTELCOL_IMAGE" "$OTELCOL_ARCHIVE" "$OTELCOL_BIN" '["/otelcol"]'
