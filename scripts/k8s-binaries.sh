#!/usr/bin/env bash
# Build real Kubernetes binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy, kubectl), etcd and CoreDNS from the Go module proxy and cache them
# OUTSIDE the repo (no GitHub / dl.k8s.io downloads needed). test/k8s needs only
# kube-apiserver + etcd; scripts/cluster (npm run cluster:up) needs the whole node.
#
#   scripts/k8s-binaries.sh                 # build if needed, print paths
#   eval "$(scripts/k8s-binaries.sh | tail -n 2)"   # -> $KUBE_APISERVER, $ETCD
#
# Environment:
#   LLM_FALLBACK_K8S_BIN  cache dir (default: $HOME/.cache/llm-fallback/k8s-bin)
#   K8S_VERSION           k8s.io/kubernetes module version (default below)
#   ETCD_VERSION          go.etcd.io/etcd/server/v3 module version (default below)
#   COREDNS_VERSION       github.com/coredns/coredns module version (default below)
#   ETCD_SOURCE           "go" (default; falls back to Debian on failure) or "debian"
#   FORCE=1               rebuild even if cached binaries look fine
#
# All logging goes to stderr; stdout carries only the final two lines
#   KUBE_APISERVER=/abs/path
#   ETCD=/abs/path
# See scripts/README-k8s-binaries.md for versions, timings and usage notes.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
ETCD_SOURCE="${ETCD_SOURCE:-go}"
# One `go build` for every Kubernetes command: they share almost all packages, so building
# them together costs little more than kube-apiserver alone (~1.9 GB peak RSS).
K8S_CMDS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
FORCE="${FORCE:-0}"
CACHE="${LLM_FALLBACK_K8S_BIN:-$HOME/.cache/llm-fallback/k8s-bin}"

# Never let `go` try to download a different toolchain; build with what's installed.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
KUBE_APISERVER_BIN="$CACHE/kube-apiserver"
ETCD_BIN="$CACHE/etcd"
ETCD_SOURCE_FILE="$CACHE/etcd.source"

# Serialise concurrent invocations (e.g. parallel test workers).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock"
  flock 9
fi

# ---------------------------------------------------------------------------
# Checks: does a cached binary run, and is it the version we want?
# ---------------------------------------------------------------------------
k8s_ok() {
  local c out
  for c in $K8S_CMDS; do
    [[ -x "$CACHE/$c" ]] || return 1
    if [[ "$c" == kubectl ]]; then
      out="$("$CACHE/$c" version --client 2>&1)" || return 1
      [[ "$out" == *"Client Version: $K8S_VERSION"* ]] || return 1
    else
      out="$("$CACHE/$c" --version 2>&1)" || return 1
      [[ "$out" == *"Kubernetes $K8S_VERSION"* ]] || return 1
    fi
  done
}

COREDNS_BIN="$CACHE/coredns"
coredns_ok() {
  [[ -x "$COREDNS_BIN" ]] || return 1
  local out
  out="$("$COREDNS_BIN" -version 2>&1)" || return 1
  [[ "$out" == *"CoreDNS-${COREDNS_VERSION#v}"* ]]
}

etcd_ok() {
  [[ -x "$ETCD_BIN" ]] || return 1
  local out
  out="$("$ETCD_BIN" --version 2>&1)" || return 1
  # A Debian (fallback) binary is accepted as-is; use FORCE=1 to retry the Go build.
  if [[ "$(cat "$ETCD_SOURCE_FILE" 2>/dev/null)" == debian* ]]; then
    return 0
  fi
  [[ "$ETCD_SOURCE" != "debian" && "$out" == *"etcd Version: ${ETCD_VERSION#v}"* ]]
}

print_paths() {
  log "kube-apiserver: $("$KUBE_APISERVER_BIN" --version 2>&1 | head -n1)"
  log "etcd:           $("$ETCD_BIN" --version 2>&1 | head -n1) (source: $(cat "$ETCD_SOURCE_FILE" 2>/dev/null || echo unknown))"
  echo "KUBE_APISERVER=$KUBE_APISERVER_BIN"
  echo "ETCD=$ETCD_BIN"
}

