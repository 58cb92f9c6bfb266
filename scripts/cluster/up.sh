#!/usr/bin/env bash
# `npm run cluster:up`: a real one-node Kubernetes cluster on this machine, for the e2e tests
# and for trying the chart by hand.
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy (built
# from the Go module proxy by scripts/k8s-binaries.sh), containerd + runc + CNI plugins from
# Debian, CoreDNS as cluster DNS, and the product image (scripts/image.sh) imported as
# localhost/llm-fallback:dev. The whole node lives in a mount + network namespace of its own
# (ns-holder.sh): no interface, route, iptables rule, sysctl or mount changes in the machine's
# namespaces. Pod cgroups go under one name (/llm-fallback-node) in each hierarchy.
#
# The last two lines of output are exactly
#   KUBECONFIG=<absolute path>
#   CLUSTER_EXEC=<absolute path>      # "$CLUSTER_EXEC" kubectl get pods -A
# `npm run cluster:down` stops everything this started. Already up: prints the two lines again.
#
# Environment: LLM_FALLBACK_CLUSTER_DIR (state; default $HOME/.cache/llm-fallback/cluster).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd -P)"
ROOT="$(cd "$HERE/../.." && pwd -P)"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"

t0=$SECONDS
step() { printf '[cluster:up %4ss] %s\n' "$((SECONDS - t0))" "$*" >&2; }

[[ "$(id -u)" == 0 ]] || die "needs root (namespaces, containerd, cgroups)"
require_cgroup_v1
lock_state
need_debian containerd runc containernetworking-plugins iptables conntrack iproute2 util-linux openssl curl unzip

if api_ready; then
  step "already up (holder $(holder_pid))"
  print_handles
  exit 0
fi
# Leftovers of a node that died: stop and clean them first.
bash "$HERE/down.sh" >&2

step "binaries (scripts/k8s-binaries.sh, scripts/otelcol.sh)"
bash "$ROOT/scripts/k8s-binaries.sh" >/dev/null
bash "$ROOT/scripts/otelcol.sh" >/dev/null
ensure_helm
step "images"
PRODUCT_ARCHIVE="$(bash "$ROOT/scripts/image.sh" | sed -n 's/^IMAGE_ARCHIVE=//p')"
bash "$HERE/support-images.sh" >&2

# Anything that goes wrong from here on leaves nothing running.
booted=0
on_exit() {
  [[ $booted == 1 ]] && return 0
  step "boot failed: the components' last log lines, then stopping what was started"
  local log
  for log in "$STATE"/log/*.log; do [[ -f "$log" ]] && show_log "$(basename "$log" .log)"; done
  bash "$HERE/down.sh" >&2 || true
}
trap on_exit EXIT

rm -rf "$STATE/etcd" "$STATE/kubelet" "$STATE/containerd" "$STATE/pod-logs" "$STATE/log" "$STATE/pids" \
  "$STATE/pki" "$STATE/etc" "$STATE/cni" "$STATE/manifests" "$STATE/fakesys" "$STATE/mnt"
mkdir -p "$STATE"/{log,pids,etcd,manifests,pod-logs,kubelet,apiserver-certs,etc,cni/net.d,containerd,home}
chmod 700 "$STATE/etcd"
bash "$HERE/pki.sh" "$STATE/pki"
cp "$STATE/pki/admin.kubeconfig" "$STATE/kubeconfig"
render() { sed -e "s#@STATE@#$STATE#g" -e "s#@COREDNS_IMAGE@#$COREDNS_IMAGE#g" "$HERE/conf/$1" >"$2"; }
render containerd.toml "$STATE/etc/containerd.toml"
render kubelet.yaml "$STATE/etc/kubelet.yaml"
render kube-proxy.yaml "$STATE/etc/kube-proxy.yaml"
render 10-bridge.conflist "$STATE/cni/net.d/10-bridge.conflist"
render coredns.yaml "$STATE/etc/coredns.yaml"
# Pods with dnsPolicy: Default (CoreDNS itself) read this; nothing outside the node answers.
echo "nameserver 10.99.0.1" >"$STATE/etc/resolv.conf"

rm -f "$STATE/holder.pid" "$NODE_ID_FILE"
# --kill-child: if unshare is stopped before the holder is known, the holder goes with it.
setsid unshare --mount --net --propagation private --fork --kill-child bash "$HERE/ns-holder.sh" "$STATE" \
  >"$STATE/log/unshare.log" 2>&1 </dev/null &
echo $! >"$STATE/pids/unshare"
wait_for "namespace holder" 30 unshare -- test -s "$STATE/holder.pid"
record_node_id "$(cat "$STATE/holder.pid")"
node_running || die "the namespace holder is not running in namespaces of its own"
step "namespaces up (holder $(holder_pid))"

# start NAME CMD ARGS…: run in the node's namespaces, own session, log and PID under $STATE.
start() {
  local name=$1; shift
  ns_run sh -c 'setsid "$@" >"'"$STATE/log/$name.log"'" 2>&1 </dev/null & echo $! >"'"$STATE/pids/$name"'"' sh "$@"
}
P="$STATE/pki"
CTR=(ctr -a /run/containerd/containerd.sock)

start containerd containerd --config "$STATE/etc/containerd.toml"
wait_for containerd 60 containerd -- ns_run "${CTR[@]}" version
for archive in "$PAUSE_ARCHIVE" "$COREDNS_ARCHIVE" "$OTELCOL_ARCHIVE" "$PRODUCT_ARCHIVE"; do
  ns_run "${CTR[@]}" -n k8s.io images import --all-platforms "$archive" >/dev/null
done
step "containerd up, images imported: $(ns_run "${CTR[@]}" -n k8s.io images ls -q | grep -c '^localhost/')"

for c in cpu cpuacct cpuset memory devices freezer blkio pids systemd; do
  [[ -d /sys/fs/cgroup/$c ]] && mkdir -p "/sys/fs/cgroup/$c/llm-fallback-node"
done

start etcd "$BIN/etcd" --name=node1 --data-dir="$STATE/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=node1=http://127.0.0.1:2380 --log-level=warn
wait_for etcd 60 etcd -- ns_run curl -sf http://127.0.0.1:2379/health

# --enable-aggregator-routing: the API server calls webhooks at the pod's IP (it has no
# kube-proxy rules of its own to reach a Service IP from outside the pod network).
start apiserver "$BIN/kube-apiserver" --advertise-address=10.99.0.1 --bind-address=0.0.0.0 --secure-port=6443 \
  --etcd-servers=http://127.0.0.1:2379 --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.key" --service-account-signing-key-file="$P/sa.key" \
  --authorization-mode=Node,RBAC --token-auth-file="$P/tokens.csv" --client-ca-file="$P/ca.crt" \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --cert-dir="$STATE/apiserver-certs" \
  --kubelet-client-certificate="$P/kubelet-client.crt" --kubelet-client-key="$P/kubelet-client.key" \
  --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --enable-aggregator-routing=true \
  --kubelet-preferred-address-types=InternalIP
K=("$BIN/kubectl" --kubeconfig="$STATE/kubeconfig")
wait_for kube-apiserver 120 apiserver -- ns_run "${K[@]}" get --raw=/readyz
step "etcd, kube-apiserver up"

start controller-manager "$BIN/kube-controller-manager" --kubeconfig="$P/kcm.kubeconfig" \
  --authentication-kubeconfig="$P/kcm.kubeconfig" --authorization-kubeconfig="$P/kcm.kubeconfig" \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=true \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257 --allocate-node-cidrs=false
start scheduler "$BIN/kube-scheduler" --kubeconfig="$P/sched.kubeconfig" \
  --authentication-kubeconfig="$P/sched.kubeconfig" --authorization-kubeconfig="$P/sched.kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259
start kubelet "$BIN/kubelet" --config="$STATE/etc/kubelet.yaml" --kubeconfig="$P/kubelet.kubeconfig" \
  --root-dir="$STATE/kubelet" --hostname-override=node1 --node-ip=10.99.0.1 --cert-dir="$STATE/kubelet/pki"
start kube-proxy "$BIN/kube-proxy" --config="$STATE/etc/kube-proxy.yaml"
node_ready() { [[ "$(ns_run "${K[@]}" get node node1 -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; }
wait_for "node Ready" 120 kubelet -- node_ready
wait_for "default ServiceAccount" 120 controller-manager -- ns_run "${K[@]}" get serviceaccount default -n default
step "control plane, kubelet, kube-proxy up; node Ready"

ns_run "${K[@]}" apply -f "$STATE/etc/coredns.yaml" >/dev/null
ns_run "${K[@]}" -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null ||
  { ns_run "${K[@]}" -n kube-system describe pods -l k8s-app=kube-dns >&2; die "CoreDNS did not become Ready"; }
step "CoreDNS Ready at 10.0.0.10"

booted=1
step "cluster up"
print_handles
