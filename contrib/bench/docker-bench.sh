#!/usr/bin/env bash
# docker-bench.sh [ROUNDS]: `docker run --rm --network none IMAGE true`
# through three runtimes of ONE private dockerd (Docker 26, its own managed
# containerd 1.6, everything in a temp dir):
#   myshim      containerd-shim-myshim-v2 ("runtimeType")
#   myshim-cli  containerd's Go runc shim driving the myshim CLI ("path")
#   runc        Docker's default (the Go runc shim driving runc)
# Each round runs the three once, in an order rotated every round, so that
# drift of the machine hits all alike. Prints mean and median per runtime
# and the ratios to runc. Image built offline from busybox.
#
# Usage (root):  contrib/bench/docker-bench.sh [ROUNDS]   (default 50, warmup 3)
# Needs: dockerd (Debian's docker.io), containerd, runc, python3,
# busybox-static, cargo. Everything it starts or creates (dockerd, its
# containerd, shims, containers, mounts, cgroups, state) is removed on exit.
set -euo pipefail

ROUNDS=${1:-50}
WARMUP=3
here=$(cd "$(dirname "$0")/../.." && pwd)
load0=$(cut -d" " -f1-3 /proc/loadavg)

die() { echo "docker-bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
# /usr/bin/docker: a bare CLI elsewhere on PATH may shadow Debian's.
DOCKER=/usr/bin/docker
dockerd=$(PATH=/usr/sbin:/usr/bin:$PATH command -v dockerd) || die "dockerd missing (contrib/install-engines.sh)"
[ -x "$DOCKER" ] || die "$DOCKER missing (contrib/install-engines.sh)"
for tool in containerd runc python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool missing (see contrib/install-deps.sh)"
done

echo "building containerd-shim-myshim-v2 and myshim (release)..." >&2
(cd "$here" && cargo build --release -q -p containerd-shim-myshim-v2 -p myshim-runtime)
bin=$here/target/x86_64-unknown-linux-gnu/release
shim=$bin/containerd-shim-myshim-v2 cli=$bin/myshim
[ -x "$shim" ] && [ -x "$cli" ] || die "$shim or $cli not built"

IMAGE=docker.io/library/busybox:bench
D=$(mktemp -d /tmp/myshim-dockerbench.XXXXXX)
CG=$(basename "$D" | tr -dc 'a-zA-Z0-9')
had_run_docker=false
[ -e /run/docker ] && had_run_docker=true
dockerd_pid=''

d() { DOCKER_CONFIG=$D/client "$DOCKER" -H "unix://$D/docker.sock" "$@" </dev/null; }

cleanup() {
  local rc=$? pid m t
  set +eu
  trap - EXIT INT TERM
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    for id in $(d ps -aq 2>/dev/null); do d rm -f "$id" >/dev/null 2>&1; done
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 300); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
  fi
  # Its containerd, if dockerd did not stop it, and shims naming our socket.
  pid=$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null)
  [ -n "$pid" ] && grep -qF "$D" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid"
  for p in /proc/[0-9]*; do
    grep -qF "$D/exec/containerd/containerd.sock" "$p/cmdline" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  sleep 0.2
  # overlay and netns mounts under the temp dir, deepest first.
  awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' |
    sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null; done
  for t in /sys/fs/cgroup/"$CG" /sys/fs/cgroup/*/"$CG"; do
    [ -d "$t" ] && find "$t" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rmdir /run/containerd/myshim/moby /run/containerd/myshim /run/containerd/s /run/containerd 2>/dev/null
  $had_run_docker || rmdir /run/docker/plugins /run/docker 2>/dev/null
  if awk -v d="$D/" 'index($5, d) == 1' /proc/self/mountinfo | grep -q .; then
    echo "docker-bench.sh: mounts left under $D, not removing it" >&2
  else
    rm -rf "$D"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a private dockerd ---------------------------------------------------------
cat >"$D/daemon.json" <<EOF
{
  "data-root": "$D/data",
  "exec-root": "$D/exec",
  "pidfile": "$D/docker.pid",
  "hosts": ["unix://$D/docker.sock"],
  "iptables": false,
  "ip6tables": false,
  "bridge": "none",
  "cgroup-parent": "/$CG",
  "runtimes": {
    "myshim": {"runtimeType": "$shim"},
    "myshim-cli": {"path": "$cli"}
  }
}
EOF
(cd "$D" && PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH exec "$dockerd" --config-file "$D/daemon.json" >"$D/dockerd.log" 2>&1) &
dockerd_pid=$!
for _ in $(seq 300); do d version >/dev/null 2>&1 && break; kill -0 "$dockerd_pid" || die "dockerd died: $(tail "$D/dockerd.log")"; sleep 0.1; done
d version >/dev/null || die "dockerd did not come up"

echo "building and loading $IMAGE..." >&2
"$here/contrib/make-bundle.sh" "$D/image" >/dev/null
"$here/contrib/make-image.sh" "$D/image/rootfs" "$IMAGE" "$D/image.tar"
d load -i "$D/image.tar" >/dev/null

runtimes=(myshim myshim-cli runc)
one() { # RUNTIME -> appends "RUNTIME SECONDS" to $D/times
  local t0=$EPOCHREALTIME
  d run --rm --network none --runtime "$1" "$IMAGE" true >/dev/null || die "docker run --runtime $1 failed"
  echo "$1 $(python3 -c "print($EPOCHREALTIME - $t0)")" >>"$D/times"
}
echo "== docker run --rm true: $WARMUP warmup + $ROUNDS rounds of ${runtimes[*]}, order rotated" >&2
: >"$D/times"
for r in $(seq $((WARMUP + ROUNDS))); do
  for k in 0 1 2; do one "${runtimes[$(((r + k) % 3))]}"; done
  [ "$r" = "$WARMUP" ] && : >"$D/times"
done

echo
echo "==== docker $(d version --format '{{.Server.Version}}'), containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR == 1 {print $3}'), $(nproc) CPUs, loadavg at start $load0, at end $(cut -d" " -f1-3 /proc/loadavg) ===="
python3 - "$D/times" <<'PY'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    rt, s = line.split()
    t.setdefault(rt, []).append(float(s) * 1000)
mean = {rt: statistics.mean(v) for rt, v in t.items()}
med = {rt: statistics.median(v) for rt, v in t.items()}
print(f"docker run --rm --network none IMAGE true, {len(t['runc'])} runs each")
print(f"{'runtime':<12} {'mean':>9} {'median':>9} {'stdev':>8}   mean/runc median/runc")
for rt in ("myshim", "myshim-cli", "runc"):
    v = t[rt]
    print(f"{rt:<12} {mean[rt]:7.1f}ms {med[rt]:7.1f}ms {statistics.stdev(v):6.1f}ms"
          f"   {mean[rt] / mean['runc']:9.2f} {med[rt] / med['runc']:11.2f}")
PY