if [[ "$FORCE" != "1" ]] && k8s_ok && etcd_ok && coredns_ok; then
  print_paths
  exit 0
fi

command -v go >/dev/null 2>&1 || die "go is not installed (need Go >= the go line of k8s.io/kubernetes $K8S_VERSION)"
log "go: $(go version)"

# `go mod download -json` prints a JSON object; pull out one string field.
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1; }

# ---------------------------------------------------------------------------
# kube-apiserver: a throwaway module that requires k8s.io/kubernetes and pins
# every k8s.io/* staging module (which kubernetes' own go.mod replaces with
# ./staging/src/k8s.io/...) to the matching published v0.X.Y.
# ---------------------------------------------------------------------------
build_k8s() {
  local src="$CACHE/src/apiserver" start=$SECONDS
  local staging_version="v0.${K8S_VERSION#v1.}"   # v1.35.4 -> v0.35.4
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  mkdir -p "$src"
  rm -f "$src/go.mod" "$src/go.sum"

  log "fetching k8s.io/kubernetes@$K8S_VERSION metadata"
  local info gomod build_date
  info="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION")" \
    || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed"
  gomod="$(json_field GoMod <<<"$info")"
  # The proxy's .info file ({"Version":..,"Time":..}) gives a reproducible build date.
  build_date="$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$(json_field Info <<<"$info")" 2>/dev/null || true)"
  [[ -f "$gomod" ]] || die "could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION"

  local staging
  staging="$(sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\2#p' "$gomod" | sort -u)"
  [[ -n "$staging" ]] || die "no staging replace directives found in $gomod"
  log "pinning $(wc -l <<<"$staging" | tr -d ' ') staging modules to $staging_version"

  {
    echo "// Generated by llm-fallback scripts/k8s-binaries.sh -- do not edit."
    echo "module llm-fallback.local/k8s-bin/apiserver"
    echo
    # Same language version and GODEBUG defaults as upstream kubernetes.
    grep -E '^(go|godebug)[[:space:]]' "$gomod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    while read -r m; do echo "	$m => $m $staging_version"; done <<<"$staging"
    echo ")"
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'EOF'
//go:build tools

// Generated by llm-fallback scripts/k8s-binaries.sh -- keeps the command in the module graph.
package tools

EOF
  local c pkgs=""
  for c in $K8S_CMDS; do
    echo "import _ \"k8s.io/kubernetes/cmd/$c\"" >>"$src/tools.go"
    pkgs+=" k8s.io/kubernetes/cmd/$c"
  done

  log "resolving modules (go mod tidy) in $src"
  (cd "$src" && go mod tidy) || die "go mod tidy failed in $src"

  # Same version stamping as kubernetes' hack/lib/version.sh, so that
  # `kube-apiserver --version` reports the real release.
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done

  log "building$pkgs at $K8S_VERSION (this takes a while on a cold cache)"
  rm -rf "$CACHE/.k8s-out" && mkdir -p "$CACHE/.k8s-out"
  # shellcheck disable=SC2086
  (cd "$src" && go build -mod=mod -buildvcs=false -trimpath -ldflags="$ldflags" \
      -o "$CACHE/.k8s-out/" $pkgs) \
    || die "go build of the Kubernetes commands failed"
  for c in $K8S_CMDS; do mv -f "$CACHE/.k8s-out/$c" "$CACHE/$c"; done
  rmdir "$CACHE/.k8s-out"
  log "Kubernetes commands built in $((SECONDS - start))s -> $CACHE"
}

