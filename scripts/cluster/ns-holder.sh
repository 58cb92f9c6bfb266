#!/usr/bin/env bash
# The process that holds the node's private mount + network namespaces. Started by up.sh as
#   unshare --mount --net --propagation private --fork bash ns-holder.sh STATE
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
# kubelet's setupKernelTunables() writes global sysctls (vm.overcommit_memory=1, kernel.panic=10,
# kernel.panic_on_oops=1) unless they already read as wanted. Show it the wanted values in this
# namespace only; the machine's own values never change.
mkdir -p "$STATE/fakesys"
echo 1 >"$STATE/fakesys/overcommit_memory"
echo 10 >"$STATE/fakesys/panic"
echo 1 >"$STATE/fakesys/panic_on_oops"
mount --bind "$STATE/fakesys/overcommit_memory" /proc/sys/vm/overcommit_memory
mount --bind "$STATE/fakesys/panic" /proc/sys/kernel/panic
mount --bind "$STATE/fakesys/panic_on_oops" /proc/sys/kernel/panic_on_oops
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
