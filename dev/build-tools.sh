#!/usr/bin/env bash
# Builds the dev cluster's binaries (Kubernetes, etcd, kwok, helm) from their published Go modules
# (and copies the Gateway API's CRDs out of theirs: the set gateway-api)
# into a cache outside the repository, keyed by version and by a hash of the pinning module, so a
# second run rebuilds nothing. Prints the directory that holds each tool set.
#
#   dev/build-tools.sh [control-plane|node|etcd|kwok|helm|local-path|gateway-api|all]...
#   (default and all: etcd, control-plane, kwok, helm, local-path)
#
# Environment: SLIPWAY_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/slipway).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

require_go

# The Go build cache and module cache are reused between tool sets; keep them outside the repo too.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

build_set() {
  local set=$1 mod dir version out
  case $set in
    control-plane|node) mod=kubernetes ;;
    *) mod=$set ;;
  esac
  dir="$here/go/$mod"
  out=$(tool_dir "$set")
  if [ -f "$out/.complete" ]; then
    return 0
  fi
  version=$(module_version "$mod")
  log "building $set $version into $out"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  local start=$SECONDS
  case $set in
    control-plane|node)
      local minor=${version#v1.}; minor=${minor%%.*}
      local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version
        -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor
        -X k8s.io/component-base/version.gitTreeState=clean
        -X k8s.io/client-go/pkg/version.gitVersion=$version"
      local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
      [ "$set" = node ] && cmds=(kubelet kube-proxy)
      (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" \
        "${cmds[@]/#/k8s.io/kubernetes/cmd/}")
      ;;
    etcd)
      (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" .)
      ;;
    kwok)
      (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)
      ;;
    helm)
      (cd "$dir" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
        -o "$out.tmp/helm" helm.sh/helm/v3/cmd/helm)
      ;;
    local-path)
      (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/local-path-provisioner" \
        github.com/rancher/local-path-provisioner)
      ;;
    gateway-api)
      local src
      src=$(cd "$dir" && go mod download -json sigs.k8s.io/gateway-api | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
      [ -d "$src/config/crd/standard" ] || die "the gateway-api module has no config/crd/standard (at '$src')"
      cp "$src"/config/crd/standard/*.yaml "$out.tmp/"
      chmod u+w "$out.tmp"/*.yaml
      ;;
    *) die "unknown tool set '$set' (control-plane, node, etcd, kwok, helm, local-path, gateway-api, all)" ;;
  esac
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "built $set in $((SECONDS - start)) s"
}

sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(all)
for s in "${sets[@]}"; do
  if [ "$s" = all ]; then
    for t in etcd control-plane kwok helm local-path; do build_set "$t"; done
  else
    build_set "$s"
  fi
done
