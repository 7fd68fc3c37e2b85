#!/usr/bin/env bash
# Starts the dev cluster on loopback: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok with fake nodes, a container registry, and a real node (dev/node-up.sh;
# SLIPWAY_NODE=none leaves it out). Idempotent: when everything is already up and healthy it only
# says so. State, certificates, logs and the kubeconfig live in $SLIPWAY_STATE (outside the
# repository).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

ETCD_PORT=${SLIPWAY_ETCD_PORT:-23790}
API_PORT=${SLIPWAY_API_PORT:-16443}
KCM_PORT=${SLIPWAY_KCM_PORT:-16444}
SCHED_PORT=${SLIPWAY_SCHEDULER_PORT:-16445}
KWOK_PORT=${SLIPWAY_KWOK_PORT:-16446}
REGISTRY_PORT=${SLIPWAY_REGISTRY_PORT:-15000}
SERVICE_CIDR=10.96.0.0/16
FAKE_NODES=${SLIPWAY_FAKE_NODES:-2}
# real: also start a real node (dev/node-up.sh; needs root); none: only kwok's fake nodes.
NODE=${SLIPWAY_NODE:-real}
case $NODE in real|none) ;; *) die "SLIPWAY_NODE (make NODE=...) is real or none, not '$NODE'" ;; esac

pki=$SLIPWAY_STATE/pki
logs=$SLIPWAY_STATE/logs
pids=$SLIPWAY_STATE/pids
kubeconfig=$SLIPWAY_STATE/kubeconfig

start_time=$SECONDS

require_packages() {
  local missing=()
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}"
  else
    die "missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})"
  fi
}

components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok registry local-path)
# What the control plane was started with: bump the revision when its flags change, so a running
# cluster started by an older script is restarted (its data kept) instead of being taken as healthy.
CONTROL_PLANE_REV="rev=4 node=$NODE"

all_healthy() {
  local c
  [ "$(cat "$SLIPWAY_STATE/control-plane.rev" 2>/dev/null)" = "$CONTROL_PLANE_REV" ] || return 1
  for c in "${components[@]}"; do alive "$c" || return 1; done
  kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# --- certificates -------------------------------------------------------------------------------
make_certs() {
  mkdir -p "$pki"
  [ -f "$pki/.complete" ] && return 0
  log "generating certificates in $pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=slipway-dev-ca" 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # Serving certificate of the API server: loopback plus the in-cluster names and service IP.
    cat >apiserver.ext <<EOF
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
    sign apiserver "/CN=kube-apiserver" apiserver.ext
    # Client certificates: the admin, and one per control-plane component.
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    sign admin "/O=system:masters/CN=slipway-admin" client.ext
    sign controller-manager "/CN=system:kube-controller-manager" client.ext
    sign scheduler "/CN=system:kube-scheduler" client.ext
    sign kwok "/O=system:masters/CN=kwok" client.ext
    touch .complete
  )
}

# The front proxy: the API server proves with this client certificate that it forwards a user's
# request to an aggregated API (Slipway's access.slipway.dev, which lists a user's projects).
make_front_proxy_certs() {
  [ -f "$pki/.front-proxy" ] && return 0
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout front-proxy-ca.key \
      -out front-proxy-ca.crt -subj "/CN=slipway-dev-front-proxy-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr \
      -subj "/CN=front-proxy-client" 2>/dev/null
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key \
      -CAcreateserial -days 3650 -extfile client.ext -out front-proxy-client.crt 2>/dev/null
    rm -f front-proxy-client.csr
    touch .front-proxy
  )
}

# The API server's client certificate for kubelets. Added later than the rest: made when missing,
# so older state directories get it too.
make_kubelet_client_cert() {
  [ -f "$pki/apiserver-kubelet-client.crt" ] && return 0
  (cd "$pki" && printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client.ext)
}

# --- main ---------------------------------------------------------------------------------------
require_packages
use_tools
mkdir -p "$logs" "$pids" "$SLIPWAY_STATE/etcd" "$SLIPWAY_STATE/registry"

if all_healthy; then
  log "the dev cluster is already running"
  [ "$NODE" = none ] || "$here/node-up.sh"
  printf 'export KUBECONFIG=%s\n' "$kubeconfig"
  exit 0
fi
# Something is missing or unhealthy: stop what is left and start everything afresh (the etcd data
# and the registry's storage are kept).
if alive kube-apiserver && [ "$(cat "$SLIPWAY_STATE/control-plane.rev" 2>/dev/null)" != "$CONTROL_PLANE_REV" ]; then
  log "the running control plane was started with other flags: restarting it (its data is kept)"
fi
"$here/cluster-down.sh" --quiet

make_certs
make_front_proxy_certs
make_kubelet_client_cert
write_kubeconfig "$kubeconfig" admin
write_kubeconfig "$SLIPWAY_STATE/controller-manager.kubeconfig" controller-manager
write_kubeconfig "$SLIPWAY_STATE/scheduler.kubeconfig" scheduler
write_kubeconfig "$SLIPWAY_STATE/kwok.kubeconfig" kwok

