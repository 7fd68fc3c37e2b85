#!/usr/bin/env bash
# Starts the dev cluster's real node against a running control plane: containerd (Debian's, with
# runc and the CNI plugins bridge, host-local and loopback), a kubelet and kube-proxy in iptables
# mode, all built from the pinned Kubernetes module. Idempotent: a healthy node is left alone; a
# node with a dead part is stopped, cleaned and started again. Run as root (cgroups, mounts,
# network namespaces, iptables). cluster-up.sh calls it; dev/node-down.sh undoes it.
#
# The node registers as "real-node" with the label slipway.dev/node=real and the taint
# slipway.dev/node=real:NoSchedule, so only pods that ask for it (that toleration, and usually that
# nodeSelector) run there; everything else keeps landing on kwok's fake nodes.
#
# Everything it makes lives in $SLIPWAY_STATE/node, except what the kernel keeps globally: the
# bridge, cgroups named kubepods, network namespaces in /var/run/netns, iptables chains and two
# sysctls (net.ipv4.ip_forward, net.bridge.bridge-nf-call-iptables), which node-down.sh restores.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

kubeconfig=$SLIPWAY_STATE/kubeconfig
pki=$SLIPWAY_STATE/pki
node=$SLIPWAY_STATE/node
API_PORT=${SLIPWAY_API_PORT:-16443}
SERVICE_CIDR=10.96.0.0/16
start_time=$SECONDS

[ "$(id -u)" = 0 ] ||
  die "the real node needs root (cgroups, mounts, network namespaces, iptables); run as root or start the cluster with NODE=none"
{ [ -f "$kubeconfig" ] && [ -f "$pki/ca.key" ]; } || die "no dev cluster in $SLIPWAY_STATE: run dev/cluster-up.sh"

require_node_packages() {
  local missing=() cmd
  declare -A pkg=([containerd]=containerd [runc]=runc [iptables]=iptables [conntrack]=conntrack
    [buildah]=buildah [gcc]=gcc [ip]=iproute2)
  for cmd in "${!pkg[@]}"; do command -v "$cmd" >/dev/null || missing+=("${pkg[$cmd]}"); done
  for cmd in bridge host-local loopback; do
    [ -x "$CNI_BIN_DIR/$cmd" ] || { missing+=(containernetworking-plugins); break; }
  done
  [ -x /bin/busybox ] || missing+=(busybox-static)
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ] ||
    missing+=(libc6-dev)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]}: install them with your package manager"
  log "installing ${missing[*]} with apt-get"
  apt_install "${missing[@]}"
}

node_components=(containerd kubelet kube-proxy)

node_healthy() {
  local c
  for c in "${node_components[@]}"; do alive "$c" || return 1; done
  kubectl --kubeconfig "$kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

make_node_certs() {
  (
    cd "$pki"
    if [ ! -f "node-$NODE_NAME.crt" ]; then
      printf 'extendedKeyUsage=clientAuth\n' >client.ext
      sign "node-$NODE_NAME" "/O=system:nodes/CN=system:node:$NODE_NAME" client.ext
    fi
    if [ ! -f "kubelet-$NODE_NAME.crt" ] || ! openssl x509 -in "kubelet-$NODE_NAME.crt" -noout -ext subjectAltName |
      grep -q "IP Address:$NODE_IP\b"; then
      printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' "$NODE_IP" "$NODE_NAME" >kubelet.ext
      sign "kubelet-$NODE_NAME" "/CN=$NODE_NAME" kubelet.ext
    fi
    if [ ! -f kube-proxy.crt ]; then
      printf 'extendedKeyUsage=clientAuth\n' >client.ext
      sign kube-proxy "/CN=system:kube-proxy" client.ext
    fi
  )
}

write_configs() {
  local pause
  pause=$(pause_image)
  mkdir -p "$node/cni/net.d" "$node/cni/ipam" "$node/kubelet" "$node/pod-logs"
  # containerd trusts the dev registry over plain http, by both of its names: loopback, and the
  # node's address on the pod bridge (the name builds in pods push to, so images keep one name).
  local addr
  for addr in "$REGISTRY_ADDR" "$NODE_REGISTRY_ADDR"; do
    mkdir -p "$node/containerd/certs.d/$addr"
    cat >"$node/containerd/certs.d/$addr/hosts.toml" <<EOF
server = "http://$addr"

[host."http://$addr"]
  capabilities = ["pull", "resolve", "push"]
EOF
  done
  cat >"$node/containerd/config.toml" <<EOF
version = 2
root = "$node/containerd/root"
state = "$node/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCKET"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  # This sandbox lacks CAP_SYS_RESOURCE, so no process may lower its OOM score below containerd's
  # (the kubelet asks -998 for pod sandboxes): keep scores at or above it.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$SNAPSHOTTER"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$node/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$node/containerd/certs.d"
EOF
  # One bridge with the node's address as gateway; pods get addresses from POD_CIDR.
  cat >"$node/cni/net.d/10-slipway.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "slipway",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$node/cni/ipam"
      }
    }
  ]
}
EOF
  cat >"$node/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine runs cgroup v1, which Kubernetes 1.35 refuses unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
