#!/usr/bin/env bash
# `npm run cluster:down`: stop everything `cluster:up` started and remove what it made, only
# that: the processes in the node's mount namespace (found by that namespace, never by name),
# the container processes in the node's pod cgroups, then those cgroups (deepest first). The
# node's interfaces, routes, iptables rules and mounts live in its own namespaces and go with
# them. Safe to run twice, and when nothing is up; exits non-zero if something is left.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"
lock_state

host_mnt="$(proc_ns 1 mnt)"
# The node's mount namespace as recorded at boot; works even when the holder itself has died
# (its daemons would otherwise run on, orphaned). Never the machine's own namespace.
mnt="$(node_mnt_ns || true)"
[[ "$mnt" == "$host_mnt" || "$mnt" == "$(proc_ns $$ mnt)" ]] && mnt=""

in_node_ns() {
  [[ -n "$mnt" ]] || return 0
  local d
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
ours() { { in_node_ns; in_pod_cgroups; } | grep -vx "$$" | sort -u; }
signal() {
  local sig=$1
  shift
  [[ $# -gt 0 ]] && kill "-$sig" "$@" 2>/dev/null
  return 0
}

if [[ -n "$mnt" ]]; then
  # Components first, in reverse start order, so kubelet does not restart what goes away. A
  # recorded PID is signalled only while it is still in the node's mount namespace.
  for c in kube-proxy kubelet scheduler controller-manager apiserver; do
    p="$(cat "$STATE/pids/$c" 2>/dev/null)" && [[ "$(proc_ns "$p" mnt)" == "$mnt" ]] && signal TERM "$p"
  done
  sleep 1
  p="$(cat "$STATE/pids/etcd" 2>/dev/null)" && [[ "$(proc_ns "$p" mnt)" == "$mnt" ]] && signal TERM "$p"
fi
# Then everything else that is the node's (containerd, shims, pods, the holder): TERM, then
# KILL whatever is still there, for up to ~10 s in all.
for sig in TERM KILL KILL; do
  mapfile -t pids < <(ours)
  ((${#pids[@]} == 0)) && break
  signal "$sig" "${pids[@]}"
  for _ in $(seq 1 15); do
    [[ -z "$(ours)" ]] && break
    sleep 0.2
  done
done
# The unshare parent exits with the holder; end it if it is still the one we started.
u="$(cat "$STATE/pids/unshare" 2>/dev/null)"
if [[ -n "$u" && "$(cat "/proc/$u/comm" 2>/dev/null)" == unshare && "$(proc_ns "$u" mnt)" == "$host_mnt" ]]; then
  signal TERM "$u"
fi
# Empty cgroup directories, deepest first; a process still exiting keeps its directory busy
# for a moment, so retry for a few seconds.
for _ in $(seq 1 25); do
  left_cg=0
  for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [[ -d "$h" ]] || continue
    find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d "$h" ]] && left_cg=$((left_cg + 1))
  done
  ((left_cg == 0)) && break
  mapfile -t pids < <(in_pod_cgroups)
  signal KILL "${pids[@]}"
  sleep 0.2
done
# Mount points ns-holder.sh had to create on the machine (empty folders).
if [[ -f "$STATE/made-dirs" ]]; then
  while read -r dir; do rmdir "$dir" 2>/dev/null; done <"$STATE/made-dirs"
  rm -f "$STATE/made-dirs"
fi
left_p="$(ours | wc -l)"
rm -f "$STATE/holder.pid" "$STATE/pids/unshare"
((left_p == 0)) && rm -f "$NODE_ID_FILE"
echo "[cluster:down] stopped; processes left: $left_p, cgroup dirs left: $left_cg" >&2
[[ "$left_cg" == 0 && "$left_p" == 0 ]]
