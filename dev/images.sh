#!/usr/bin/env bash
# Builds the images of slipway-operator, slipway-webhook and slipway-builder with buildah from
# dev/images/Containerfile, and slipway-buildah (dev/buildah-image.sh), and pushes them to the dev
# registry (or REGISTRY).
#   dev/images.sh [TAG]      (TAG: the workspace version by default)
# The binaries are static (glibc linked statically, OpenSSL and zlib from their archives), so the
# images need no base image: nothing is pulled from the internet.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"
root=$(cd "$here/.." && pwd)
registry=${REGISTRY:-127.0.0.1:${SLIPWAY_REGISTRY_PORT:-15000}}
tag=${1:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)}
command -v buildah >/dev/null || die "buildah is missing: make prereqs installs it (Debian: apt-get install buildah)"
[ -f /etc/ssl/certs/ca-certificates.crt ] || die "no CA bundle at /etc/ssl/certs/ca-certificates.crt (Debian: apt-get install ca-certificates)"

target=x86_64-unknown-linux-gnu
log "building static binaries (release)"
(
  cd "$root"
  export OPENSSL_STATIC=1 LIBZ_SYS_STATIC=1
  # --target keeps crt-static off build scripts and proc macros.
  RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --target "$target" \
    -p slipway-operator -p slipway-webhook -p slipway-builder \
    --bin slipway-operator --bin slipway-webhook --bin slipway-builder
)
export BUILDAH_ISOLATION=chroot
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp /etc/ssl/certs/ca-certificates.crt "$here/images/Containerfile" "$context/"
printf 'root:x:0:0:root:/:/sbin/nologin\nslipway:x:65532:65532:slipway:/:/sbin/nologin\n' >"$context/passwd"
printf 'root:x:0:\nslipway:x:65532:\n' >"$context/group"
# Besides TAG, every image gets a tag naming this build (the binaries' digest), written to
# $SLIPWAY_STATE/images.tag: installing with it makes the pods run exactly these binaries (a node
# that has pulled TAG before would keep its copy).
build_tag="$tag-$(cat "$root/target/$target/release/"slipway-{operator,webhook,builder} | sha256sum | cut -c1-12)"
for binary in slipway-operator slipway-webhook slipway-builder; do
  bin="$root/target/$target/release/$binary"
  if file "$bin" | grep -q 'dynamically linked'; then die "$bin is not static"; fi
  cp "$bin" "$context/"
  ref="$registry/slipway/$binary:$tag"
  buildah bud -q --layers=false --build-arg BINARY="$binary" -f "$context/Containerfile" \
    -t "$ref" "$context" >/dev/null
  # An exec-form ENTRYPOINT cannot take the build argument: set it on the built image.
  c=$(buildah from -q "$ref")
  buildah config --entrypoint "[\"/usr/local/bin/$binary\"]" --cmd '' "$c"
  buildah commit -q --rm "$c" "$ref" >/dev/null
  buildah push -q --tls-verify=false "$ref" "docker://$ref"
  buildah push -q --tls-verify=false "$ref" "docker://$registry/slipway/$binary:$build_tag"
  log "pushed $ref and :$build_tag ($(du -h "$bin" | cut -f1) binary)"
  rm -f "$context/$binary"
done

# The sample S2I builder (examples/apps/s2i-busybox), which the demo and the end-to-end test build
# with; rebuilt only when missing.
builder_ref="$registry/slipway/s2i-busybox:latest"
if ! curl -fs -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
  "http://$registry/v2/slipway/s2i-busybox/manifests/latest"; then
  "$root/examples/apps/s2i-busybox/build.sh" "$builder_ref" >/dev/null
  log "pushed $builder_ref"
fi
# The image Docker-strategy builds run in (this machine's buildah on a scratch base).
"$here/buildah-image.sh" "$tag" "$build_tag"
echo "$build_tag" >"$SLIPWAY_STATE/images.tag"
