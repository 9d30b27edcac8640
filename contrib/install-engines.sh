#!/bin/sh
# install-engines.sh [DEST]: the container engines the engine tests drive,
# installed only where missing (root): Docker 26 (Debian trixie's docker.io
# and docker-cli, which keep bookworm's containerd and runc, and tini for
# --init), Podman 4.3,
# conmon and catatonit (Podman's --init) from bookworm, and a CRI client's
# parts (grpcio, protobuf, protoc, and the CRI's api.proto from trixie's
# cri-api package, unpacked under DEST,
# default /var/cache/myshim/cri-api). Needs the trixie source that
# fetch-containerd.sh adds. No daemon is started: a policy-rc.d refuses it
# while the packages install.
set -eu
dest=${1:-/var/cache/myshim/cri-api}
pkgs="docker.io docker-cli tini podman conmon catatonit python3-grpcio python3-protobuf protobuf-compiler"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  want=""
  for p in $missing; do
    case $p in
      docker.io|docker-cli) want="$want $p/trixie" ;;
      *) want="$want $p" ;;
    esac
  done
  policy=/usr/sbin/policy-rc.d
  had_policy=false
  [ -e "$policy" ] && had_policy=true
  $had_policy || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; }
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $want || { $had_policy || rm -f "$policy"; exit 1; }
  $had_policy || rm -f "$policy"
fi
proto="$dest/usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto"
if [ ! -f "$proto" ]; then
  tmp=$(mktemp -d); chmod 755 "$tmp"  # apt downloads as _apt
  (cd "$tmp" && apt-get download -qq golang-github-kubernetes-cri-api-dev/trixie)
  mkdir -p "$dest"
  dpkg-deb -x "$tmp"/golang-github-kubernetes-cri-api-dev_*.deb "$dest"
  rm -rf "$tmp"
fi
echo "docker: $(/usr/bin/docker --version)"
echo "podman: $(podman --version)"
echo "cri api: $proto"
