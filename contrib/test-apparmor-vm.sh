#!/bin/sh
# test-apparmor-vm.sh: the AppArmor test (process.apparmorProfile, and the
# fake-/proc attack of CVE-2019-16884) inside a VM whose Debian kernel has
# AppArmor active; this host's kernel has no LSM, so the test skips here.
# Needs the VM runner the development machines provide and apparmor_parser
# (Debian package apparmor) on the host: the VM sees the host's /usr.
set -eu
cd "$(dirname "$0")/.."
vm=${CGROUP2_VM:-../shared/vm/run-in-cgroup2-vm}
if [ ! -x "$vm" ]; then
  echo "test-apparmor-vm.sh: no VM runner at $vm: AppArmor tests skipped" >&2
  exit 0
fi
command -v apparmor_parser >/dev/null || { echo "test-apparmor-vm.sh: apt-get install apparmor" >&2; exit 1; }
bin=$(cargo test -q -p myshim-runtime --test security --no-run --message-format=json 2>/dev/null |
  grep '"name":"security"' | grep '"kind":\["test"\]' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-apparmor-vm.sh: could not build the security tests" >&2; exit 1; }
# The guest mounts no securityfs by itself.
exec "$vm" --timeout 600 --share "$PWD" -- sh -c \
  "mount -t securityfs securityfs /sys/kernel/security && exec '$bin' apparmor --test-threads=1 --nocapture"