# ---------------------------------------------------------------------------
# CoreDNS: cluster DNS for the one-node cluster (scripts/cluster). A main that calls
# coremain.Run() with the default plugin set, as CoreDNS's own coredns.go does.
# ---------------------------------------------------------------------------
build_coredns() {
  local src="$CACHE/src/coredns" start=$SECONDS
  mkdir -p "$src"
  rm -f "$src/go.mod" "$src/go.sum"
  printf '// Generated by llm-fallback scripts/k8s-binaries.sh -- do not edit.\nmodule llm-fallback.local/k8s-bin/coredns\n\ngo 1.24.0\n' >"$src/go.mod"
  cat >"$src/main.go" <<'EOF'
// Generated by llm-fallback scripts/k8s-binaries.sh -- same as CoreDNS's own coredns.go.
package main

import (
	_ "github.com/coredns/coredns/core/plugin"
	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
EOF
  log "resolving github.com/coredns/coredns@$COREDNS_VERSION in $src"
  (cd "$src" && go get "github.com/coredns/coredns@$COREDNS_VERSION" && go mod tidy) \
    || die "resolving CoreDNS $COREDNS_VERSION failed"
  log "building coredns $COREDNS_VERSION"
  (cd "$src" && go build -mod=mod -buildvcs=false -trimpath -ldflags="-s -w" \
      -o "$COREDNS_BIN.tmp" .) || die "go build coredns failed"
  mv -f "$COREDNS_BIN.tmp" "$COREDNS_BIN"
  log "coredns built in $((SECONDS - start))s -> $COREDNS_BIN"
}

# ---------------------------------------------------------------------------
# etcd: a tiny main around go.etcd.io/etcd/server/v3/etcdmain (the same thing
# etcd's own top-level main.go does). Debian's etcd-server is the fallback.
# ---------------------------------------------------------------------------
build_etcd_go() {
  local src="$CACHE/src/etcd" start=$SECONDS
  mkdir -p "$src"
  rm -f "$src/go.mod" "$src/go.sum"
  cat >"$src/go.mod" <<'EOF'
// Generated by llm-fallback scripts/k8s-binaries.sh -- do not edit.
module llm-fallback.local/k8s-bin/etcd

go 1.24.0
EOF
  cat >"$src/main.go" <<'EOF'
// Generated by llm-fallback scripts/k8s-binaries.sh -- same as etcd's own main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
  log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION in $src"
  (cd "$src" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy) || return 1
  log "building etcd $ETCD_VERSION"
  (cd "$src" && go build -mod=mod -buildvcs=false -trimpath -ldflags="-s -w" -o "$ETCD_BIN.tmp" .) || return 1
  mv -f "$ETCD_BIN.tmp" "$ETCD_BIN"
  echo "go $ETCD_VERSION" >"$ETCD_SOURCE_FILE"
  log "etcd built in $((SECONDS - start))s -> $ETCD_BIN"
}

install_etcd_debian() {
  log "installing etcd from Debian (etcd-server package)"
  if ! command -v etcd >/dev/null 2>&1 || [[ ! -x /usr/bin/etcd ]]; then
    local sudo=""
    [[ "$(id -u)" == "0" ]] || sudo="sudo"
    $sudo apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends etcd-server >&2
  fi
  [[ -x /usr/bin/etcd ]] || die "Debian etcd-server did not provide /usr/bin/etcd"
  cp -f /usr/bin/etcd "$ETCD_BIN.tmp"
  mv -f "$ETCD_BIN.tmp" "$ETCD_BIN"
  echo "debian $(dpkg-query -W -f='${Version}' etcd-server 2>/dev/null || echo unknown)" >"$ETCD_SOURCE_FILE"
}

if [[ "$FORCE" == "1" ]] || ! k8s_ok; then
  build_k8s
fi

if [[ "$FORCE" == "1" ]] || ! etcd_ok; then
  if [[ "$ETCD_SOURCE" == "debian" ]]; then
    install_etcd_debian
  elif ! build_etcd_go; then
    log "building etcd from Go modules failed; falling back to Debian"
    install_etcd_debian
  fi
fi

if [[ "$FORCE" == "1" ]] || ! coredns_ok; then
  build_coredns
fi

k8s_ok || die "a Kubernetes command in $CACHE does not run or is not $K8S_VERSION"
coredns_ok || die "$COREDNS_BIN does not run or is not CoreDNS $COREDNS_VERSION"
"$ETCD_BIN" --version >/dev/null 2>&1 || die "$ETCD_BIN does not run"
print_paths
