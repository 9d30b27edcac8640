#!/usr/bin/env bash
# concurrency-bench.sh: N containers started at once through containerd,
# containerd-shim-myshim-v2 (io.containerd.myshim.v2) against containerd's Go
# shim io.containerd.runc.v2 with runc, in two phases:
#   ctr  N `ctr run -d IMAGE ID sleep ...`, P ctr processes at a time, on a
#        private containerd without the CRI (Debian's 1.6, as shim-bench.sh)
#   cri  N/4 pods of 4 containers through the CRI of a private containerd
#        (2.x from contrib/fetch-containerd.sh, else 1.7, as cri-bench.sh;
#        handlers myshim and runc, host network, a cgroup parent of our
#        own), P pods in flight, each pod's sandbox and then its containers
#        created and started in turn (as kubelet does), by contrib/cri/cri.py
#        in one client process
# Each round starts the N with each runtime in turn (the order alternates
# every round, so that drift of the machine hits both alike) and measures:
#   wall      first start to the last start's reply (ctr run -d and
#             StartContainer return once the task runs); all N are then
#             checked to be running
#   failures  starts that failed or did not leave a running task (must be 0)
#   memory    peak total PSS of every shim process serving that containerd
#             (the shims, and for myshim its fork helper and workers),
#             summed from /proc/PID/smaps_rollup, sampled while they start and
#             once after all run; with the number of shim processes and
#             their threads at that peak
#   CPU       where the CPU time of the burst went, per container: the
#             client (the ctr processes; cri.py), containerd, the shims
#             (containerd's cgroup minus containerd: shim start, shim, helper
#             and workers or runc), the containers' cgroups, the memory
#             sampler, the rest (kernel threads, anything else on the
#             machine); idle and steal (CPU the hypervisor took)
#   teardown  removing all N again (task delete -f + container rm, P at a
#             time; StopPodSandbox + RemovePodSandbox), then a check that
#             nothing is left: tasks, containers, active snapshots, shims,
#             mounts, cgroups, runtime state, shim sockets
# Prints per runtime the means over the rounds, and the ratios myshim/runc-v2.
# Exits non-zero if any start failed or anything was left.
#
# Usage (root):  contrib/bench/concurrency-bench.sh [N [P]]   (default 200 20)
#                contrib/bench/concurrency-bench.sh --help
# Environment:   CONC_BENCH_ROUNDS=2       rounds (each runtime once a round)
#                CONC_BENCH_PHASES="ctr cri"
#                CONC_BENCH_PER_POD=4      containers per pod (cri phase)
#                CONC_BENCH_SAMPLE=1       seconds between memory samples
#                CONC_BENCH_CTR_CONTAINERD=DIR  bin dir of the ctr phase's
#                                          containerd (containerd, ctr, its
#                                          runc shim; default Debian's)
#                CONC_BENCH_CRI_CONTAINERD=DIR  the same for the cri phase
#                CONC_BENCH_LOGS=DIR       run containerd at debug level and
#                                          copy its logs to DIR
# Needs: containerd + ctr + containerd-shim-runc-v2 + runc (Debian
# packages), for the cri phase contrib/fetch-containerd.sh, protoc, Debian's
# python3 with python3-grpcio and python3-protobuf and the CRI's api.proto
# (contrib/install-engines.sh); busybox-static, cargo. Everything it starts
# or creates (containerds, shims, containers, pods, snapshots, mounts,
# cgroups, state, temp dir) is removed on exit, also on failure or Ctrl-C.
# Each containerd runs in a cgroup of its own (cpuacct on v1, the unified
# hierarchy on v2) for the CPU accounting; its shims inherit it.
set -euo pipefail

case ${1:-} in -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;; esac
N=${1:-200}
P=${2:-20}
ROUNDS=${CONC_BENCH_ROUNDS:-2}
PHASES=${CONC_BENCH_PHASES:-ctr cri}
PER_POD=${CONC_BENCH_PER_POD:-4}
SAMPLE=${CONC_BENCH_SAMPLE:-1}
LOGS=${CONC_BENCH_LOGS:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3 # Debian's, for python3-grpcio
cri_py=$here/contrib/cri/cri.py
started=$EPOCHREALTIME
load0=$(cut -d" " -f1-3 /proc/loadavg)

die() { echo "concurrency-bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
case $N$P$ROUNDS in *[!0-9]*) die "N, P and CONC_BENCH_ROUNDS are numbers" ;; esac
[ "$N" -gt 0 ] && [ "$P" -gt 0 ] && [ "$ROUNDS" -gt 0 ] || die "N, P and rounds must be > 0"
for phase in $PHASES; do case $phase in ctr | cri) ;; *) die "unknown phase $phase (ctr, cri)" ;; esac; done
for tool in runc python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool missing (see contrib/install-deps.sh)"
done

