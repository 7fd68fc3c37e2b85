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
    gateway-api) pattern='sigs.k8s.io/gateway-api' ;;
    local-path) pattern='github.com/rancher/local-path-provisioner' ;;
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
  local sets=(etcd control-plane kwok helm local-path) s
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

# Installs Debian packages: through apt-get as root, or with sudo; otherwise names them and how to
# get them.
debian_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing $*"
    apt_install "$@"
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    log "installing $* (sudo)"
    sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
  else
    die "missing $*: install them with your package manager (Debian/Ubuntu: apt-get install $*)"
  fi
}

# mdbook builds the book (docs/); dev/docs-tools.sh installs this version into the cache.
MDBOOK_VERSION=0.5.4
mdbook_dir() { echo "$SLIPWAY_CACHE/bin/mdbook-$MDBOOK_VERSION"; }

# --- processes of the dev cluster: one pid file and one log each, in $SLIPWAY_STATE ----------------
alive() { [ -f "$SLIPWAY_STATE/pids/$1.pid" ] && kill -0 "$(cat "$SLIPWAY_STATE/pids/$1.pid")" 2>/dev/null; }

# Starts a component in its own session, recording its pid; output goes to its log.
launch() {
  local name=$1; shift
  if alive "$name"; then return 0; fi
  mkdir -p "$SLIPWAY_STATE/pids" "$SLIPWAY_STATE/logs"
  : >"$SLIPWAY_STATE/logs/$name.log"
  setsid "$@" >>"$SLIPWAY_STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$SLIPWAY_STATE/pids/$name.pid"
}

# Runs a command until it succeeds; after `seconds`, shows the log of the component named first in
# `what` and fails.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${seconds}s waiting for $what; last log lines:"
      local name=${what%% *}
      tail -n 20 "$SLIPWAY_STATE/logs/$name.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

# Stops a component started by `launch`: TERM, five seconds' grace, then KILL. Says whether it ran.
stop_component() {
  local file=$SLIPWAY_STATE/pids/$1.pid pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  rm -f "$file"
  kill -0 "$pid" 2>/dev/null || return 1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  return 0
}

# Signs a certificate with the dev cluster's CA (run inside the pki directory).
sign() {
  local name=$1 subject=$2 ext=$3
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr"
}

# --- the real node (dev/node-up.sh) -------------------------------------------------------------
REGISTRY_ADDR=127.0.0.1:${SLIPWAY_REGISTRY_PORT:-15000}
# The pod sandbox image, built from dev/node/pause.c; its tag follows the source.
pause_image() { echo "$REGISTRY_ADDR/slipway/pause:$(sha256sum "$DEV_DIR/node/pause.c" | cut -c1-12)"; }
# A busybox image from Debian's busybox-static, for tests and examples on the real node.
# shellcheck disable=SC2034 # read by the scripts that source this file
BUSYBOX_IMAGE=$REGISTRY_ADDR/slipway/busybox
# shellcheck disable=SC2034 # read by the scripts that source this file
NODE_NAME=${SLIPWAY_NODE_NAME:-real-node}
# Pod addresses of the real node (outside kwok's 10.244.0.0/16); its first address is the node's,
# on the bridge.
POD_CIDR=${SLIPWAY_POD_CIDR:-10.250.0.0/24}
NODE_IP=${POD_CIDR%.*/*}.1
# The registry as pods on the real node (and the node's containerd) reach it: the node's address.
# shellcheck disable=SC2034 # read by the scripts that source this file
NODE_REGISTRY_ADDR=$NODE_IP:${SLIPWAY_REGISTRY_PORT:-15000}
# shellcheck disable=SC2034 # read by the scripts that source this file
BRIDGE=${SLIPWAY_NODE_BRIDGE:-slipway0}
# shellcheck disable=SC2034 # read by the scripts that source this file
KUBELET_PORT=${SLIPWAY_KUBELET_PORT:-10250}
# shellcheck disable=SC2034 # read by the scripts that source this file
CONTAINERD_SOCKET=$SLIPWAY_STATE/node/containerd.sock
# shellcheck disable=SC2034 # read by the scripts that source this file
CNI_BIN_DIR=${SLIPWAY_CNI_BIN_DIR:-/usr/lib/cni}
# overlayfs where the kernel allows it; SLIPWAY_SNAPSHOTTER=native copies layers instead.
# shellcheck disable=SC2034 # read by the scripts that source this file
SNAPSHOTTER=${SLIPWAY_SNAPSHOTTER:-overlayfs}
# One real node per machine (the bridge, the kubelet's ports, kube-proxy's chains and the kubepods
# cgroups are global): this file names the state directory of the cluster whose node it is.
NODE_OWNER_FILE=/run/slipway-dev/real-node
node_owner() { cat "$NODE_OWNER_FILE" 2>/dev/null || true; }

# A kubeconfig for the dev cluster that authenticates with the client certificate $pki/USER.crt
# (the caller sets pki and API_PORT).
# shellcheck disable=SC2154 # pki is the caller's
write_kubeconfig() {
  local file=$1 user=$2
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: slipway-dev
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: slipway-dev
  context: {cluster: slipway-dev, user: $user, namespace: default}
current-context: slipway-dev
EOF
}
