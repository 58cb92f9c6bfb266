#!/usr/bin/env bash
# CLUSTER_EXEC: run a command inside the one-node cluster's mount + network namespaces, where
# the API server (10.99.0.1:6443), Service IPs and pod IPs are reachable:
#   scripts/cluster/exec.sh kubectl get pods -A
#   scripts/cluster/exec.sh helm list -A
# KUBECONFIG points at the admin kubeconfig; kubectl (v1.35, built with the node) and helm are
# first on PATH. The working directory is kept (same mount tree, so repo paths work).
set -euo pipefail
# shellcheck source=scripts/cluster/common.sh
source "$(dirname "$0")/common.sh"
node_running || die "no cluster is up (npm run cluster:up)"
[[ $# -gt 0 ]] || die "usage: $0 COMMAND [ARGS…]"
exec nsenter -t "$(holder_pid)" -m -n --wd="$PWD" \
  env KUBECONFIG="$STATE/kubeconfig" HOME="$STATE/home" PATH="$BIN:$LAYER_DIR/helm:$PATH" "$@"