ctr_bin=${CONC_BENCH_CTR_CONTAINERD:-$(dirname "$(command -v containerd || echo /usr/bin/containerd)")}
cri_bin=${CONC_BENCH_CRI_CONTAINERD:-}
case " $PHASES " in *" ctr "*)
  [ -x "$ctr_bin/containerd" ] && [ -x "$ctr_bin/ctr" ] || die "no containerd and ctr in $ctr_bin (contrib/install-deps.sh)"
  [ -x "$ctr_bin/containerd-shim-runc-v2" ] || command -v containerd-shim-runc-v2 >/dev/null ||
    die "containerd-shim-runc-v2 missing"
  ;;
esac
case " $PHASES " in *" cri "*)
  if [ -z "$cri_bin" ]; then
    for suite in sid trixie; do
      [ -x "/var/cache/myshim/containerd/$suite/usr/bin/containerd" ] && { cri_bin=/var/cache/myshim/containerd/$suite/usr/bin; break; }
    done
  fi
  [ -n "$cri_bin" ] && [ -x "$cri_bin/containerd" ] || die "no containerd 2.x or 1.7 for the cri phase (contrib/fetch-containerd.sh)"
  command -v protoc >/dev/null || die "protoc missing (contrib/install-engines.sh)"
  "$py" -c 'import grpc, google.protobuf' 2>/dev/null || die "python3-grpcio/python3-protobuf missing (contrib/install-engines.sh)"
  [ $((N % PER_POD)) = 0 ] || die "N ($N) is not a multiple of CONC_BENCH_PER_POD ($PER_POD)"
  ;;
esac

echo "building containerd-shim-myshim-v2 (release)..." >&2
(cd "$here" && cargo build --release -q -p containerd-shim-myshim-v2)
rel=$here/target/x86_64-unknown-linux-gnu/release
shim=$rel/containerd-shim-myshim-v2
[ -x "$shim" ] || die "$shim not built"

IMAGE=docker.io/library/busybox:bench
PAUSE=docker.io/library/busybox:bench-pause
D=$(mktemp -d /tmp/myshim-concbench.XXXXXX)
tag=$(basename "$D" | tr -dc 'a-zA-Z0-9' | tail -c 6)
NS=concbench$tag      # ctr phase: containerd namespace, cgroups /NS/ID
CG=/concbench-$tag    # cri phase: the pods' cgroup parent
declare -A ctd_pid=() # containerd per phase
job='' sampler=''
results=$D/results

c() { "$ctr_bin/ctr" -a "$D/ctr/c.sock" -n "$NS" "$@" </dev/null; }
k() { "$cri_bin/ctr" -a "$D/cri/c.sock" -n k8s.io "$@" </dev/null; }
cri() { "$py" "$cri_py" -a "$D/cri/c.sock" "$@" </dev/null; }
load() { cut -d" " -f1 /proc/loadavg; }
# Where the CPU goes. Each containerd runs in a cgroup of its own for CPU
# accounting only (cpuacct on v1, the unified hierarchy on v2), which its
# children inherit: the shims (their `start`, the shim, myshim's helper and
# workers, runc) and the containers' processes until they enter their own
# cgroups. Per-process times would not do: they are in clock ticks, and most
# of 200 shims use less than one.
if [ -d /sys/fs/cgroup/cpuacct ]; then acct=/sys/fs/cgroup/cpuacct
elif [ -d /sys/fs/cgroup/cpu,cpuacct ]; then acct=/sys/fs/cgroup/cpu,cpuacct
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then acct=/sys/fs/cgroup
else acct=''
fi
ACCT=/concbench-$tag-cpu
cg_usage() { # cgroup dir -> CPU ns, with its descendants
  if [ -f "$1/cpuacct.usage" ]; then cat "$1/cpuacct.usage"
  elif [ -f "$1/cpu.stat" ]; then awk '$1 == "usage_usec" { print $2 * 1000 }' "$1/cpu.stat"
  else echo 0
  fi
}
# One line per value: the machine's CPU ticks busy (user+nice+system+irq+
# softirq), idle, iowait, steal (by the hypervisor); containerd's own ticks; ns of containerd's
# cgroup and of the containers' cgroups.
ticks() { # phase
  local cg
  case $1 in ctr) cg=/$NS ;; cri) cg=$CG ;; esac
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; print $5; print $6; print $9 }' /proc/stat
  awk '{ print $14 + $15 }' "/proc/${ctd_pid[$1]}/stat"
  cg_usage "$acct$ACCT/$1"
  cg_usage "$acct$cg"
}

