#!/usr/bin/env bash
# `npm run cluster:down`: stop everything `cluster:up` started and remove what it made, only
# that: the processes in the node's mount namespace (found by that namespace, never by name),
# the container processes in the node's pod cgroups, then those cgroups (deepest first). The
# node's interfaces, routes, iptables rules and mounts live in its own namespaces and go with
# them. Safe to run twice, and when nothing is up.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"

# PIDs whose mount namespace is the node's.
in_node_ns() {
  local mnt=$1 d
  for d in /proc/[0-9]*; do
    [[ "$(readlink "$d/ns/mnt" 2>/dev/null)" == "$mnt" ]] && echo "${d#/proc/}"
  done
}
# PIDs in the node's pod cgroups (containers and pause run in mount namespaces of their own).
in_pod_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [[ -d "$h" ]] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
}
signal_all() {
  local sig=$1; shift
  [[ $# -gt 0 ]] && kill "-$sig" "$@" 2>/dev/null
  return 0
}

holder=""
if node_running; then
  holder="$(holder_pid)"
  mnt="$(readlink "/proc/$holder/ns/mnt")"
  # Components first, in reverse start order, so kubelet does not restart what goes away.
  for c in kube-proxy kubelet scheduler controller-manager apiserver; do
    p="$(cat "$STATE/pids/$c" 2>/dev/null)" && signal_all TERM "$p"
  done
  sleep 1
  p="$(cat "$STATE/pids/etcd" 2>/dev/null)" && signal_all TERM "$p"
  for sig in TERM KILL; do
    mapfile -t pids < <({ in_node_ns "$mnt"; in_pod_cgroups; } | grep -vx "$holder" | sort -u)
    signal_all "$sig" "${pids[@]}"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      [[ -z "$({ in_node_ns "$mnt"; in_pod_cgroups; } | grep -vx "$holder")" ]] && break
      sleep 0.3
    done
  done
  kill "$holder" 2>/dev/null
fi
# The unshare parent exits when the holder does; end it if it is still ours.
u="$(cat "$STATE/pids/unshare" 2>/dev/null)"
if [[ -n "$u" && "$(cat "/proc/$u/comm" 2>/dev/null)" == unshare ]]; then kill "$u" 2>/dev/null; fi
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [[ -z "$holder" || ! -d "/proc/$holder" ]] && break
  sleep 0.2
done
# Leftover container processes of a node whose holder died already.
mapfile -t pids < <(in_pod_cgroups)
signal_all KILL "${pids[@]}"
sleep 0.2
for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
  [[ -d "$h" ]] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
done
rm -f "$STATE/holder.pid" "$STATE/pids/unshare"
left_cg="$(ls -d /sys/fs/cgroup/*/"$CGROUP_ROOT" 2>/dev/null | wc -l)"
left_p="$(in_pod_cgroups | wc -l)"
echo "[cluster:down] stopped; processes left in pod cgroups: $left_p, cgroup dirs left: $left_cg" >&2
[[ "$left_cg" == 0 && "$left_p" == 0 ]]
