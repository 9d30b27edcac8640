#!/bin/sh
# run-bench.sh: `run` of /bin/true on a fresh container id each time, for
# myshim, runc and crun, timed by hyperfine in one private mount namespace
# (crun 1.8 refuses hybrid cgroup hosts unless /sys/fs/cgroup/unified is
# hidden, so every runtime gets the same view). Prints medians and ratios.
#
# Usage (root): contrib/bench/run-bench.sh [RUNS [BASELINE]]   needs hyperfine, runc, crun
# BASELINE: another myshim binary (e.g. built from an older commit): then
# myshim and it also run alternately, one `run` each in turn, so that load
# from others on a shared machine hits both alike; prints both medians.
set -eu
runs=${1:-200}
baseline=${2:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run-bench.sh: run as root" >&2; exit 1; }
for tool in hyperfine runc crun python3; do
  command -v $tool >/dev/null || { echo "run-bench.sh: $tool missing (apt-get install hyperfine runc crun)" >&2; exit 1; }
done
(cd "$here" && cargo build --release -q -p myshim-runtime)
myshim=$here/target/x86_64-unknown-linux-gnu/release/myshim

work=$(mktemp -d /tmp/myshim-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/contrib/make-bundle.sh" "$work/bundle"
"$myshim" spec -b "$work/bundle"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=1)
PY

# The timed commands: each is `sh -c` so $$ gives a fresh id for every runtime alike.
cat > "$work/inner.sh" <<EOF2
set -eu
umount /sys/fs/cgroup/unified 2>/dev/null || true
cd "$work/bundle"
hyperfine -N --warmup 10 --runs $runs --export-json "$work/result.json" \\
  -n myshim "sh -c 'exec $myshim --root $work/state-myshim run m\\\$\\\$'" \\
  -n crun   "sh -c 'exec crun --root $work/state-crun run c\\\$\\\$'" \\
  -n runc   "sh -c 'exec runc --root $work/state-runc run r\\\$\\\$'"
[ -z "$baseline" ] || python3 "$work/alternate.py" "$myshim" "$baseline" $runs "$work"
EOF2
cat > "$work/alternate.py" <<'PY'
import statistics, subprocess, sys, time
new, base, runs, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
times = {"myshim": [], "baseline": []}
for i in range(runs):
    pair = [("myshim", new), ("baseline", base)]
    for name, binary in pair if i % 2 else pair[::-1]:
        start = time.perf_counter()
        subprocess.run([binary, "--root", f"{work}/alt-{name}", "run", f"a{name}{i}"], check=True)
        times[name].append(time.perf_counter() - start)
m = {k: statistics.median(v) * 1000 for k, v in times.items()}
print(f"\nalternating, median ms:  myshim {m['myshim']:.2f}  baseline {m['baseline']:.2f}  "
      f"myshim/baseline = {m['myshim'] / m['baseline']:.3f}")
PY
unshare -m --propagation private sh "$work/inner.sh"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print()
print("median ms:  " + "  ".join(f"{k} {v*1000:.2f}" for k, v in r.items()))
print(f"myshim/crun = {r['myshim']/r['crun']:.2f}   myshim/runc = {r['myshim']/r['runc']:.2f}")
PY
