#!/bin/sh
# install-deps.sh: the Debian packages myshim's build, tests and benchmarks
# use, installed only where missing (root).
set -eu
pkgs="apparmor busybox-static procps bsdutils util-linux passwd tar gzip uidmap rootlesskit libseccomp-dev golang-github-containers-common runc crun hyperfine containerd"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
command -v cargo >/dev/null || { echo "install-deps.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
