#!/bin/sh
# make-image.sh ROOTFS NAME OUT.tar: an OCI image layout tar of ROOTFS as one
# layer, named NAME for `ctr images import` (built offline, no registry). It
# also carries Docker's manifest.json, which `docker load` reads (Docker 26
# does not load a bare OCI layout).
set -eu
rootfs=${1:?usage: make-image.sh ROOTFS NAME OUT.tar} name=${2:?} out=${3:?}
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/blobs/sha256"
blob() { # FILE -> moves it into blobs/, prints "digest size"
  d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
  mv "$1" "$w/blobs/sha256/$d"; echo "$d $s"
}
tar -C "$rootfs" --numeric-owner -cf "$w/layer.tar" .
diff_id=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
gzip -n "$w/layer.tar"
set -- $(blob "$w/layer.tar.gz"); layer=$1 layer_size=$2
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" > "$w/config"
set -- $(blob "$w/config"); config=$1 config_size=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$w/manifest"
set -- $(blob "$w/manifest"); manifest=$1 manifest_size=$2
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest" "$manifest_size" "$name" > "$w/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$w/oci-layout"
repo=${name%:*} tag=${name##*:}
[ "$repo" != "$name" ] || tag=latest
printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s:%s"],"Layers":["blobs/sha256/%s"]}]' \
  "$config" "$repo" "$tag" "$layer" > "$w/manifest.json"
tar -C "$w" -cf "$out" oci-layout index.json manifest.json blobs
