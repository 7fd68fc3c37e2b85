#!/usr/bin/env bash
# Installs what the dev cluster and the tests need, or names what is missing and how to get it.
# Debian packages through apt-get (as root); the Kubernetes, etcd, kwok and helm binaries are
# built from their Go modules into the cache (dev/build-tools.sh; the kubelet and kube-proxy too,
# unless SLIPWAY_NODE=none).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

# command -> Debian package
declare -A commands=(
  [openssl]=openssl [curl]=curl [git]=git [docker-registry]=docker-registry
  [pkg-config]=pkg-config [cc]=gcc
  [buildah]=buildah [runc]=runc [busybox]=busybox-static [file]=file [jq]=jq
  [sshd]=openssh-server
)
# Libraries the Rust build links (git2's https support uses OpenSSL).
libraries=(libssl-dev zlib1g-dev)
# The real node (dev/node-up.sh): the container runtime, its network plugins, kube-proxy's tools,
# and what builds the pause and busybox images and the catalog's stand-ins (mmdebstrap).
if [ "${SLIPWAY_NODE:-real}" != none ]; then
  commands+=([containerd]=containerd [runc]=runc [iptables]=iptables [conntrack]=conntrack
    [buildah]=buildah [ip]=iproute2 [mmdebstrap]=mmdebstrap)
  libraries+=(containernetworking-plugins busybox-static libc6-dev)
fi
missing=()
for cmd in "${!commands[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${commands[$cmd]}")
done
for pkg in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  debian_install "${missing[@]}"
fi
"$here/build-tools.sh"
[ "${SLIPWAY_NODE:-real}" = none ] || "$here/build-tools.sh" node
