#!/usr/bin/env bash
# Builds the busybox S2I builder image with buildah (no base image is pulled) and pushes it.
#   examples/apps/s2i-busybox/build.sh 127.0.0.1:15000/slipway/s2i-busybox:latest
set -euo pipefail
ref=${1:?usage: build.sh REGISTRY/REPO:TAG}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=$(command -v busybox)
export BUILDAH_ISOLATION=chroot
c=$(buildah from scratch)
trap 'buildah rm "$c" >/dev/null' EXIT
mnt=$(buildah mount "$c")
mkdir -p "$mnt"/{bin,etc,tmp,usr/libexec/s2i}
chmod 1777 "$mnt/tmp"
cp "$busybox" "$mnt/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$mnt/bin/$applet" ] || ln -s busybox "$mnt/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\ndefault:x:1001:0:s2i:/tmp:/bin/sh\n' > "$mnt/etc/passwd"
printf 'root:x:0:\n' > "$mnt/etc/group"
cp "$here"/s2i/bin/* "$mnt/usr/libexec/s2i/"
buildah umount "$c" >/dev/null
buildah config --user 1001 --workingdir /tmp --env PATH=/usr/local/bin:/usr/bin:/bin --env HOME=/tmp \
  --cmd /usr/libexec/s2i/usage \
  --label io.openshift.s2i.scripts-url=image:///usr/libexec/s2i \
  --label io.openshift.s2i.destination=/tmp \
  --label io.openshift.expose-services=8080:http "$c"
buildah commit -q "$c" "$ref" >/dev/null
buildah push --tls-verify=false "$ref" "docker://$ref"
echo "$ref"
