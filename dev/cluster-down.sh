#!/usr/bin/env bash
# Stops every process the dev cluster started, by the process ids cluster-up recorded, and the real
# node with what it made in the kernel (dev/node-down.sh).
# Idempotent. The state (etcd data, registry storage, certificates) stays for the next start;
# `cluster-down.sh --purge` removes it too.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

quiet=false purge=false
for arg in "$@"; do
  case $arg in
    --quiet) quiet=true ;;
    --purge) purge=true ;;
    *) die "unknown option '$arg' (--quiet, --purge)" ;;
  esac
done

pids=$SLIPWAY_STATE/pids
stopped=()
# The real node first, while the API server still answers (it deletes its Node object).
if $quiet; then "$here/node-down.sh" --quiet; else "$here/node-down.sh"; fi
# Reverse start order: clients before the API server, the API server before etcd.
for name in node local-path kwok kube-scheduler kube-controller-manager kube-apiserver registry etcd; do
  file=$pids/$name.pid
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    stopped+=("$name")
  fi
  rm -f "$file"
done
if $purge; then
  rm -rf "$SLIPWAY_STATE"
fi
if ! $quiet; then
  if [ ${#stopped[@]} -gt 0 ]; then log "stopped ${stopped[*]}"; else log "nothing was running"; fi
  $purge && log "removed $SLIPWAY_STATE"
fi
exit 0
