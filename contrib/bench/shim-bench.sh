#!/usr/bin/env bash
# shim-bench.sh: containerd-shim-myshim-v2 (io.containerd.myshim.v2) against
# the Go shim io.containerd.runc.v2, both driven by ctr on ONE private
# containerd (Debian's 1.6), with an image built offline from busybox.
# Measures, and prints as medians with the ratio myshim/runc-v2:
#   1. `ctr run --rm IMAGE ID true` latency, a fresh id per run (hyperfine)
#   2. PSS and threads per container with N containers running (`sleep 1000`):
#      every shim process serving them (the shim, and for myshim its fork
#      helper) summed from /proc/PID/smaps_rollup and /proc/PID/status
#   3. stdout throughput: 1 GiB from `dd bs=64k` in the container to ctr,
#      which writes it to /dev/null (busybox's `head -c` is CPU-bound at about
#      250 MiB/s here and would hide the shim's IO path)
#   4. container exit -> TaskExit: the time the container's init exits (its
#      pidfd turns readable) against the envelope timestamp of the
#      /tasks/exit line of `ctr events` (set by the shim when it publishes)
#      and against the event's exited_at.
#
# Usage (root):  contrib/bench/shim-bench.sh
# Environment:   SHIM_BENCH_N=50      containers per runtime for (2)
#                SHIM_BENCH_RUNS=30   hyperfine runs for (1) (warmup 3)
#                SHIM_BENCH_EXITS=10  exits timed per runtime for (4)
# Needs: containerd + ctr + containerd-shim-runc-v2 + runc (Debian packages),
# hyperfine, python3, busybox-static, cargo. Everything it starts or creates
# (containerd, shims, containers, mounts, state) is removed on exit.
set -euo pipefail

N=${SHIM_BENCH_N:-50}
RUNS=${SHIM_BENCH_RUNS:-30}
EXITS=${SHIM_BENCH_EXITS:-10}
here=$(cd "$(dirname "$0")/../.." && pwd)
started=$EPOCHREALTIME
load0=$(cut -d" " -f1-3 /proc/loadavg)

die() { echo "shim-bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in containerd ctr containerd-shim-runc-v2 runc hyperfine python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool missing (see contrib/install-deps.sh)"
done

echo "building containerd-shim-myshim-v2 (release)..." >&2
(cd "$here" && cargo build --release -q -p containerd-shim-myshim-v2)
shim=$here/target/x86_64-unknown-linux-gnu/release/containerd-shim-myshim-v2
[ -x "$shim" ] || die "$shim not built"

MYSHIM=io.containerd.myshim.v2
RUNCV2=io.containerd.runc.v2
IMAGE=docker.io/library/busybox:bench

D=$(mktemp -d /tmp/myshim-shimbench.XXXXXX)
NS=shimbench$(basename "$D" | tr -dc 'a-zA-Z0-9' | tail -c 6)
SOCK=$D/c.sock
ctd_pid='' events_pid='' job=''

c() { ctr -a "$SOCK" -n "$NS" "$@" </dev/null; }

# Runs a long command (hyperfine) as a job in its own process group and waits
# for it, so that INT/TERM interrupt the wait at once and cleanup can stop it.
bg_run() { set -m; "$@" & job=$!; set +m; wait "$job"; job=''; }

# Shim processes of this containerd for runtime myshim|runcv2, one pid a line:
# processes running the shim's exe whose cmdline names our socket, plus their
# children running the same exe (myshim's fork helper). No zombies.
shim_pids() {
  local want=$1 p pid exe cmd st ppid
  local -A match=() cand=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    exe=${exe% (deleted)}
    read -r _ _ st ppid _ 2>/dev/null <"$p/stat" || continue
    [ "$st" != Z ] || continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    # myshim's shim runs from a write-protected image of its binary: its
    # exe link no longer names the file, its argv[0] does.
    case $want in
      myshim) [ "${cmd%% *}" = "$shim" ] || continue ;;
      runcv2) [ "${exe##*/}" = containerd-shim-runc-v2 ] || continue ;;
    esac
    case $cmd in *"$SOCK"*) match[$pid]=1 ;; *) cand[$pid]=$ppid ;; esac
  done
  for pid in "${!cand[@]}"; do
    [ -n "${match[${cand[$pid]}]:-}" ] && match[$pid]=1
  done
  for pid in "${!match[@]}"; do echo "$pid"; done
}

