#!/usr/bin/env bash
# Makes the dev cluster's real node trust the integrated registry (the chart's `registry`, at
# dev/slipway-values.yaml's fixed address): its containerd gets a hosts.toml for the registry with
# the CA the chart made (the Secret slipway-registry-tls, key ca.crt), so kubelets pull over TLS
# with the projects' pull secrets. containerd reads hosts.toml at each pull: no restart. On a real
# cluster, each node needs the same (see charts/slipway/README.md).
#   dev/registry-trust.sh [HOST:PORT]      (default 10.96.0.50:5000; run after helm install)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"
host=${1:-10.96.0.50:5000}
namespace=${SLIPWAY_NAMESPACE:-slipway-system}
kubectl=$(tool_dir control-plane)/kubectl
export KUBECONFIG=${KUBECONFIG:-$SLIPWAY_STATE/kubeconfig}
dir=$SLIPWAY_STATE/node/containerd/certs.d/$host
[ -d "$SLIPWAY_STATE/node/containerd" ] || die "no real node in $SLIPWAY_STATE (make cluster-up with NODE=real)"
ca=$("$kubectl" -n "$namespace" get secret slipway-registry-tls -o jsonpath='{.data.ca\.crt}' | base64 -d) ||
  die "no Secret $namespace/slipway-registry-tls: install the chart with registry.enabled=true first"
[ -n "$ca" ] || die "the Secret $namespace/slipway-registry-tls has no ca.crt"
mkdir -p "$dir"
printf '%s\n' "$ca" >"$dir/ca.crt.new" && mv "$dir/ca.crt.new" "$dir/ca.crt"
cat >"$dir/hosts.toml.new" <<TOML
server = "https://$host"

[host."https://$host"]
  capabilities = ["pull", "resolve"]
  ca = "$dir/ca.crt"
TOML
mv "$dir/hosts.toml.new" "$dir/hosts.toml"
log "the real node trusts the integrated registry $host (CA from $namespace/slipway-registry-tls)"
