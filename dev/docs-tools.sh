#!/usr/bin/env bash
# Installs the tools of the documentation checks of `make lint`, or names what is missing and how
# to get it: mdbook, built from crates.io by cargo into the cache (a directory per version, like
# the Go-built tools), and Debian's shellcheck and python3 (through apt-get, as dev/prereqs.sh
# installs the other packages). Prints the directory that holds the mdbook binary.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"

dir=$(mdbook_dir)
if [ ! -x "$dir/bin/mdbook" ]; then
  command -v cargo >/dev/null 2>&1 ||
    die "Rust is not installed: install it with rustup (https://rustup.rs), stable 1.89 or newer"
  log "building mdbook $MDBOOK_VERSION into $dir (cold: about 3 to 5 minutes on two cores)"
  rm -rf "$dir.tmp"
  # Without the default features `serve` and `watch`: `mdbook build` is all the checks need.
  cargo install --quiet --locked mdbook --version "$MDBOOK_VERSION" --no-default-features \
    --features search --root "$dir.tmp" >&2 ||
    die "cargo install mdbook $MDBOOK_VERSION failed (it needs crates.io); see the lines above"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi
missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  debian_install "${missing[@]}"
fi
echo "$dir/bin"
