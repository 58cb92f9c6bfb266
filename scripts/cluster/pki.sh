#!/usr/bin/env bash
# Keys and credentials for the one-node cluster, written into DIR: a CA, the API server's
# serving certificate, the service-account signing key, the API server's client certificate
# for kubelets (logs, exec), and one bearer token + kubeconfig per component and for the admin.
# Valid for 2 days: the cluster is a test bed, made anew by every `cluster:up` after a `down`.
set -euo pipefail
DIR="$1"
mkdir -p "$DIR" && cd "$DIR"
umask 077
quiet() { "$@" 2>/dev/null; }
quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=llm-fallback-node-ca"
cat >apiserver.ext <<X
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:10.0.0.1,IP:10.99.0.1,IP:127.0.0.1
X
quiet openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
quiet openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 -extfile apiserver.ext
printf 'extendedKeyUsage=clientAuth\n' >client.ext
quiet openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client"
quiet openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt -days 2 -extfile client.ext
quiet openssl genrsa -out sa.key 2048
users=(admin kubelet kcm sched proxy)
for u in "${users[@]}"; do openssl rand -hex 16 >"token-$u"; done
{
  echo "$(cat token-admin),admin,uid-admin,\"system:masters\""
  echo "$(cat token-kubelet),system:node:node1,uid-kubelet,\"system:nodes\""
  echo "$(cat token-kcm),system:kube-controller-manager,uid-kcm"
  echo "$(cat token-sched),system:kube-scheduler,uid-sched"
  echo "$(cat token-proxy),system:kube-proxy,uid-proxy"
} >tokens.csv
for u in "${users[@]}"; do
  cat >"$u.kubeconfig" <<K
apiVersion: v1
kind: Config
clusters: [{name: llm-fallback-node, cluster: {server: "https://10.99.0.1:6443", certificate-authority: "$PWD/ca.crt"}}]
users: [{name: $u, user: {token: "$(cat "token-$u")"}}]
contexts: [{name: llm-fallback-node, context: {cluster: llm-fallback-node, user: $u}}]
current-context: llm-fallback-node
K
done