# Runs a long command as a job in its own process group and waits for it, so
# that INT/TERM interrupt the wait at once and cleanup can stop the group
# (the command and every ctr it started).
bg_run() { set -m; "$@" & job=$!; set +m; local rc=0; wait "$job" || rc=$?; job=''; return "$rc"; }

# --- helpers in Python ------------------------------------------------------
# Shim processes: argv[0] is a shim binary (myshim's shim runs from a
# write-protected image of its binary: its exe link does not name the file,
# its argv[0] does) and the command line names MARK (the containerd's
# directory, in its socket address), or the parent is such a process with the
# same argv[0] (myshim's fork helper and its workers). Zombies are skipped.
#   shims.py list MARK              pids, one a line
#   shims.py sample MARK OUT SECS   samples until SIGTERM, then once more and
#                                   writes JSON to OUT: peak total PSS (KiB)
#                                   and the processes and threads at it, and
#                                   its own CPU time
cat >"$D/shims.py" <<'PY'
import json, os, signal, sys, time
SHIMS = ("containerd-shim-myshim-v2", "containerd-shim-runc-v2")

def shims(mark):
    cand = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if rest[0] == "Z":
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, IndexError):
            continue
        argv0 = os.path.basename(cmd.split(b"\0", 1)[0].decode(errors="replace"))
        if argv0 in SHIMS:
            cand[int(d)] = (int(rest[1]), argv0, mark.encode() in cmd)
    match = {p for p, (_, _, m) in cand.items() if m}
    grown = True
    while grown:
        grown = False
        for p, (pp, a, _) in cand.items():
            if p not in match and pp in match and cand[pp][1] == a:
                match.add(p)
                grown = True
    return sorted(match)

def measure(mark):
    pss = threads = procs = 0
    for p in shims(mark):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                v = next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
            with open(f"/proc/{p}/status") as f:
                t = next(int(l.split()[1]) for l in f if l.startswith("Threads:"))
        except (OSError, StopIteration):
            continue  # exited meanwhile
        pss += v; threads += t; procs += 1
    return pss, procs, threads

mode, mark = sys.argv[1], sys.argv[2]
if mode == "list":
    print("\n".join(map(str, shims(mark))))
    sys.exit(0)
out, secs = sys.argv[3], float(sys.argv[4])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
peak, maxp, maxt, n = (0, 0, 0), 0, 0, 0
while True:
    last = stop
    s = measure(mark)
    n += 1
    peak = max(peak, s)
    maxp, maxt = max(maxp, s[1]), max(maxt, s[2])
    if last:
        break
    # Sleep in small steps so that SIGTERM's final sample comes at once.
    end = time.monotonic() + secs
    while not stop and time.monotonic() < end:
        time.sleep(0.02)
me = os.times()
json.dump({"peak_pss_kib": peak[0], "procs": peak[1], "threads": peak[2], "max_procs": maxp,
           "max_threads": maxt, "final_pss_kib": s[0], "final_procs": s[1], "samples": n,
           "sampler_cpu": me.user + me.system}, open(out, "w"))
PY

# ctr's burst: ctr-burst.py up CTR SOCK NS RUNTIME IMAGE PREFIX N P
#   N `ctr run -d` of IMAGE as PREFIX0.., P at a time; JSON {wall, failures,
#   running, errors, client_cpu (of the ctr processes and this driver),
#   ops (seconds of each ctr run -d)}
# ctr-burst.py down CTR SOCK NS PREFIX P
#   `task delete -f` + `container rm` of every container named PREFIX...,
#   P at a time; JSON {wall, failures, errors}
cat >"$D/ctr-burst.py" <<'PY'
import json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
mode, ctr, sock, ns = sys.argv[1:5]