# The API server reaches the kubelet at the node's address (the bridge), with its client
# certificate; anything else needs a token the API server accepts and RBAC allows.
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $((KUBELET_PORT - 2))
tlsCertFile: $pki/kubelet-$NODE_NAME.crt
tlsPrivateKeyFile: $pki/kubelet-$NODE_NAME.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
registerWithTaints:
- {key: slipway.dev/node, value: real, effect: NoSchedule}
podLogsDir: $node/pod-logs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# Other builds share this machine's disk: evict only when it is nearly full.
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
# A dev machine's disk fills and empties (build caches): the node recovers 30 s after pressure ends.
evictionPressureTransitionPeriod: 30s
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
nodeStatusReportFrequency: 10s
maxPods: 60
EOF
  cat >"$node/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $node/kube-proxy.kubeconfig}
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:$((KUBELET_PORT - 1))
healthzBindAddress: 127.0.0.1:$((KUBELET_PORT + 6))
nodePortAddresses: [primary]
# Leave the host's conntrack sysctls and route_localnet alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 0s}
EOF
  write_kubeconfig "$node/kubelet.kubeconfig" "node-$NODE_NAME"
  write_kubeconfig "$node/kube-proxy.kubeconfig" kube-proxy
}

# Sysctls the node needs; their values before are kept so node-down.sh can restore them.
set_sysctls() {
  local key value
  for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do
    [ -f "$node/sysctl.$key" ] || sysctl -n "$key" >"$node/sysctl.$key"
    value=$(sysctl -n "$key")
    [ "$value" = 1 ] || sysctl -qw "$key=1"
  done
}

# The node's address lives on the pod bridge, made before the kubelet starts (the kubelet refuses a
# loopback node address, and the API server must reach it).
make_bridge() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" ||
    ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service addresses lead to the bridge, never out of the machine: kube-proxy's rules rewrite
  # them to pod addresses; one without rules (yet) goes nowhere.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
}

# --- main ---------------------------------------------------------------------------------------
use_tools
"$here/build-tools.sh" node
PATH="$(tool_dir node):$PATH"
require_node_packages

owner=$(node_owner)
owner_runs() {
  local c pid
  for c in containerd kubelet kube-proxy; do
    pid=$(cat "$owner/pids/$c.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && return 0
  done
  return 1
}
if [ -n "$owner" ] && [ "$owner" != "$SLIPWAY_STATE" ] && owner_runs; then
  die "the dev cluster in $owner has this machine's real node; stop it first (SLIPWAY_STATE=$owner dev/node-down.sh) or start this cluster with NODE=none"
fi
if node_healthy; then
  log "the real node $NODE_NAME is already running"
  exit 0
fi
"$here/node-down.sh" --quiet
mkdir -p "$(dirname "$NODE_OWNER_FILE")"
echo "$SLIPWAY_STATE" >"$NODE_OWNER_FILE"

mkdir -p "$node" "$SLIPWAY_STATE/logs" "$SLIPWAY_STATE/pids"
"$here/node-images.sh"
make_node_certs
write_configs
set_sysctls
make_bridge

launch containerd containerd --config "$node/containerd/config.toml"
wait_for "containerd to answer" 30 ctr --address "$CONTAINERD_SOCKET" version
# The sandbox image is pulled before the kubelet asks, so the first pod does not wait for it.
ctr --address "$CONTAINERD_SOCKET" -n k8s.io images pull --plain-http --hosts-dir "$node/containerd/certs.d" \
  "$(pause_image)" >/dev/null

launch kubelet kubelet --config "$node/kubelet.yaml" --kubeconfig "$node/kubelet.kubeconfig" \
  --root-dir "$node/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "slipway.dev/node=real,type=real" --v 1
launch kube-proxy kube-proxy --config "$node/kube-proxy.yaml" --v 1

wait_for "kubelet to make $NODE_NAME Ready" 90 node_healthy
# An API server started by an older cluster-up.sh cannot reach this kubelet (logs, exec).
if alive kube-apiserver && ! tr '\0' ' ' <"/proc/$(cat "$SLIPWAY_STATE/pids/kube-apiserver.pid")/cmdline" |
  grep -q -- '--kubelet-client-certificate'; then
  log "warning: the API server runs without the kubelet client certificate, so logs and exec of pods on"
  log "  $NODE_NAME fail: restart the dev cluster once (make cluster-down && make cluster-up)"
fi
log "the real node $NODE_NAME is up in $((SECONDS - start_time)) s (pods on $POD_CIDR, bridge $BRIDGE)"
