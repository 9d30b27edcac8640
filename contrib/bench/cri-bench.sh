#!/usr/bin/env bash
# cri-bench.sh: a pod's life through the CRI of ONE private containerd (2.x
# from contrib/fetch-containerd.sh, else 1.7), three runtime handlers:
#   myshim      containerd-shim-myshim-v2
#   myshim-cli  containerd's Go runc shim running the myshim command
#   runc        containerd's Go runc shim running runc (the reference)
# Each round, per handler: RunPodSandbox + CreateContainer + StartContainer
# (`sleep 1000`) + StopPodSandbox + RemovePodSandbox, timed by
# contrib/cri/cri.py inside one client process (no process start per call).
# Rounds are interleaved between the handlers after one warmup round each.
# Pods run on the host network (no CNI) under a cgroup parent of our own;
# images are built offline (the pause image is the same busybox, sleeping).
# Prints per handler the mean and median of a round, the mean per phase,
# and the ratios of the means to runc.
#
# Usage (root):  contrib/bench/cri-bench.sh [ROUNDS]   (default 30)
# Environment:   CRI_BENCH_CONTAINERD=DIR  the bin dir of another containerd
#                                          (containerd, ctr, its runc shim)
# Needs: runc, protoc, Debian's python3 with python3-grpcio and
# python3-protobuf, the CRI's api.proto (contrib/install-engines.sh),
# busybox-static, cargo. Everything it starts or creates (containerd, shims,
# pods, mounts, cgroups, state) is removed on exit.
set -euo pipefail

ROUNDS=${1:-30}
here=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3 # Debian's, for python3-grpcio
cri_py=$here/contrib/cri/cri.py
started=$EPOCHREALTIME
load0=$(cut -d" " -f1-3 /proc/loadavg)

die() { echo "cri-bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in runc protoc cargo; do
  command -v "$tool" >/dev/null || die "$tool missing (see contrib/install-deps.sh)"
done
"$py" -c 'import grpc, google.protobuf' 2>/dev/null || die "python3-grpcio/python3-protobuf missing (contrib/install-engines.sh)"

bin=${CRI_BENCH_CONTAINERD:-}
if [ -z "$bin" ]; then
  for suite in sid trixie; do
    [ -x "/var/cache/myshim/containerd/$suite/usr/bin/containerd" ] && { bin=/var/cache/myshim/containerd/$suite/usr/bin; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin/containerd" ] || die "no containerd 2.x or 1.7 (contrib/fetch-containerd.sh)"
version=$("$bin/containerd" --version | awk '{print $3}')
case $version in 1.*) template=$here/contrib/cri/containerd-1.7.toml ;; *) template=$here/contrib/cri/containerd-2.x.toml ;; esac

echo "building containerd-shim-myshim-v2 and myshim (release)..." >&2
(cd "$here" && cargo build --release -q -p containerd-shim-myshim-v2 -p myshim-runtime)
rel=$here/target/x86_64-unknown-linux-gnu/release
shim=$rel/containerd-shim-myshim-v2 myshim=$rel/myshim
[ -x "$shim" ] && [ -x "$myshim" ] || die "$shim or $myshim not built"

IMAGE=docker.io/library/busybox:bench
PAUSE=docker.io/library/busybox:bench-pause
D=$(mktemp -d /tmp/myshim-cribench.XXXXXX)
CG=/$(basename "$D" | tr -c 'a-zA-Z0-9\n' '-')
SOCK=$D/c.sock
ctd_pid='' job=''

c() { "$bin/ctr" -a "$SOCK" -n k8s.io "$@" </dev/null; }
cri() { "$py" "$cri_py" -a "$SOCK" "$@" </dev/null; }

# Shim processes of this containerd (ours and the Go ones): their cmdline
# names our socket. One pid a line.
shim_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case $cmd in
      "$shim "*"$SOCK"* | *containerd-shim-runc-v2" "*"$SOCK"*) echo "${p#/proc/}" ;;
    esac
  done
}

