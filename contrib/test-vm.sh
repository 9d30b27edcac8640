#!/bin/sh
# test-vm.sh: the tests this host cannot run, inside one VM whose kernel has
# cgroup v2 alone, with every controller, and AppArmor (this host is cgroup
# v1/hybrid without an LSM): the cgroup tests, rootless containers with and
# without a delegated cgroup v2 subtree, the AppArmor test (CVE-2019-16884),
# and the shim's metrics/pause/OOM test with the host's containerd (the VM
# sees the host's /usr). Needs the VM runner the development machines
# provide; without it, says so and exits 0 (those are then untested here).
set -eu
cd "$(dirname "$0")/.."
vm=${CGROUP2_VM:-../shared/vm/run-in-cgroup2-vm}
if [ ! -x "$vm" ]; then
  echo "test-vm.sh: no VM runner at $vm: cgroup v2 and AppArmor tests skipped" >&2
  exit 0
fi
command -v apparmor_parser >/dev/null || { echo "test-vm.sh: apparmor_parser missing: apt-get install apparmor" >&2; exit 1; }

# test_binary PACKAGE NAME: builds that integration test and prints its path.
test_binary() {
  path=$(cargo test -q -p "$1" --test "$2" --no-run --message-format=json 2>/dev/null |
    grep "\"name\":\"$2\"" | grep '"kind":\["test"\]' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  [ -x "$path" ] || { echo "test-vm.sh: could not build the $2 tests" >&2; exit 1; }
  echo "$path"
}
cgroups=$(test_binary myshim-runtime cgroups)
rootless=$(test_binary myshim-runtime rootless)
security=$(test_binary myshim-runtime security)
shim=$(test_binary containerd-shim-myshim-v2 shim)
# The guest mounts no securityfs by itself; the rootless tests make their
# throwaway user in the VM's own /etc.
exec "$vm" --timeout 1500 --share "$PWD" -- sh -c "set -e
'$cgroups' --test-threads=2
'$rootless' --test-threads=2
mount -t securityfs securityfs /sys/kernel/security
'$security' apparmor --test-threads=1
'$shim' metrics_pause_resume_and_oom"
