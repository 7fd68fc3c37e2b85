#!/usr/bin/env bash
# Builds the slipway-buildah image, in which Docker-strategy build pods run `slipway-builder
# docker`: this machine's buildah (Debian's package) with exactly the shared libraries it links,
# the containers configuration it reads (vfs storage, chroot isolation) and CA certificates, on a
# scratch base — no shell, no package manager, nothing pulled from the internet. Pushes it to the
# dev registry (or REGISTRY) as slipway/slipway-buildah:TAG (dev/images.sh calls it with its two
# tags, so that the chart's image.tag names this image too).
#   dev/buildah-image.sh [TAG...]      (TAG: the workspace version by default)
# The build pod runs it as root with the privileges buildah needs (operator/src/build/pod.rs).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"
root=$(cd "$here/.." && pwd)
registry=${REGISTRY:-127.0.0.1:${SLIPWAY_REGISTRY_PORT:-15000}}
tags=("$@")
[ ${#tags[@]} -gt 0 ] || tags=("$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)")
buildah=$(command -v buildah) || die "buildah is missing: make prereqs installs it (Debian: apt-get install buildah)"
[ -f /etc/ssl/certs/ca-certificates.crt ] || die "no CA bundle at /etc/ssl/certs/ca-certificates.crt (Debian: apt-get install ca-certificates)"
[ -f /etc/containers/policy.json ] || die "no /etc/containers/policy.json (Debian: apt-get install golang-github-containers-common)"

export BUILDAH_ISOLATION=chroot
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs"/{usr/bin,etc/containers,etc/ssl/certs,usr/share/containers,tmp,var/tmp,var/lib/containers,run/containers}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
cp "$buildah" "$rootfs/usr/bin/buildah"
# The dynamic loader and every library buildah links (resolved through their symlinks).
ldd "$buildah" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
  while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
# Debian keeps the libraries under /lib; /lib64 holds the loader's usual path.
[ -e "$rootfs/lib64/ld-linux-x86-64.so.2" ] || die "ldd did not name the loader /lib64/ld-linux-x86-64.so.2"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
cp /etc/containers/policy.json "$rootfs/etc/containers/"
for f in containers.conf seccomp.json; do
  [ ! -f "/usr/share/containers/$f" ] || cp "/usr/share/containers/$f" "$rootfs/usr/share/containers/"
done
cat >"$rootfs/etc/containers/storage.conf" <<'EOF'
# vfs: no overlay mounts inside the build pod (plain copies; slower, but needs no fuse or
# kernel overlay support inside a container).
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
# slipway-builder writes its own registries.conf (CONTAINERS_REGISTRIES_CONF) for each build.
printf 'unqualified-search-registries = []\n' >"$rootfs/etc/containers/registries.conf"
printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"
mkdir -p "$rootfs/root"
cp "$here/images/Containerfile.buildah" "$context/Containerfile"

ref="$registry/slipway/slipway-buildah:${tags[0]}"
version=$("$buildah" --version | awk '{print $3}')
buildah bud -q --layers=false --build-arg BUILDAH_VERSION="$version" -f "$context/Containerfile" \
  -t "$ref" "$context" >/dev/null
for tag in "${tags[@]}"; do
  buildah push -q --tls-verify=false "$ref" "docker://$registry/slipway/slipway-buildah:$tag"
done
log "pushed $registry/slipway/slipway-buildah:{$(IFS=,; echo "${tags[*]}")} (buildah $version, $(du -sh "$rootfs" | cut -f1) unpacked)"
