#!/usr/bin/env bash
# Stops the real node that dev/node-up.sh started and removes what it left in the kernel: its
# containers and their processes, mounts under $SLIPWAY_STATE/node, network namespaces, the pod
# bridge, kube-proxy's iptables chains, the kubepods cgroups, and the sysctls it changed. The
# Node object is deleted while the API server still answers, so the node's pods are cleaned up and
# the next start registers it afresh. Image layers stay for the next start. Idempotent.
#
#   dev/node-down.sh [--quiet]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

quiet=false
for arg in "$@"; do
  case $arg in
    --quiet) quiet=true ;;
    *) die "unknown option '$arg' (--quiet)" ;;
  esac
done
node=$SLIPWAY_STATE/node
[ -d "$node" ] || exit 0
[ "$(id -u)" = 0 ] || die "stopping the real node needs root (mounts, network namespaces, iptables)"
PATH="$(tool_dir node):$(tool_dir control-plane):$PATH"
stopped=()
owner=$(node_owner)
# Another cluster's node holds the machine-wide parts: only this cluster's own processes and
# files are cleaned, never the bridge, the chains or the cgroups that node uses.
mine=true
[ -z "$owner" ] || [ "$owner" = "$SLIPWAY_STATE" ] || mine=false

stop_component kubelet && stopped+=(kubelet)
stop_component kube-proxy && stopped+=(kube-proxy)

# The Node object goes while the API server answers; pod garbage collection removes its pods.
if [ -f "$SLIPWAY_STATE/kubeconfig" ] && command -v kubectl >/dev/null; then
  kubectl --kubeconfig "$SLIPWAY_STATE/kubeconfig" --request-timeout 5s delete node "$NODE_NAME" \
    --ignore-not-found --wait=false >/dev/null 2>&1 || true
fi

# Containers: kill every task, remember the sandboxes' network namespaces, remove the containers.
netns=()
if alive containerd; then
  ctr=(ctr --address "$CONTAINERD_SOCKET" -n k8s.io)
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    while read -r path; do netns+=("$path"); done < <("${ctr[@]}" containers info "$id" 2>/dev/null |
      grep -o '"/var/run/netns/cni-[0-9a-f-]*"' | tr -d '"' || true)
    "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
    "${ctr[@]}" containers delete "$id" >/dev/null 2>&1 || true
  done
fi
stop_component containerd && stopped+=(containerd)

if $mine; then
  # Whatever still runs in the pods' cgroups (a task containerd did not kill) is killed, then the
  # cgroups go, deepest first.
  for hierarchy in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$hierarchy" ] || continue
    # shellcheck disable=SC2038 # what goes through xargs is process ids, not file names
    find "$hierarchy" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  for hierarchy in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$hierarchy" ] || continue
    for _ in 1 2 3 4 5; do
      find "$hierarchy" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$hierarchy" ] || break
      sleep 0.2
    done
  done
fi

# Mounts under the node's directory (kubelet volumes, its rshared root, container root
# filesystems, sandbox /dev/shm), deepest first.
unmount_under() {
  local prefix=$1 target
  awk -v p="$prefix" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r target; do umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true; done
}
unmount_under "$node/"
for path in "${netns[@]}"; do
  umount "$path" 2>/dev/null || true
  rm -f "$path"
done

if $mine; then
  # The network: the bridge (its pods' veths went with their namespaces), the addresses handed out,
  # kube-proxy's chains and the kubelet's.
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$node/cni/ipam"
  if [ -d "$(tool_dir node)" ]; then
    kube-proxy --cleanup >/dev/null 2>&1 || true
  fi
  for hook in INPUT OUTPUT; do
    while iptables -t filter -D "$hook" -j KUBE-FIREWALL 2>/dev/null; do :; done
  done
  for table in mangle nat filter; do
    for chain in KUBE-KUBELET-CANARY KUBE-PROXY-CANARY KUBE-IPTABLES-HINT KUBE-FIREWALL; do
      { iptables -t "$table" -F "$chain" 2>/dev/null && iptables -t "$table" -X "$chain" 2>/dev/null; } || true
    done
  done

  # The sysctls node-up changed, back to their values before.
  for file in "$node"/sysctl.*; do
    [ -f "$file" ] || continue
    sysctl -qw "${file#"$node"/sysctl.}=$(cat "$file")" 2>/dev/null || true
    rm -f "$file"
  done
  rm -f "$NODE_OWNER_FILE"
fi

# Container log links the kubelet made in /var/log/containers for this node's pods.
find /var/log/containers -maxdepth 1 -type l -lname "$node/*" -delete 2>/dev/null || true
# The runtime state of containers that are gone (images and layers stay in containerd/root).
rm -rf "$node/containerd/state" "$node/containerd/root/io.containerd.grpc.v1.cri/sandboxes" \
  "$node/containerd/root/io.containerd.grpc.v1.cri/containers" "$node/kubelet/pods" "$node/pod-logs"

if ! $quiet; then
  if [ ${#stopped[@]} -gt 0 ]; then log "stopped ${stopped[*]} of the real node"; else log "the real node was not running"; fi
fi
exit 0
