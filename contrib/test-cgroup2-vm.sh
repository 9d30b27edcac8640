#!/bin/sh
# test-cgroup2-vm.sh: the cgroup integration tests again inside a VM whose
# only hierarchy is cgroup v2 with every controller (this host is v1/hybrid).
# Needs the VM runner the development machines provide; without it, says so
# and exits 0 (v2 is then untested here).
set -eu
cd "$(dirname "$0")/.."
vm=${CGROUP2_VM:-../shared/vm/run-in-cgroup2-vm}
if [ ! -x "$vm" ]; then
  echo "test-cgroup2-vm.sh: no VM runner at $vm: cgroup v2 tests skipped" >&2
  exit 0
fi
bin=$(cargo test -q -p myshim-runtime --test cgroups --no-run --message-format=json 2>/dev/null |
  grep '"name":"cgroups"' | grep '"kind":\["test"\]' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-cgroup2-vm.sh: could not build the cgroups tests" >&2; exit 1; }
shim=$(cargo test -q --test shim --no-run --message-format=json 2>/dev/null |
  grep '"name":"shim"' | grep '"kind":\["test"\]' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$shim" ] || { echo "test-cgroup2-vm.sh: could not build the shim tests" >&2; exit 1; }
rootless=$(cargo test -q -p myshim-runtime --test rootless --no-run --message-format=json 2>/dev/null |
  grep '"name":"rootless"' | grep '"kind":\["test"\]' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$rootless" ] || { echo "test-cgroup2-vm.sh: could not build the rootless tests" >&2; exit 1; }
# The cgroup tests, then the shim's metrics/pause/OOM test with the host's
# containerd (the VM sees the host's /usr).
"$vm" --timeout 900 --share "$PWD" -- "$bin" --test-threads=2
# Rootless containers with and without a delegated cgroup v2 subtree (the
# tests make their throwaway user in the VM's own /etc).
"$vm" --timeout 900 --share "$PWD" -- "$rootless" --test-threads=2
exec "$vm" --timeout 900 --share "$PWD" -- "$shim" metrics_pause_resume_and_oom
