# Shared helpers for the dev/ scripts. Sourced, never run.
# shellcheck shell=bash

SLIPWAY_CACHE=${SLIPWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway}
# Where the running dev cluster keeps its state, certificates, logs and kubeconfig.
SLIPWAY_STATE=${SLIPWAY_STATE:-$SLIPWAY_CACHE/cluster}
DEV_DIR=${DEV_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# Bump when the build flags change, so the cache key changes with them.
TOOLS_BUILD_REV=1

log() { printf '[dev] %s\n' "$*" >&2; }
die() { printf '[dev] error: %s\n' "$*" >&2; exit 1; }

# Go builds every binary of the dev cluster. kwok needs Go 1.26; an older Go fetches the right
# toolchain through the module proxy by itself (GOTOOLCHAIN=auto), so only a missing Go is fatal.
require_go() {
  if ! command -v go >/dev/null 2>&1; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed: install Go 1.25 or newer (https://go.dev/doc/install) and put it on PATH"
  export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
}

# The version a tool module pins, read from its go.mod (the single source of truth).
module_version() {
  local mod=$1 pattern
  case $mod in
    kubernetes) pattern='k8s.io/kubernetes' ;;
    etcd) pattern='go.etcd.io/etcd/server/v3' ;;
    kwok) pattern='sigs.k8s.io/kwok' ;;
    helm) pattern='helm.sh/helm/v3' ;;
    *) die "unknown tool module '$mod'" ;;
  esac
  awk -v p="$pattern" '$1 == p && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == p {print $3; exit}' \
    "$DEV_DIR/go/$mod/go.mod"
}

# The cache directory of one tool set: its version plus a hash of what pins it.
tool_dir() {
  local set=$1 mod
  case $set in
    control-plane|node) mod=kubernetes ;;
    *) mod=$set ;;
  esac
  local hash
  hash=$( { echo "$TOOLS_BUILD_REV"; cat "$DEV_DIR/go/$mod"/go.mod "$DEV_DIR/go/$mod"/go.sum \
    "$DEV_DIR/go/$mod"/*.go 2>/dev/null; } | sha256sum | cut -c1-12)
  echo "$SLIPWAY_CACHE/bin/$set-$(module_version "$mod")-$hash"
}

# Puts every built tool set on PATH (building what is missing).
use_tools() {
  local sets=(etcd control-plane kwok helm) s
  "$DEV_DIR/build-tools.sh" "${sets[@]}"
  for s in "${sets[@]}"; do PATH="$(tool_dir "$s"):$PATH"; done
  export PATH
}

# Installs Debian packages, refreshing the package lists first when they are missing or stale.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
    apt-get update -qq >&2 || die "apt-get update failed; install $* by hand"
  fi
  apt-get install -y -qq --no-install-recommends "$@" >&2 || die "apt-get install $* failed; install them by hand"
}
