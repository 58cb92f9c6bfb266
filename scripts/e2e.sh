#!/usr/bin/env bash
# `npm run e2e`: the product on a real one-node cluster (test/e2e/cluster.e2e.ts). Boots the
# cluster when none is up and stops it again afterwards; a cluster that was already up is kept
# (and gets the current product image).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
# shellcheck source=scripts/cluster/common.sh
source "$ROOT/scripts/cluster/common.sh"
booted=0
if ! node_running; then
  booted=1
  trap 'bash "$ROOT/scripts/cluster/down.sh"' EXIT
  handles="$(bash "$ROOT/scripts/cluster/up.sh" | tail -n 2)"
else
  handles="$(bash "$ROOT/scripts/cluster/up.sh" | tail -n 2)"
  archive="$(bash "$ROOT/scripts/image.sh" | sed -n 's/^IMAGE_ARCHIVE=//p')"
  ns_run ctr -a /run/containerd/containerd.sock -n k8s.io images import "$archive" >/dev/null
fi
export KUBECONFIG="${handles#KUBECONFIG=}"; KUBECONFIG="${KUBECONFIG%%$'\n'*}"
export CLUSTER_EXEC="${handles##*CLUSTER_EXEC=}"
[[ -x "$CLUSTER_EXEC" ]] || die "cluster:up printed no CLUSTER_EXEC"
echo "[e2e] cluster: KUBECONFIG=$KUBECONFIG CLUSTER_EXEC=$CLUSTER_EXEC (booted here: $booted)"
cd "$ROOT"
node --test --test-concurrency=1 'test/e2e/*.e2e.ts'