cleanup() {
  local rc=$? id pid t m
  set +eu
  trap - EXIT INT TERM
  [ -n "$job" ] && kill -TERM -- "-$job" 2>/dev/null && wait "$job" 2>/dev/null
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null && wait "$events_pid" 2>/dev/null
  if [ -n "$ctd_pid" ] && kill -0 "$ctd_pid" 2>/dev/null; then
    # Tasks first, so their shims unmount and exit; then the containers.
    c task ls 2>/dev/null | awk 'NR > 1 { print $1, $2 }' | while read -r id pid; do
      c task kill -s KILL "$id" >/dev/null 2>&1
      c task delete -f "$id" >/dev/null 2>&1 || { kill -KILL "$pid" 2>/dev/null; sleep 0.2; c task delete -f "$id" >/dev/null 2>&1; }
    done
    for id in $(c container ls -q 2>/dev/null); do c container rm "$id" >/dev/null 2>&1; done
    kill -TERM "$ctd_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ctd_pid" 2>/dev/null
    wait "$ctd_pid" 2>/dev/null
  fi
  # Shims still left (they carry our socket path) are ours to kill.
  for pid in $(shim_pids myshim) $(shim_pids runcv2); do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  # Mounts under the temp dir, deepest first.
  awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' |
    sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "/run/containerd/myshim/$NS" "/run/containerd/runc/$NS"
  rmdir /run/containerd/runc /run/containerd/myshim 2>/dev/null  # only if empty
  for t in /sys/fs/cgroup/*/"$NS"; do [ -d "$t" ] && find "$t" -depth -type d -exec rmdir {} + 2>/dev/null; done
  if awk -v d="$D/" 'index($5, d) == 1' /proc/self/mountinfo | grep -q .; then
    echo "shim-bench.sh: mounts left under $D, not removing it" >&2
  else
    rm -rf "$D"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- a private containerd, our shim first on its PATH -----------------------
cat >"$D/config.toml" <<EOF
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
EOF
(cd "$D" && PATH=$(dirname "$shim"):$PATH exec containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1) &
ctd_pid=$!
for _ in $(seq 300); do c version >/dev/null 2>&1 && break; kill -0 "$ctd_pid" || die "containerd died: $(tail "$D/containerd.log")"; sleep 0.1; done
c version >/dev/null || die "containerd did not come up"

echo "building and importing $IMAGE..." >&2
"$here/contrib/make-bundle.sh" "$D/image" >/dev/null
"$here/contrib/make-image.sh" "$D/image/rootfs" "$IMAGE" "$D/image.tar"
c images import "$D/image.tar" >/dev/null

# The timed commands, as files so that $$ gives each run a fresh id.
cat >"$D/run-true.sh" <<EOF
exec ctr -a "$SOCK" -n "$NS" run --rm --runtime "\$1" $IMAGE "b\$\$" true </dev/null
EOF
cat >"$D/run-head.sh" <<EOF
exec ctr -a "$SOCK" -n "$NS" run --rm --runtime "\$1" $IMAGE "t\$\$" dd if=/dev/zero bs=65536 count=16384 </dev/null >/dev/null 2>&1
EOF

summary=$D/summary
py_median() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join(str(x["median"]) for x in r))' "$1"; }
ratio() { python3 -c 'import sys; a,b=map(float,sys.argv[1:]); print(f"{a/b:.2f}")' "$1" "$2"; }

# --- 1. ctr run --rm true ---------------------------------------------------
echo "== 1. ctr run --rm true ($RUNS runs each)" >&2
bg_run hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json "$D/run.json" \
  -n myshim "sh $D/run-true.sh $MYSHIM" -n runc-v2 "sh $D/run-true.sh $RUNCV2" >&2
read -r m r <<<"$(py_median "$D/run.json")"
printf '1. ctr run --rm true:      myshim %7.1f ms   runc-v2 %7.1f ms   myshim/runc-v2 %s\n' \
  "$(python3 -c "print($m*1000)")" "$(python3 -c "print($r*1000)")" "$(ratio "$m" "$r")" | tee -a "$summary"

# --- 2. PSS and threads with N containers -----------------------------------
mem() { # RUNTIME KIND PREFIX -> sets pss (KiB), thr, nproc: totals over the shims
  local rt=$1 kind=$2 p=$3 k pid v
  pss=0 thr=0 nproc=0
  for k in $(seq "$N"); do c run -d --runtime "$rt" "$IMAGE" "$p$k" sleep 1000 >/dev/null; done
  sleep 2
  [ "$(c task ls | awk '$3 == "RUNNING"' | wc -l)" = "$N" ] || die "not all $N $rt tasks running"
  for pid in $(shim_pids "$kind"); do
    v=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup") || continue
    pss=$((pss + v)); nproc=$((nproc + 1))
    thr=$((thr + $(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")))
  done
  for k in $(seq "$N"); do
    c task delete -f "$p$k" >/dev/null 2>&1  # it warns "exit code 137"
    c container rm "$p$k" >/dev/null
  done
}
echo "== 2. memory and threads, $N containers per runtime" >&2
mem $MYSHIM myshim m; mpss=$pss mthr=$thr mn=$nproc
mem $RUNCV2 runcv2 r; rpss=$pss rthr=$thr rn=$nproc
python3 - "$N" "$mpss" "$mthr" "$mn" "$rpss" "$rthr" "$rn" <<'PY' | tee -a "$summary"
import sys
n, mp, mt, mn, rp, rt, rn = map(int, sys.argv[1:])
print(f"2. per container (N={n}):  PSS myshim {mp/n:7.0f} KiB   runc-v2 {rp/n:7.0f} KiB   myshim/runc-v2 {mp/rp:.3f}")
print(f"                           threads myshim {mt/n:5.2f}   runc-v2 {rt/n:5.2f}   myshim/runc-v2 {mt/rt:.3f}")
print(f"                           shim processes: myshim {mn}, runc-v2 {rn}; total PSS myshim {mp/1024:.1f} MiB, runc-v2 {rp/1024:.1f} MiB")
PY

# --- 3. stdout throughput ---------------------------------------------------
echo "== 3. stdout throughput, 1 GiB, 3 runs each" >&2
bg_run hyperfine -N --style basic --runs 3 --export-json "$D/head.json" \
  -n myshim "sh $D/run-head.sh $MYSHIM" -n runc-v2 "sh $D/run-head.sh $RUNCV2" >&2
read -r m r <<<"$(py_median "$D/head.json")"
python3 - "$m" "$r" <<'PY' | tee -a "$summary"
import sys
m, r = map(float, sys.argv[1:])
print(f"3. stdout 1 GiB to ctr:    myshim {1024/m:7.0f} MiB/s  runc-v2 {1024/r:7.0f} MiB/s  myshim/runc-v2 {r/m:.2f} (throughput; includes container start, median of 3)")
PY

# --- 4. exit -> TaskExit ------------------------------------------------------
echo "== 4. exit -> TaskExit, $EXITS exits each" >&2
ctr -a "$SOCK" -n "$NS" events >"$D/events.log" 2>&1 </dev/null &
events_pid=$!
sleep 0.5
: >"$D/exits"
for i in $(seq "$EXITS"); do
  for rt in $MYSHIM $RUNCV2; do
    case $rt in $MYSHIM) id=em$i ;; *) id=er$i ;; esac
    c run -d --runtime "$rt" "$IMAGE" "$id" sleep 1 >/dev/null
    pid=$(c task ls | awk -v id="$id" '$1 == id { print $2 }')
    [ -n "$pid" ] || die "no pid for task $id"
    # A pidfd turns readable the moment the process exits (before any reaping).
    python3 -c 'import os, select, sys, time
fd = os.pidfd_open(int(sys.argv[1])); select.select([fd], [], [])
print(sys.argv[2], sys.argv[3], time.time())' "$pid" "$id" "$rt" >>"$D/exits"
    for _ in $(seq 100); do grep -q "/tasks/exit.*\"$id\"" "$D/events.log" && break; sleep 0.05; done
    c task delete "$id" >/dev/null
    c container rm "$id" >/dev/null
  done
done
kill "$events_pid"; wait "$events_pid" 2>/dev/null || true; events_pid=''
python3 - "$D/exits" "$D/events.log" <<'PY' | tee -a "$summary"
import datetime, json, re, statistics, sys
exits = {}
for line in open(sys.argv[1]):
    i, rt, t = line.split()
    exits[i] = (rt, float(t))
env, ex = {}, {}
pat = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)? ([+-]\d{4}) \S+ \S+ /tasks/exit (\{.*\})\s*$")
def ts(v):  # exited_at as printed by ctr: RFC 3339 string or {seconds, nanos}
    if isinstance(v, dict):
        return v.get("seconds", 0) + v.get("nanos", 0) / 1e9
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", v)
    base = datetime.datetime.fromisoformat(m[1] + ("+00:00" if m[3] == "Z" else m[3]))
    return base.timestamp() + float(m[2] or 0)
for line in open(sys.argv[2]):
    m = pat.match(line)
    if not m:
        continue
    t = datetime.datetime.strptime(m[1] + " " + m[3], "%Y-%m-%d %H:%M:%S %z").timestamp() + float(m[2] or 0)
    e = json.loads(m[4])
    i = e.get("container_id")
    if i in exits and e.get("id", i) == i:
        env[i] = t
        if "exited_at" in e:
            ex[i] = ts(e["exited_at"])
res = {}
for rt in ("io.containerd.myshim.v2", "io.containerd.runc.v2"):
    ids = [i for i, (r, _) in exits.items() if r == rt]
    d_env = [(env[i] - exits[i][1]) * 1000 for i in ids if i in env]
    d_ex = [(ex[i] - exits[i][1]) * 1000 for i in ids if i in ex]
    res[rt] = (d_env, d_ex, len(ids))
(me, mx, mn), (re_, rx, rn) = res["io.containerd.myshim.v2"], res["io.containerd.runc.v2"]
med = lambda v: statistics.median(v) if v else float("nan")
print(f"4. exit -> TaskExit event: myshim {med(me):7.2f} ms   runc-v2 {med(re_):7.2f} ms   myshim/runc-v2 {med(me)/med(re_):.2f}"
      f"   (events seen {len(me)}/{mn}, {len(re_)}/{rn})")
print(f"   exit -> exited_at:      myshim {med(mx):7.2f} ms   runc-v2 {med(rx):7.2f} ms"
      f"   (ranges: myshim {min(me, default=0):.2f}..{max(me, default=0):.2f}, runc-v2 {min(re_, default=0):.2f}..{max(re_, default=0):.2f} ms)")
PY

printf 'total time: %.0f s\n' "$(python3 -c "print($EPOCHREALTIME - $started)")" | tee -a "$summary"
echo
echo "==== summary (containerd $(containerd --version | awk '{print $3}'), $(nproc) CPUs, loadavg at start $load0, at end $(cut -d" " -f1-3 /proc/loadavg)) ===="
cat "$summary"
