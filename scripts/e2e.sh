#!/usr/bin/env bash
# `npm run e2e`: the product on a real one-node cluster (test/e2e/cluster.e2e.ts). Boots the
# cluster when none is up and stops it again afterwards; a cluster that was already up (and
# answering) is kept, and gets the current product image.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
# shellcheck source=scripts/cluster/common.sh
source "$ROOT/scripts/cluster/common.sh"
lock_state
NODE="$ROOT/node_modules/.bin/node"   # Node 24 from the node@24 devDependency
[[ -x "$NODE" ]] || die "no $NODE: run npm ci first"
if api_ready; then
  booted=0
  archive="$(bash "$ROOT/scripts/image.sh" | sed -n 's/^IMAGE_ARCHIVE=//p')"
  ns_run ctr -a /run/containerd/containerd.sock -n k8s.io images import "$archive" >/dev/null
else
  booted=1
  trap 'bash "$ROOT/scripts/cluster/down.sh"' EXIT
fi
handles="$(bash "$ROOT/scripts/cluster/up.sh" | tail -n 2)"
KUBECONFIG="$(sed -n 's/^KUBECONFIG=//p' <<<"$handles")"
CLUSTER_EXEC="$(sed -n 's/^CLUSTER_EXEC=//p' <<<"$handles")"
[[ -x "$CLUSTER_EXEC" && -f "$KUBECONFIG" ]] || die "cluster:up printed no KUBECONFIG/CLUSTER_EXEC"
export KUBECONFIG CLUSTER_EXEC
echo "[e2e] cluster: KUBECONFIG=$KUBECONFIG CLUSTER_EXEC=$CLUSTER_EXEC (booted here: $booted)"
cd "$ROOT"
"$NODE" --test --test-concurrency=1 'test/e2e/*.e2e.ts'
