#!/bin/sh
# fetch-containerd.sh [DEST]: unpack containerd 1.7 (Debian trixie) and 2.x
# (Debian sid) under DEST (default /var/cache/myshim/containerd) beside the
# installed containerd, without replacing it. The suites are pinned at
# priority 1 so that nothing else on the machine upgrades from them.
set -eu
dest=${1:-/var/cache/myshim/containerd}
src=/etc/apt/sources.list.d/myshim-newer.sources
if [ ! -f "$src" ]; then
  cat > "$src" <<'EOS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  cat > /etc/apt/preferences.d/myshim-newer <<'EOP'
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: *
Pin: release n=sid
Pin-Priority: 1
EOP
  apt-get update -qq
fi
mkdir -p "$dest"
for suite in trixie sid; do
  [ -x "$dest/$suite/usr/bin/containerd" ] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "containerd/$suite")
  mkdir -p "$dest/$suite"
  dpkg-deb -x "$tmp"/containerd_*.deb "$dest/$suite"
  rm -rf "$tmp"
done
for suite in trixie sid; do
  echo "$suite: $("$dest/$suite/usr/bin/containerd" --version)"
done
