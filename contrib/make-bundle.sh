#!/bin/sh
# make-bundle.sh DIR: a bundle whose rootfs is Debian's busybox-static with a
# relative symlink per applet (absolute ones would point at the host's tree).
# It writes no config.json: run `myshim spec` in DIR for that.
set -eu
dir=${1:?usage: make-bundle.sh DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-bundle.sh: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
rootfs=$dir/rootfs
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list-full); do
  case $applet in bin/busybox) continue ;; esac
  d=$(dirname "$applet")
  mkdir -p "$rootfs/$d"
  # bin/ls -> busybox; usr/bin/env -> ../../bin/busybox
  up=$(echo "$d" | sed 's|[^/]*|..|g')
  [ -e "$rootfs/$applet" ] || [ -L "$rootfs/$applet" ] || ln -s "$up/bin/busybox" "$rootfs/$applet"
done
chmod 1777 "$rootfs/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
