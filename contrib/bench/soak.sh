#!/bin/sh
# soak.sh: the long form of the soak tests (issue 14, "Leaks"), which
# `cargo test --workspace` runs in a short form (50 and 20 cycles):
#   runtime/tests/soak.rs  create/start/exec/pause/resume/kill/delete cycles
#                          through the `myshim` command, with its own --root
#   tests/soak.rs          `ctr run --rm` cycles through one long-lived pod
#                          shim and through shims of their own, with exec and
#                          pause/resume, on a private containerd
# Each prints its counts before and after (mounts, cgroups, state dirs,
# fifos, sockets, zombies, fds, shim memory) and fails on any difference.
# A test, not a benchmark: no time is measured against anything.
#
# Usage (root): contrib/bench/soak.sh [CYCLES [cargo test options...]]
#   CYCLES   cycles of each soak (default 1000: about 1.5 min for the CLI
#            and 5-6 min for the shim on a 2-core machine, debug build)
#   e.g.     contrib/bench/soak.sh 1000 --release
# Environment: MYSHIM_SOAK_CONTAINERD=installed|trixie|sid picks the
# containerd of the shim soak (default: the first found, as tests/shim.rs
# names them). Everything the tests make is removed, pass or fail.
set -eu
cycles=${1:-1000}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root" >&2; exit 1; }
case $cycles in
  '' | *[!0-9]*) echo "soak.sh: CYCLES must be a number, not '$cycles'" >&2; exit 1 ;;
esac
cd "$here"
export MYSHIM_SOAK_CYCLES=$cycles
status=0
cargo test "$@" -p myshim-runtime --test soak -- --nocapture || status=1
cargo test "$@" -p containerd-shim-myshim-v2 --test soak -- --nocapture || status=1
exit $status