# Kills every process in our cgroup tree (in each hierarchy), then removes it.
cgroup_tree() { # kill|remove
  local t
  for t in /sys/fs/cgroup/*"$CG" /sys/fs/cgroup"$CG"; do
    [ -d "$t" ] || continue
    case $1 in
      kill) find "$t" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null ;;
      remove) find "$t" -depth -type d -exec rmdir {} + 2>/dev/null ;;
    esac
  done
}

cleanup() {
  local rc=$? pid m
  set +eu
  trap - EXIT INT TERM
  [ -n "$job" ] && kill -TERM -- "-$job" 2>/dev/null && wait "$job" 2>/dev/null
  if [ -n "$ctd_pid" ] && kill -0 "$ctd_pid" 2>/dev/null; then
    cri --timeout 15 cleanup >/dev/null 2>&1 || { cgroup_tree kill; cri --timeout 15 cleanup >/dev/null 2>&1; }
    kill -TERM "$ctd_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ctd_pid" 2>/dev/null
    wait "$ctd_pid" 2>/dev/null
  fi
  for pid in $(shim_pids); do kill -KILL "$pid" 2>/dev/null; done
  cgroup_tree kill
  sleep 0.2
  # Mounts under the temp dir, deepest first.
  awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' |
    sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null; done
  cgroup_tree remove
  rmdir /run/containerd/myshim/k8s.io /run/containerd/runc/k8s.io /run/containerd/myshim /run/containerd/runc \
    /run/containerd/s /run/containerd 2>/dev/null # only if empty
  if awk -v d="$D/" 'index($5, d) == 1' /proc/self/mountinfo | grep -q .; then
    echo "cri-bench.sh: mounts left under $D, not removing it" >&2
  else
    rm -rf "$D"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a private containerd with the CRI, our shim and its own runc shim first on its PATH
mkdir -p "$D/cni" "$D/logs"
sed -e "s|@DIR@|$D|g" -e "s|@MYSHIM@|$myshim|g" -e "s|@SANDBOX_IMAGE@|$PAUSE|g" "$template" >"$D/config.toml"
(cd "$D" && PATH=$rel:$bin:$PATH exec "$bin/containerd" --config "$D/config.toml" >"$D/containerd.log" 2>&1) &
ctd_pid=$!
for _ in $(seq 300); do cri call Version >/dev/null 2>&1 && break; kill -0 "$ctd_pid" || die "containerd died: $(tail "$D/containerd.log")"; sleep 0.1; done
cri call Version >/dev/null || die "containerd's CRI did not come up: $(tail "$D/containerd.log")"

echo "building and importing $IMAGE and $PAUSE..." >&2
"$here/contrib/make-bundle.sh" "$D/image" >/dev/null
"$here/contrib/make-image.sh" "$D/image/rootfs" "$IMAGE" "$D/image.tar"
"$py" "$cri_py" image-cmd "$D/image.tar" "$D/pause.tar" "$PAUSE" sleep 2147483647
c images import "$D/image.tar" >/dev/null
c images import "$D/pause.tar" >/dev/null

echo "== $ROUNDS rounds per handler, interleaved (containerd $version)" >&2
set -m
cri bench "$ROUNDS" myshim myshim-cli runc --image "$IMAGE" --cgroup-parent "$CG" --log-dir "$D/logs" >"$D/times.json" &
job=$!
set +m
wait "$job"
job=''

"$py" - "$D/times.json" <<'PY' | tee "$D/summary"
import json, statistics, sys
t = json.load(open(sys.argv[1]))
phases = list(next(iter(t.values())).keys())
total = {h: [sum(r) for r in zip(*t[h].values())] for h in t}
mean = {h: statistics.mean(v) * 1000 for h, v in total.items()}
short = {"RunPodSandbox": "run", "CreateContainer": "create", "StartContainer": "start",
         "StopPodSandbox": "stop", "RemovePodSandbox": "remove"}
print(f"{'handler':<11} {'mean':>8} {'median':>8}  " + " ".join(f"{short.get(p, p):>7}" for p in phases) + "  mean/runc")
for h in t:
    per = " ".join(f"{statistics.mean(t[h][p]) * 1000:7.1f}" for p in phases)
    print(f"{h:<11} {mean[h]:6.1f}ms {statistics.median(total[h]) * 1000:6.1f}ms  {per}  {mean[h] / mean['runc']:.2f}")
print("(ms; per phase: means; rounds: " + str(len(total["runc"])) + ")")
PY
printf 'total time: %.0f s\n' "$(python3 -c "print($EPOCHREALTIME - $started)")" | tee -a "$D/summary"
echo
echo "==== summary (containerd $version, $(runc --version | head -1), $(nproc) CPUs, loadavg at start $load0, at end $(cut -d" " -f1-3 /proc/loadavg)) ===="
cat "$D/summary"