def run(args):
    return subprocess.run([ctr, "-a", sock, "-n", ns] + args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

if mode == "up":
    runtime, image, prefix, n, p = sys.argv[5], sys.argv[6], sys.argv[7], int(sys.argv[8]), int(sys.argv[9])
    def one(k):
        t = time.perf_counter()
        r = run(["run", "-d", "--runtime", runtime, image, f"{prefix}{k}", "sleep", "2147483647"])
        return t, time.perf_counter(), r.returncode, f"{prefix}{k}: {r.stderr.strip()}"
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=p) as pool:
        res = list(pool.map(one, range(n)))
    wall = max(e for _, e, _, _ in res) - t0
    rows = [l.split() for l in run(["task", "ls"]).stdout.splitlines()[1:]]
    running = sum(1 for r in rows if len(r) >= 3 and r[0].startswith(prefix) and r[2] == "RUNNING")
    errors = [e for _, _, rc, e in res if rc != 0]
    t = os.times()  # the ctr processes, reaped (task ls included: small)
    print(json.dumps({"wall": wall, "failures": max(len(errors), n - running), "running": running,
                      "errors": errors[:20], "client_cpu": t.children_user + t.children_system + t.user + t.system,
                      "ops": [e - s for s, e, _, _ in res]}))
else:
    prefix, p = sys.argv[5], int(sys.argv[6])
    ids = [i for i in run(["container", "ls", "-q"]).stdout.split() if i.startswith(prefix)]
    def one(i):
        run(["task", "delete", "-f", i])  # fails if there is no task: fine
        r = run(["container", "rm", i])
        return None if r.returncode == 0 else f"{i}: {r.stderr.strip()}"
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=p) as pool:
        errors = [e for e in pool.map(one, ids) if e]
    print(json.dumps({"wall": time.perf_counter() - t0, "failures": len(errors), "errors": errors[:20]}))
PY

shim_pids() { "$py" "$D/shims.py" list "$D/$1/"; } # phase

