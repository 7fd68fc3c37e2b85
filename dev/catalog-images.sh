#!/usr/bin/env bash
# Builds the catalog's stand-in images for the dev cluster and pushes them to the dev registry:
# builder and database images with the same contracts as the sclorg images OpenShift's samples
# use (paths, labels, user, environment, S2I scripts, probe commands), made from Debian packages
# because nothing can be pulled from the internet here. Each image is a directory of dev/catalog/
# (a Containerfile and the files it copies); all of them start from `base`, a Debian root
# filesystem made by mmdebstrap.
#
#   dev/catalog-images.sh [IMAGE...]     (all of dev/catalog/*/ by default)
#
# Every image is tagged with a hash of its directory (and its base's tag), and built only when
# the registry lacks that tag: a warm run takes seconds. Each is also pushed as :latest, which
# the chart's catalog ImageStreams import on the dev cluster (dev/slipway-values.yaml).
#   REGISTRY (default 127.0.0.1:15000), SLIPWAY_REBUILD_IMAGES=1 rebuilds everything.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"
registry=${REGISTRY:-127.0.0.1:${SLIPWAY_REGISTRY_PORT:-15000}}
catalog=$here/catalog
prefix=$registry/slipway-catalog
command -v buildah >/dev/null || die "buildah is missing: make prereqs installs it (Debian: apt-get install buildah)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: make prereqs installs it (Debian: apt-get install mmdebstrap)"
[ -f /etc/ssl/certs/ca-certificates.crt ] || die "no CA bundle at /etc/ssl/certs/ca-certificates.crt (Debian: apt-get install ca-certificates)"
export BUILDAH_ISOLATION=chroot

in_registry() {
  [ -z "${SLIPWAY_REBUILD_IMAGES:-}" ] || return 1
  curl -fs -o /dev/null -I \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/slipway-catalog/$1/manifests/$2"
}

# The digest the registry gives a tag (empty when it has none).
digest_of() {
  curl -fsI -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/slipway-catalog/$1/manifests/$2" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

# The content hash of an image's directory (paths, modes and contents), plus its base's tag.
content_tag() {
  local dir=$1 base_tag=${2:-}
  { echo "$base_tag"
    # shellcheck disable=SC2016 # the inner script's own variables
    (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z |
      xargs -0 sh -c 'for f; do stat -c "%n %a" "$f"; sha256sum "$f"; done' sh)
  } | sha256sum | cut -c1-16
}

# The Debian suite the base is made from; the packages come from this machine's Debian mirror.
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# Runs a build step with its output in $logs/NAME.log; on failure, says which step failed and
# shows the end of that log (where apt's, pip's or npm's own error is).
logs=$SLIPWAY_STATE/logs/catalog
mkdir -p "$logs"
logged() {
  local name=$1; shift
  if ! "$@" >"$logs/$name.log" 2>&1; then
    tail -n 25 "$logs/$name.log" >&2
    die "building slipway-catalog/$name failed (above: the end of $logs/$name.log; the Debian mirror, PyPI and npm must be reachable while the images are built)"
  fi
}

build_base() {
  local tag=$1 context
  context=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$context'" RETURN
  log "catalog: making the Debian $suite root filesystem of slipway-catalog/base"
  # minbase plus what the sclorg base image carries for S2I scripts (tar, gzip, find, ps);
  # documentation and translations are left out.
  logged base mmdebstrap --variant=minbase --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --include=ca-certificates,procps,findutils,tar,gzip,curl \
    "$suite" "$context/rootfs.tar" "$mirror"
  cp -a "$catalog/base/." "$context/"
  logged base buildah bud --layers=false -f "$context/Containerfile" -t "$prefix/base:$tag" "$context"
}

# Images that fetch their dependencies when built (pip, npm) do so with this machine's CA bundle
# (build-ca.crt in the context; a proxy's CA may be in it), and remove it: it is not part of the
# image's content hash.
build_image() {
  local name=$1 tag=$2 base_tag=$3 context
  log "catalog: building slipway-catalog/$name"
  context=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$context'" RETURN
  cp -a "$catalog/$name/." "$context/"
  cp /etc/ssl/certs/ca-certificates.crt "$context/build-ca.crt"
  logged "$name" buildah bud --layers=false --build-arg "BASE=$prefix/base:$base_tag" \
    -f "$context/Containerfile" -t "$prefix/$name:$tag" "$context"
}

push() {
  local name=$1 tag=$2
  buildah push -q --tls-verify=false "$prefix/$name:$tag" "docker://$prefix/$name:$tag"
  buildah push -q --tls-verify=false "$prefix/$name:$tag" "docker://$prefix/$name:latest"
}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in "$catalog"/*/; do
    d=${d%/}; [ "$(basename "$d")" = base ] || names+=("$(basename "$d")")
  done
fi
started=$SECONDS
base_tag=$(content_tag "$catalog/base" "$suite")
if ! in_registry base "$base_tag"; then
  # The base is needed locally to build the others: pull it back when only the registry has it.
  build_base "$base_tag"
  push base "$base_tag"
elif ! buildah inspect "$prefix/base:$base_tag" >/dev/null 2>&1; then
  buildah pull -q --tls-verify=false "docker://$prefix/base:$base_tag" >/dev/null
fi
for name in "${names[@]}"; do
  [ -f "$catalog/$name/Containerfile" ] || die "no image $name in dev/catalog/"
  tag=$(content_tag "$catalog/$name" "$base_tag")
  if in_registry "$name" "$tag"; then
    # Keep :latest on this content (another checkout may have pushed other content).
    [ "$(digest_of "$name" latest)" = "$(digest_of "$name" "$tag")" ] && continue
    buildah pull -q --tls-verify=false "docker://$prefix/$name:$tag" >/dev/null
    buildah push -q --tls-verify=false "$prefix/$name:$tag" "docker://$prefix/$name:latest"
    continue
  fi
  build_image "$name" "$tag" "$base_tag"
  push "$name" "$tag"
  log "catalog: pushed $prefix/$name:$tag (and :latest)"
done
log "catalog: ${#names[@]} images ready in $((SECONDS - started)) s"
