#!/usr/bin/env bash
# Builds the images the real node needs and pushes them to the dev registry, since nothing can be
# pulled from the internet: the pod sandbox ("pause", a static program compiled from
# dev/node/pause.c) and busybox (Debian's busybox-static, every applet linked). Quick when the
# registry already has them.
#
#   dev/node-images.sh        (SLIPWAY_REGISTRY_PORT, default 15000; SLIPWAY_REBUILD_IMAGES=1 forces)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

in_registry() {
  [ -z "${SLIPWAY_REBUILD_IMAGES:-}" ] || return 1
  local ref=${1#"$REGISTRY_ADDR"/} repo tag
  repo=${ref%:*} tag=${ref##*:}
  curl -fs -o /dev/null -I \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/$repo/manifests/$tag"
}

# Builds an image from a root filesystem tree (entrypoint, command) and pushes it under every
# given reference.
push_tree() {
  local tree=$1 entrypoint=$2 cmd=$3; shift 3
  local ctr ref
  tar -C "$tree" -cf "$tree.tar" .
  ctr=$(buildah from --quiet scratch)
  # shellcheck disable=SC2064
  trap "buildah rm $ctr >/dev/null 2>&1 || true" RETURN
  buildah add --quiet "$ctr" "$tree.tar" / >/dev/null
  buildah config --os linux --arch amd64 --label org.opencontainers.image.source=slipway-dev "$ctr"
  # One at a time: setting the entrypoint clears the command.
  [ -z "$entrypoint" ] || buildah config --entrypoint "$entrypoint" "$ctr"
  [ -z "$cmd" ] || buildah config --cmd "$cmd" "$ctr"
  buildah commit --quiet --format oci --rm "$ctr" "$1" >/dev/null
  for ref in "$@"; do
    [ "$ref" = "$1" ] || buildah tag "$1" "$ref"
    buildah push --quiet --tls-verify=false "$ref" "docker://$ref" >/dev/null
  done
  log "pushed $*"
}

command -v buildah >/dev/null || die "buildah is missing: run dev/prereqs.sh (apt-get install buildah)"
# The image holds busybox alone, so it must be the static build.
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } ||
  die "a static /bin/busybox is missing: run dev/prereqs.sh (apt-get install busybox-static)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pause=$(pause_image)
if ! in_registry "$pause"; then
  mkdir -p "$work/pause"
  gcc -static -Os -s -Wall -Wextra -o "$work/pause/pause" "$here/node/pause.c" ||
    die "compiling the pause program failed (a static C library is needed: apt-get install libc6-dev)"
  push_tree "$work/pause" '["/pause"]' '' "$pause"
fi

version=$(/bin/busybox 2>&1 | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')
[ -n "$version" ] || die "cannot tell the version of /bin/busybox"
if ! in_registry "$BUSYBOX_IMAGE:$version" || ! in_registry "$BUSYBOX_IMAGE:latest"; then
  root=$work/busybox
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www" "$root/root"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  push_tree "$root" '' /bin/sh "$BUSYBOX_IMAGE:$version" "$BUSYBOX_IMAGE:latest"
fi