# Kills every process in a cgroup tree (each hierarchy), or removes the tree.
cgroup_tree() { # kill|remove /PATH
  local t
  for t in /sys/fs/cgroup/*"$2" /sys/fs/cgroup"$2"; do
    [ -d "$t" ] || continue
    case $1 in
      kill) find "$t" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true ;;
      remove) find "$t" -depth -type d -exec rmdir {} + 2>/dev/null || true ;;
    esac
  done
}

# Everything the phase's containers may have left: tasks and containers
# (forced), shims, processes in our cgroups. containerd keeps running.
force_clean() { # phase
  local pid
  case $1 in
    ctr)
      "$py" "$D/ctr-burst.py" down "$ctr_bin/ctr" "$D/ctr/c.sock" "$NS" "" "$P" >/dev/null 2>&1
      cgroup_tree kill "/$NS"
      ;;
    cri)
      cri --timeout 30 teardown --parallel "$P" >/dev/null 2>&1 || { cgroup_tree kill "$CG"; cri --timeout 30 cleanup >/dev/null 2>&1; }
      cgroup_tree kill "$CG"
      ;;
  esac
  for pid in $(shim_pids "$1"); do kill -KILL "$pid" 2>/dev/null || true; done
}

stop_containerd() { # phase
  local pid=${ctd_pid[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -z "$LOGS" ] || { mkdir -p "$LOGS" && cp "$D/$1/containerd.log" "$LOGS/containerd-$1.log"; }
  unset "ctd_pid[$1]"
}

# Global directories containerd and the shims share with other containerds:
# what is in them before we start, so that only what we add is counted or
# removed.
GLOBAL_DIRS="/run/containerd/s /run/containerd/fifo /run/containerd/myshim/$NS /run/containerd/runc/$NS
  /run/containerd/myshim/k8s.io /run/containerd/runc/k8s.io"
global_entries() {
  local g
  for g in $GLOBAL_DIRS; do [ ! -d "$g" ] || find "$g" -mindepth 1 -maxdepth 1 2>/dev/null || true; done | sort
}

cleanup() {
  local rc=$? phase pid m
  set +eu
  trap - EXIT INT TERM
  [ -n "$job" ] && kill -TERM -- "-$job" 2>/dev/null && wait "$job" 2>/dev/null
  [ -n "$sampler" ] && kill -TERM "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
  for phase in "${!ctd_pid[@]}"; do
    kill -0 "${ctd_pid[$phase]}" 2>/dev/null && force_clean "$phase"
    stop_containerd "$phase"
  done
  for phase in ctr cri; do
    for pid in $(shim_pids "$phase" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  cgroup_tree kill "/$NS"
  cgroup_tree kill "$CG"
  cgroup_tree kill "$ACCT"
  sleep 0.2
  # Mounts under the temp dir, deepest first.
  awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' |
    sort -rn | cut -d' ' -f2- | while read -r m; do umount -l "$m" 2>/dev/null; done
  cgroup_tree remove "/$NS"
  cgroup_tree remove "$CG"
  cgroup_tree remove "$ACCT"
  # What we added to the shared directories (fifo dirs of ctr, sockets and
  # state of shims), then those directories if they are empty now.
  [ -f "$D/global.before" ] && global_entries | comm -13 "$D/global.before" - | while read -r m; do rm -rf "$m"; done
  rm -rf "/run/containerd/myshim/$NS" "/run/containerd/runc/$NS"
  rmdir /run/containerd/myshim/k8s.io /run/containerd/runc/k8s.io /run/containerd/myshim /run/containerd/runc \
    /run/containerd/fifo /run/containerd/s /run/containerd 2>/dev/null # only if empty
  if awk -v d="$D/" 'index($5, d) == 1' /proc/self/mountinfo | grep -q .; then
    echo "concurrency-bench.sh: mounts left under $D, not removing it" >&2
  else
    rm -rf "$D"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
global_entries >"$D/global.before"

# --- the containerds --------------------------------------------------------
debug_cfg() { [ -z "$LOGS" ] || printf '[debug]\n  level = "debug"\n'; }

start_containerd() { # phase bin
  local d=$D/$1 bin=$2 up
  [ -z "$acct" ] || mkdir -p "$acct$ACCT/$1"
  (
    [ -z "$acct" ] || echo "$BASHPID" >"$acct$ACCT/$1/cgroup.procs"
    cd "$d" && PATH=$rel:$bin:$PATH exec "$bin/containerd" --config "$d/config.toml" >"$d/containerd.log" 2>&1
  ) &
  ctd_pid[$1]=$!
  case $1 in ctr) up="c version" ;; cri) up="cri call Version" ;; esac
  for _ in $(seq 300); do
    $up >/dev/null 2>&1 && return 0
    kill -0 "${ctd_pid[$1]}" 2>/dev/null || die "containerd ($1) died: $(tail "$d/containerd.log")"
    sleep 0.1
  done
  die "containerd ($1) did not come up: $(tail "$d/containerd.log")"
}

echo "building $IMAGE and $PAUSE..." >&2
"$here/contrib/make-bundle.sh" "$D/image" >/dev/null
"$here/contrib/make-image.sh" "$D/image/rootfs" "$IMAGE" "$D/image.tar"
"$py" "$cri_py" image-cmd "$D/image.tar" "$D/pause.tar" "$PAUSE" sleep 2147483647

versions=''
for phase in $PHASES; do
  mkdir -p "$D/$phase"
  case $phase in
    ctr)
      cat >"$D/ctr/config.toml" <<EOF
version = 2
root = "$D/ctr/root"
state = "$D/ctr/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/ctr/c.sock"
[ttrpc]
  address = "$D/ctr/c.sock.ttrpc"
$(debug_cfg)
EOF
      start_containerd ctr "$ctr_bin"
      c images import "$D/image.tar" >/dev/null
      versions+=" ctr: containerd $("$ctr_bin/containerd" --version | awk '{print $3}');"
      ;;
    cri)
      mkdir -p "$D/cri/cni" "$D/cri/logs"
      case $("$cri_bin/containerd" --version | awk '{print $3}') in
        1.*) template=$here/contrib/cri/containerd-1.7.toml ;;
        *) template=$here/contrib/cri/containerd-2.x.toml ;;
      esac
      { sed -e "s|@DIR@|$D/cri|g" -e "s|@MYSHIM@|$rel/myshim|g" -e "s|@SANDBOX_IMAGE@|$PAUSE|g" "$template"; debug_cfg; } >"$D/cri/config.toml"
      start_containerd cri "$cri_bin"
      k images import "$D/image.tar" >/dev/null
      k images import "$D/pause.tar" >/dev/null
      versions+=" cri: containerd $("$cri_bin/containerd" --version | awk '{print $3}');"
      ;;
  esac
done

# --- one burst ----------------------------------------------------------------
# What is left of a phase after its teardown, as "what=count ..." (empty if
# nothing); waits up to 20 s for shims to exit and state to go.
leftovers() { # phase
  local phase=$1 out i n
  for i in $(seq 40); do
    out=''
    case $phase in
      ctr)
        n=$(c task ls -q | grep -c .) && out+=" tasks=$n"
        n=$(c container ls -q | grep -c .) && out+=" containers=$n"
        n=$(c snapshots ls | awk '$NF == "Active"' | grep -c .) && out+=" snapshots=$n"
        n=$(find /sys/fs/cgroup/*/"$NS" -mindepth 1 -type d 2>/dev/null | grep -c .) && out+=" cgroups=$n"
        ;;
      cri)
        n=$(cri call ListPodSandbox | "$py" -c 'import json,sys; print(len(json.load(sys.stdin).get("items", [])))') || n='?'
        [ "$n" = 0 ] || out+=" pods=$n"
        n=$(cri call ListContainers | "$py" -c 'import json,sys; print(len(json.load(sys.stdin).get("containers", [])))') || n='?'
        [ "$n" = 0 ] || out+=" cri-containers=$n"
        n=$(k task ls -q | grep -c .) && out+=" tasks=$n"
        n=$(k container ls -q | grep -c .) && out+=" containers=$n"
        n=$(k snapshots ls | awk '$NF == "Active"' | grep -c .) && out+=" snapshots=$n"
        n=$(find /sys/fs/cgroup/*"$CG" /sys/fs/cgroup"$CG" -mindepth 1 -type d 2>/dev/null | grep -c .) && out+=" cgroups=$n"
        ;;
    esac
    n=$(shim_pids "$phase" | grep -c .) && out+=" shims=$n"
    n=$(awk -v d="$D/$phase/" 'index($5, d) == 1' /proc/self/mountinfo | grep -c .) && out+=" mounts=$n"
    n=$(global_entries | comm -13 "$D/global.before" - | grep -v '^/run/containerd/fifo/' | grep -c .) && out+=" state=$n"
    [ -n "$out" ] || break
    sleep 0.5
  done
  echo "${out# }"
}

# One burst of N with runtime NAME (myshim|runc-v2); appends a JSON line to
# $results.
burst() { # phase name round
  local phase=$1 name=$2 round=$3 prefix up down left l0 rt
  prefix=${name:0:1}$round-
  l0=$(load)
  ticks "$phase" >"$D/ticks.before"
  "$py" "$D/shims.py" sample "$D/$phase/" "$D/mem.json" "$SAMPLE" &
  sampler=$!
  case $phase in
    ctr)
      case $name in myshim) rt=io.containerd.myshim.v2 ;; *) rt=io.containerd.runc.v2 ;; esac
      bg_run "$py" "$D/ctr-burst.py" up "$ctr_bin/ctr" "$D/ctr/c.sock" "$NS" "$rt" "$IMAGE" "$prefix" "$N" "$P" >"$D/up.json"
      ;;
    cri)
      case $name in myshim) rt=myshim ;; *) rt=runc ;; esac
      bg_run cri burst $((N / PER_POD)) "$PER_POD" "$rt" --parallel "$P" --prefix "$prefix" --image "$IMAGE" \
        --cgroup-parent "$CG" --log-dir "$D/cri/logs" >"$D/up.json" || true
      [ -s "$D/up.json" ] || echo '{"wall": 0, "failures": '"$N"', "errors": ["cri.py burst failed"], "ops": {}}' >"$D/up.json"
      ;;
  esac
  sleep 1 # the shims settle; the sampler's last sample is taken with all running
  kill -TERM "$sampler"; wait "$sampler" || true; sampler=''
  ticks "$phase" >"$D/ticks.after"
  case $phase in
    ctr) bg_run "$py" "$D/ctr-burst.py" down "$ctr_bin/ctr" "$D/ctr/c.sock" "$NS" "$prefix" "$P" >"$D/down.json" || true ;;
    cri) bg_run cri teardown --parallel "$P" >"$D/down.json" || true ;;
  esac
  [ -s "$D/down.json" ] || echo '{"wall": 0, "failures": -1, "errors": ["teardown failed"]}' >"$D/down.json"
  left=$(leftovers "$phase")
  [ -z "$left" ] || { echo "  left after $phase $name round $round: $left; cleaning up by force" >&2; force_clean "$phase"; }
  "$py" - "$phase" "$name" "$round" "$l0" "$(load)" "$left" "$D/up.json" "$D/down.json" "$D/mem.json" \
    "$D/ticks.before" "$D/ticks.after" >>"$results" <<'PY'
import json, os, sys
phase, name, rnd, l0, l1, left, up, down, mem, t0, t1 = sys.argv[1:]
u, d, m = (json.load(open(f)) for f in (up, down, mem))
ops = u.pop("ops")
hz = os.sysconf("SC_CLK_TCK")
b0, i0, w0, s0, c0, a0, k0 = (int(x) for x in open(t0).read().split())
b1, i1, w1, s1, c1, a1, k1 = (int(x) for x in open(t1).read().split())
# CPU seconds from the burst's start to all running (plus the settling
# second); the containers' cgroups are new, their usage counts from 0.
cpu = {"busy": (b1 - b0) / hz, "idle": (i1 - i0) / hz, "iowait": (w1 - w0) / hz, "steal": (s1 - s0) / hz,
       "containerd": (c1 - c0) / hz, "client": u.pop("client_cpu", 0), "sampler": m.pop("sampler_cpu"),
       "shims": max(0, (a1 - a0) / 1e9 - (c1 - c0) / hz), "containers": (k1 - k0) / 1e9}
print(json.dumps({"phase": phase, "name": name, "round": int(rnd), "load": [float(l0), float(l1)], "left": left,
                  "up": u, "ops": ops, "down": d, "mem": m, "cpu": cpu}))
PY
  "$py" - "$results" <<'PY' >&2
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
u, d, m = r["up"], r["down"], r["mem"]
print(f"  {r['phase']} {r['name']:<7} round {r['round']}: {u['wall']:6.2f} s, failures {u['failures']}, "
      f"peak PSS {m['peak_pss_kib'] / 1024:6.1f} MiB in {m['procs']} processes / {m['threads']} threads, "
      f"teardown {d['wall']:5.2f} s, left: {r['left'] or 'nothing'}, load {r['load'][0]} -> {r['load'][1]}")
c = r["cpu"]
print(f"    CPU s: machine busy {c['busy']:.1f} (idle {c['idle']:.1f}, iowait {c['iowait']:.1f}, steal {c['steal']:.1f}); "
      f"client {c['client']:.1f}, containerd {c['containerd']:.1f}, shims {c['shims']:.1f}, "
      f"containers {c['containers']:.1f}, sampler {c['sampler']:.1f}")
for e in u.get("errors", [])[:5] + d.get("errors", [])[:5]:
    print("    " + e)
PY
}

# --- the rounds -----------------------------------------------------------------
: >"$results"
for phase in $PHASES; do
  # Warmup, not counted: a few containers with each runtime (binaries and
  # image in the page cache, containerd's first-use paths).
  echo "== $phase: warmup" >&2
  for name in myshim runc-v2; do
    case $phase in
      ctr)
        case $name in myshim) rt=io.containerd.myshim.v2 ;; *) rt=io.containerd.runc.v2 ;; esac
        "$py" "$D/ctr-burst.py" up "$ctr_bin/ctr" "$D/ctr/c.sock" "$NS" "$rt" "$IMAGE" "w-" 4 4 >/dev/null
        "$py" "$D/ctr-burst.py" down "$ctr_bin/ctr" "$D/ctr/c.sock" "$NS" "w-" 4 >/dev/null
        ;;
      cri)
        case $name in myshim) rt=myshim ;; *) rt=runc ;; esac
        cri burst 2 2 "$rt" --parallel 2 --prefix w --image "$IMAGE" --cgroup-parent "$CG" --log-dir "$D/cri/logs" >/dev/null
        cri teardown >/dev/null
        ;;
    esac
  done
  left=$(leftovers "$phase")
  [ -z "$left" ] || die "left after the $phase warmup: $left"
  echo "== $phase: $N containers, $P at a time, $ROUNDS rounds, the runtimes alternating" >&2
  for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="myshim runc-v2"; else order="runc-v2 myshim"; fi
    for name in $order; do
      sleep 2 # what the last teardown set off in the kernel (cgroup removal, RCU) settles
      burst "$phase" "$name" "$round"
    done
  done
  stop_containerd "$phase"
done

printf -v total '%.0f' "$(python3 -c "print($EPOCHREALTIME - $started)")"
echo
echo "==== summary ($N containers, $P at a time, $ROUNDS rounds;$versions $(runc --version | head -1), $(nproc) CPUs, loadavg at start $load0, at end $(cut -d" " -f1-3 /proc/loadavg); $total s) ===="
"$py" - "$results" "$PER_POD" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
per_pod = int(sys.argv[2])
bad = 0
def mean(v):
    return statistics.mean(v) if v else float("nan")
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")
for phase in dict.fromkeys(r["phase"] for r in rows):
    by = {n: [r for r in rows if r["phase"] == phase and r["name"] == n] for n in ("myshim", "runc-v2")}
    what = "ctr run -d" if phase == "ctr" else f"CRI, pods of {per_pod}"
    print(f"{phase} ({what}):")
    m = {}
    for n, rs in by.items():
        if not rs:
            continue
        fails = sum(r["up"]["failures"] for r in rs) + sum(max(r["down"]["failures"], 0) for r in rs)
        left = [r["left"] for r in rs if r["left"]]
        bad += fails + len(left)
        m[n] = {
            "wall": mean([r["up"]["wall"] for r in rs]),
            "pss": mean([r["mem"]["peak_pss_kib"] for r in rs]) / 1024,
            "procs": mean([r["mem"]["procs"] for r in rs]),
            "threads": mean([r["mem"]["threads"] for r in rs]),
            "down": mean([r["down"]["wall"] for r in rs]),
        }
        walls = ", ".join(f"{r['up']['wall']:.2f}" for r in rs)
        loads = ", ".join(f"{r['load'][0]:.1f}" for r in rs)
        print(f"  {n:<8} wall {m[n]['wall']:7.2f} s ({walls})   failures {fails}   "
              f"peak shim PSS {m[n]['pss']:7.1f} MiB, {m[n]['procs']:.0f} processes, {m[n]['threads']:.0f} threads   "
              f"teardown {m[n]['down']:6.2f} s   left: {'; '.join(left) or 'nothing'}   load {loads}")
        n_c = sum(r["up"].get("running", 0) for r in rs) or 1
        cm = {k: sum(r["cpu"][k] for r in rs) / n_c * 1000 for k in rs[0]["cpu"]}
        m[n]["cpu"] = cm
        rest = cm["busy"] - sum(cm[k] for k in ("client", "containerd", "shims", "containers", "sampler"))
        print(f"           CPU ms per container: machine busy {cm['busy']:.0f} = client {cm['client']:.0f} + "
              f"containerd {cm['containerd']:.0f} + shims {cm['shims']:.0f} + containers {cm['containers']:.0f} + "
              f"sampler {cm['sampler']:.0f} + the rest {rest:.0f} (idle {cm['idle']:.0f}, iowait {cm['iowait']:.0f}, "
              f"steal {cm['steal']:.0f})")
        if phase == "ctr":
            ops = [x for r in rs for x in r["ops"]]
            print(f"           ctr run -d: median {pct(ops, 0.5):.0f} ms, p90 {pct(ops, 0.9):.0f} ms, max {pct(ops, 1):.0f} ms")
        else:
            parts = []
            for op in ("RunPodSandbox", "CreateContainer", "StartContainer"):
                ops = [x for r in rs for x in r["ops"].get(op, [])]
                parts.append(f"{op} median {pct(ops, 0.5):.0f} / p90 {pct(ops, 0.9):.0f} ms")
            print("           " + ", ".join(parts))
    if len(m) == 2:
        a, b = m["myshim"], m["runc-v2"]
        pairs = [x["up"]["wall"] / y["up"]["wall"] for x, y in zip(by["myshim"], by["runc-v2"]) if y["up"]["wall"]]
        print(f"  myshim/runc-v2: wall {a['wall'] / b['wall']:.2f} (per round {', '.join(f'{p:.2f}' for p in pairs)})   "
              f"peak shim PSS {a['pss'] / b['pss']:.3f}   threads {a['threads'] / b['threads']:.3f}   "
              f"teardown {a['down'] / b['down']:.2f}")
print("failures or leftovers: " + str(bad))
sys.exit(1 if bad else 0)
PY