launch etcd etcd --name slipway-dev --data-dir "$SLIPWAY_STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-cluster "slipway-dev=http://127.0.0.1:$((ETCD_PORT + 10))" \
  --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn

# With a real node the registry listens on every address, so that build pods reach it at the node's
# address on the pod bridge ($NODE_REGISTRY_ADDR); without one, on loopback only.
REGISTRY_BIND=127.0.0.1
[ "$NODE" = none ] || REGISTRY_BIND=0.0.0.0
cat >"$SLIPWAY_STATE/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $SLIPWAY_STATE/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY_BIND:$REGISTRY_PORT
  headers: {X-Content-Type-Options: [nosniff]}
EOF
launch registry docker-registry serve "$SLIPWAY_STATE/registry.yml"

wait_for "etcd to be healthy" 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# Pods on the real node reach the API server through the kubernetes Service, whose endpoint is the
# node's address on the pod bridge (a loopback endpoint is refused): then it listens there too.
API_BIND=127.0.0.1 API_ADVERTISE=127.0.0.1
[ "$NODE" = none ] || API_BIND=0.0.0.0 API_ADVERTISE=$NODE_IP
launch kube-apiserver kube-apiserver \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$API_BIND" --advertise-address "$API_ADVERTISE" --secure-port "$API_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP,Hostname \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --allow-privileged=true \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  --enable-priority-and-fairness=false \
  --enable-admission-plugins PodNodeSelector,PodTolerationRestriction \
  --profiling=false \
  --v 1

wait_for "kube-apiserver to be ready" 60 kubectl --kubeconfig "$kubeconfig" get --raw /readyz

launch kube-controller-manager kube-controller-manager \
  --kubeconfig "$SLIPWAY_STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$SLIPWAY_STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$SLIPWAY_STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=true \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --leader-elect=false \
  --concurrent-gc-syncs 5 \
  --v 1

cat >"$SLIPWAY_STATE/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $SLIPWAY_STATE/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
launch kube-scheduler kube-scheduler --config "$SLIPWAY_STATE/scheduler.yaml" \
  --authentication-kubeconfig "$SLIPWAY_STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$SLIPWAY_STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --v 1

launch kwok kwok --kubeconfig "$SLIPWAY_STATE/kwok.kubeconfig" \
  --config "$DEV_DIR/kwok/stages.yaml" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 10.244.0.0/16 --node-ip 127.0.0.1 \
  --server-address "127.0.0.1:$KWOK_PORT"

# Fake nodes: Node objects kwok manages because of their annotation.
for i in $(seq 1 "$FAKE_NODES"); do
  kubectl --kubeconfig "$kubeconfig" apply --server-side --field-manager slipway-dev -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake}
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    slipway.dev/node: fake
EOF
done

wait_for "the registry to answer" 30 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
wait_for "kwok nodes to be Ready" 60 kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node -l type=kwok --timeout=1s
# Pods cannot be created in a namespace before its default ServiceAccount exists.
wait_for "kube-controller-manager (default service account)" 60 kubectl --kubeconfig "$kubeconfig" get serviceaccount default -n default

echo "$CONTROL_PLANE_REV" >"$SLIPWAY_STATE/control-plane.rev"
[ "$NODE" = none ] || "$here/node-up.sh"

# Dynamic PersistentVolumes, as a cluster's storage gives them: the local-path provisioner (built
# from its Go module, run beside the control plane like kwok). A claim of the default StorageClass
# `local-path` waits for its pod, then gets a directory of that pod's node under
# $SLIPWAY_STATE/volumes, made (and removed with the claim) by a busybox helper pod in the
# namespace local-path-storage.
kubectl --kubeconfig "$kubeconfig" apply --server-side --field-manager slipway-dev -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: '{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$SLIPWAY_STATE/volumes"]}]}'
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      containers:
      - name: helper-pod
        image: $BUSYBOX_IMAGE:latest
        imagePullPolicy: IfNotPresent
EOF
wait_for "kube-controller-manager (local-path-storage's service account)" 60 \
  kubectl --kubeconfig "$kubeconfig" get serviceaccount default -n local-path-storage
launch local-path local-path-provisioner start --kubeconfig "$kubeconfig" \
  --namespace local-path-storage --configmap-name local-path-config --service-account-name default \
  --helper-image "$BUSYBOX_IMAGE:latest" --provisioner-name rancher.io/local-path

cat >"$SLIPWAY_STATE/env" <<EOF
KUBECONFIG=$kubeconfig
SLIPWAY_REGISTRY=127.0.0.1:$REGISTRY_PORT
EOF
log "the dev cluster is up in $((SECONDS - start_time)) s: $FAKE_NODES fake nodes$([ "$NODE" = none ] || echo ", a real node"), registry at 127.0.0.1:$REGISTRY_PORT"
log "logs: $logs"
printf 'export KUBECONFIG=%s\n' "$kubeconfig"
