#!/usr/bin/env bash
# Builds slipway-builder as one static executable, so that it runs in a container of any image
# (place-tools copies it into the build pod's shared volume). glibc is linked statically
# (crt-static); OpenSSL and zlib from their static archives, libgit2 and libssh2 from source.
# The registry client resolves names with hickory (pure Rust), not glibc's NSS.
#   builder/static.sh [release|dev]   → prints the path of the binary
set -euo pipefail
profile=${1:-release}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=x86_64-unknown-linux-gnu
flags=()
[ "$profile" = release ] && flags+=(--release)
export OPENSSL_STATIC=1 LIBZ_SYS_STATIC=1
# --target keeps these flags off build scripts and proc macros (they stay dynamic).
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -q -p slipway-builder --bin slipway-builder --target "$target" "${flags[@]}" >&2
dir=$profile
[ "$profile" = dev ] && dir=debug
bin="${CARGO_TARGET_DIR:-$PWD/target}/$target/$dir/slipway-builder"
if file "$bin" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "static.sh: $bin is not static" >&2
  exit 1
fi
echo "$bin"
