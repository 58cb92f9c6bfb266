#!/usr/bin/env bash
# The process that holds the node's private mount + network namespaces. Started by up.sh as
#   unshare --mount --net --propagation private --fork --kill-child bash ns-holder.sh STATE
# Everything the node runs is started with nsenter into this process's namespaces.
set -euo pipefail
STATE="$1"
# Mount events below stay in this namespace (shared peer groups local to it, for kubelet's
# volume mounts and containerd's rootfs mounts).
mount --make-rshared /
# containerd, runc, the shims and CNI keep sockets and netns handles under /run: a tmpfs of
# our own, gone with the namespace.
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/lock
# kubelet's setupKernelTunables() writes global sysctls unless they already read as it wants
# (vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.panic=10, kernel.panic_on_oops=1,
# kernel.keys.root_maxkeys=1000000, kernel.keys.root_maxbytes=25000000). Show it those values
# in this mount namespace only; the machine's own values never change.
mkdir -p "$STATE/fakesys"
shield() {
  local file=$1 value=$2 name
  name="$(echo "$file" | tr / _)"
  echo "$value" >"$STATE/fakesys/$name"
  mount --bind "$STATE/fakesys/$name" "/proc/sys/$file"
}
shield vm/overcommit_memory 1
shield vm/panic_on_oom 0
shield kernel/panic 10
shield kernel/panic_on_oops 1
shield kernel/keys/root_maxkeys 1000000
shield kernel/keys/root_maxbytes 25000000
# Paths kubelet and CNI use whatever their configuration says (device-plugin sockets, CNI
# result caches): folders of the node's state, seen there in this namespace only. The empty
# mount points on the machine are removed by down.sh when it made them.
for dir in /var/lib/cni /var/lib/kubelet; do
  if [[ ! -d "$dir" ]]; then mkdir -p "$dir" && echo "$dir" >>"$STATE/made-dirs"; fi
  mkdir -p "$STATE/mnt$dir"
  mount --bind "$STATE/mnt$dir" "$dir"
done
# The node's address, on a veth pair that exists only in this network namespace.
ip link set lo up
ip link add vnode0 type veth peer name vnode1
ip addr add 10.99.0.1/24 dev vnode0
ip link set vnode0 up
ip link set vnode1 up
# A default route (to nowhere) so kube-proxy and kubelet find a node IP and an interface.
ip route add default via 10.99.0.254 dev vnode0 onlink
echo $$ >"$STATE/holder.pid"
exec sleep infinity
