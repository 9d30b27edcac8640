//! A soak of the shim (issue 14, "Leaks"), through a private containerd
//! driven by ctr. A pod-like task (`io.kubernetes.cri.sandbox-id`) keeps one
//! shim alive for the whole soak; on every cycle:
//!
//! - a container of that pod runs with `ctr run --rm`, through that shim;
//! - a container of its own runs with `ctr run --rm` (a shim of its own,
//!   which must exit and leave nothing);
//! - a process is exec'd in the pod's task, and the task is paused and
//!   resumed.
//!
//! Afterwards there is nothing more than before: the long-lived shim's and
//! its fork helper's fds, shims of this containerd, mounts (made in the
//! soak's own mount namespace, where containerd and the shims run), cgroups
//! under the namespace, runtime and task state dirs, fifos, shim sockets,
//! zombies, containers and tasks; the pod's shim still has its socket; and
//! the shim's memory (PSS) stays within `PSS_GROWTH_BOUND_KIB`. At the end
//! the test leaves such things on purpose, to see that the counts see them.
//!
//! `MYSHIM_SOAK_CYCLES` sets the number of cycles (default 20, a few
//! seconds for `cargo test`); `contrib/bench/soak.sh 1000` runs the long
//! form. `MYSHIM_SOAK_CONTAINERD` picks the containerd (`installed`,
//! `trixie` or `sid`, as tests/shim.rs names them; default the first
//! found). The counts before and after are printed (`--nocapture`).
//!
//! The private containerd below is a trimmed copy of tests/shim.rs's.

#[path = "common/ctr.rs"]
mod ctr;

use ctr::{build_image, Ctr, IMAGE, RUNTIME};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-myshim-v2");
const POD: &str = "soakpod";

/// How much the long-lived shim's (and its helper's) PSS may grow over the
/// second half of the soak, in KiB. A memory bound, not a speed limit.
/// Memory kept per container or per exec and never freed grows with the
/// number of cycles; what fills up once does not: the shim keeps the exits
/// of the last 256 pids nobody claimed (src/table.rs, UNCLAIMED_KEPT; its
/// workers' exits are among them), and the allocator and the binary's pages
/// settle. Measured here with execs alone, the shim's PSS grew by about
/// 250 KiB over the first 200 and by nothing over the 1000 after them; over
/// 1000 soak cycles by 100 KiB in the first half and by nothing in the
/// second. Hence the second half, which starts after that in the long
/// form. 256 KiB is 64 pages: over the 500 cycles of that half it catches
/// half a KiB or more kept per cycle (a table entry with its ids, an event,
/// an IO state), over the 10 of the default run about 25 KiB (a leaked
/// buffer or stack); the values printed show the rest.
const PSS_GROWTH_BOUND_KIB: i64 = 256;

fn cycles() -> usize {
    match std::env::var("MYSHIM_SOAK_CYCLES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("MYSHIM_SOAK_CYCLES={v:?} is not a number")),
        Err(_) => 20,
    }
}

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: shim tests need root");
    }
    root
}

/// The containerd to soak against: (name, containerd, ctr).
fn containerd_build() -> (String, PathBuf, PathBuf) {
    let mut found = vec![];
    if Path::new("/usr/bin/containerd").exists() {
        found.push((
            "installed".to_string(),
            "/usr/bin/containerd".into(),
            "/usr/bin/ctr".into(),
        ));
    }
    for suite in ["trixie", "sid"] {
        let base = Path::new("/var/cache/myshim/containerd").join(suite).join("usr/bin");
        if base.join("containerd").exists() {
            found.push((suite.to_string(), base.join("containerd"), base.join("ctr")));
        }
    }
    assert!(!found.is_empty(), "no containerd found: run contrib/install-deps.sh");
    match std::env::var("MYSHIM_SOAK_CONTAINERD") {
        Ok(name) => found
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("MYSHIM_SOAK_CONTAINERD={name}: not found")),
        Err(_) => found.remove(0),
    }
}

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    ctr: PathBuf,
    namespace: String,
}

impl Containerd {
    fn start(containerd: &Path, ctr: &Path) -> Containerd {
        let dir = tempfile::Builder::new().prefix("myshim-soak").tempdir().unwrap();
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{r}/c.sock\"\n[ttrpc]\n  address = \"{r}/c.sock.ttrpc\"\n",
            r = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let shim_dir = Path::new(SHIM).parent().unwrap();
        let path = format!("{}:{}", shim_dir.display(), std::env::var("PATH").unwrap_or_default());
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = Command::new(containerd)
            .arg("--config")
            .arg(d.join("config.toml"))
            .env("PATH", path)
            .current_dir(d)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let namespace = format!(
            "myshimsoak{}",
            d.file_name().unwrap().to_string_lossy().replace(['.', '-'], "")
        );
        let c = Containerd {
            dir,
            daemon,
            ctr: ctr.to_path_buf(),
            namespace,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up: {}", c.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let tar = build_image(c.dir.path());
        c.ok(&["images", "import", tar.to_str().unwrap()]);
        c
    }

    fn address(&self) -> String {
        self.dir.path().join("c.sock").display().to_string()
    }

    /// Shim processes serving this containerd (they carry its address).
    fn shims(&self) -> Vec<i32> {
        let sock = self.address();
        pids_with_cmdline(|c| c.contains("containerd-shim-myshim-v2") && c.contains(&sock))
    }
}

impl Ctr for Containerd {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.ctr);
        c.arg("-a").arg(self.address()).arg("-n").arg(&self.namespace);
        // ctr's fifos in the test's own directory, where they are counted.
        let words = match args {
            ["run", ..] => 1,
            ["task", "exec", ..] => 2,
            _ => 0,
        };
        c.args(&args[..words]);
        if words > 0 {
            c.arg("--fifo-dir").arg(self.dir.path().join("fifo"));
        }
        c.args(&args[words..]);
        c.stdin(Stdio::null());
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks first, so that their shims clean up; then containerd and
        // whatever shim is left (ours only: they carry our socket path).
        if let Ok(ls) = String::from_utf8(self.ctr(&["task", "ls", "-q"]).stdout) {
            for id in ls.lines() {
                let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
                std::thread::sleep(Duration::from_millis(100));
                let _ = self.ctr(&["task", "delete", "-f", id]);
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let dir = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/myshim").join(&self.namespace));
        for e in std::fs::read_dir("/run/containerd/fifo")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(e.path());
        }
        for dir in [
            "/run/containerd/fifo",
            "/run/containerd/s",
            "/run/containerd/myshim",
            "/run/containerd",
        ] {
            let _ = std::fs::remove_dir(dir);
        }
        // ctr puts containers in /NAMESPACE/ID; the runtime removes the
        // container's cgroup, the namespace's parent is ours to remove.
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.namespace));
        }
    }
}

fn pids_with_cmdline(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.state != 'Z')
        .filter(|p| {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
            pred(&String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .map(|p| p.pid)
        .collect()
}

struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
    comm: String,
}

fn processes() -> Vec<Proc> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push(Proc {
            pid,
            ppid,
            state,
            comm: stat[open + 1..close].to_string(),
        });
    }
    out
}

fn unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270)
}

/// The cgroup hierarchies: /sys/fs/cgroup on v2, each one below it on v1.
fn hierarchies() -> Vec<PathBuf> {
    if unified() {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Calls `f` on every entry below `dir` (not following symlinks).
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, std::fs::FileType)) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(t) = e.file_type() else { continue };
        f(&e.path(), t);
        if t.is_dir() {
            walk(&e.path(), f);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `FD -> TARGET` for each open fd of process `pid`.
fn fds(pid: i32) -> Vec<String> {
    let dir = format!("/proc/{pid}/fd");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!("{} -> {}", e.file_name().to_string_lossy(), target.display())
        })
        .collect();
    v.sort();
    v
}

/// `mount point fstype source` of a mountinfo line (mount ids left out).
fn mount_key(line: &str) -> String {
    let point = line.split(' ').nth(4).unwrap_or("");
    let after = line.split_once(" - ").map(|(_, r)| r).unwrap_or("");
    let mut rest = after.split(' ');
    let (fstype, source) = (rest.next().unwrap_or(""), rest.next().unwrap_or(""));
    format!("{point} {fstype} {source}")
}

/// The socket paths (below /run/containerd/s) of the shims of `groups`
/// on this containerd, as the containerd-shim crate names them: the
/// SHA-256 of ADDRESS/NAMESPACE/GROUP. One sha256sum for all of them.
fn socket_paths(c: &Containerd, groups: &[String]) -> Vec<PathBuf> {
    let keys: Vec<String> = groups
        .iter()
        .map(|g| format!("{}/{}/{g}", c.address(), c.namespace))
        .collect();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"for k; do printf %s "$k" | sha256sum; done"#)
        .arg("sh")
        .args(&keys)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| Path::new("/run/containerd/s").join(l.split_whitespace().next().unwrap()))
        .collect()
}

/// `(pss, rss, anonymous)` in KiB, from /proc/PID/smaps_rollup.
fn memory(pid: i32) -> (i64, i64, i64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in smaps_rollup: {text}"))
    };
    (field("Pss"), field("Rss"), field("Anonymous"))
}

type Snapshot = BTreeMap<&'static str, Vec<String>>;

struct Soak<'a> {
    c: &'a Containerd,
    /// The long-lived shim, serving the pod, and its fork helper.
    shim: i32,
    helper: i32,
    /// Every shim grouping the soak used (the pod's and one per own-shim
    /// container), for the socket count.
    groups: Vec<String>,
    /// The mounts the soak's mount namespace started with, not counted.
    inherited_mounts: std::collections::HashSet<String>,
}

impl Soak<'_> {
    fn snapshot(&self) -> Snapshot {
        let c = self.c;
        let dir = c.dir.path();
        let mut s = Snapshot::new();
        let mut shims: Vec<String> = c.shims().iter().map(|p| p.to_string()).collect();
        shims.sort();
        s.insert("shim processes of this containerd", shims);
        s.insert("fds of the long-lived shim", fds(self.shim));
        s.insert("fds of its fork helper", fds(self.helper));
        let parents = [std::process::id() as i32, c.daemon.id() as i32, self.shim, self.helper];
        s.insert(
            "zombies of the test, containerd, the shim or its helper",
            processes()
                .into_iter()
                .filter(|p| p.state == 'Z' && parents.contains(&p.ppid))
                .map(|p| format!("{} {} (parent {})", p.pid, p.comm, p.ppid))
                .collect(),
        );
        let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        s.insert(
            "mounts made in the soak's mount namespace",
            mountinfo
                .lines()
                .filter(|l| !self.inherited_mounts.contains(&inherited_key(l)))
                .map(mount_key)
                .collect(),
        );
        let (mut cgroups, mut procs) = (vec![], vec![]);
        for h in hierarchies() {
            walk(&h.join(&c.namespace), &mut |p, t| {
                if t.is_dir() {
                    cgroups.push(p.display().to_string());
                } else if p.file_name().is_some_and(|n| n == "cgroup.procs") {
                    let text = std::fs::read_to_string(p).unwrap_or_default();
                    procs.extend(text.lines().map(|l| format!("{}: {l}", p.display())));
                }
            });
        }
        s.insert("cgroups under the namespace", cgroups);
        s.insert("processes in them", procs);
        let runtime_state = Path::new("/run/containerd/myshim").join(&c.namespace);
        s.insert("runtime state dirs", names(&runtime_state));
        let task_state = dir.join("state/io.containerd.runtime.v2.task").join(&c.namespace);
        s.insert("containerd's task dirs", names(&task_state));
        let (mut fifos, mut sockets) = (vec![], vec![]);
        for d in [runtime_state.as_path(), &dir.join("fifo"), &dir.join("state")] {
            walk(d, &mut |p, t| {
                use std::os::unix::fs::FileTypeExt;
                if t.is_fifo() {
                    fifos.push(p.display().to_string());
                } else if t.is_socket() {
                    sockets.push(p.display().to_string());
                }
            });
        }
        s.insert("fifos (ctr's, runtime and task state)", fifos);
        s.insert("sockets in runtime and task state", sockets);
        s.insert(
            "shim sockets in /run/containerd/s",
            socket_paths(c, &self.groups)
                .into_iter()
                .filter(|p| p.exists())
                .map(|p| p.display().to_string())
                .collect(),
        );
        let ids = |args: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = c.ok(args).lines().map(String::from).collect();
            v.sort();
            v
        };
        s.insert("containers", ids(&["containers", "ls", "-q"]));
        s.insert("tasks", ids(&["task", "ls", "-q"]));
        s
    }
}

fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = vec![];
    for (kind, was) in before {
        let now = &after[kind];
        let added: Vec<&String> = now.iter().filter(|i| !was.contains(i)).collect();
        let gone: Vec<&String> = was.iter().filter(|i| !now.contains(i)).collect();
        if was.len() != now.len() || !added.is_empty() || !gone.is_empty() {
            out.push(format!(
                "{kind}: {} before, {} after; new: {added:?}; gone: {gone:?}",
                was.len(),
                now.len()
            ));
        }
    }
    out
}

/// A mount as the namespace started with it: its id (ids are reused, so
/// with what it is) and `mount_key`.
fn inherited_key(line: &str) -> String {
    format!("{} {}", line.split(' ').next().unwrap_or(""), mount_key(line))
}

/// Moves this thread, and so every process it starts, into a mount
/// namespace of its own whose mounts propagate nowhere and receive nothing,
/// and returns the mounts it starts with (copies of the host's).
/// What the soak's processes mount is in its table (read through
/// /proc/thread-self), what others on the host mount meanwhile is not, and
/// whatever is left there goes when the test ends. The mounts it starts
/// with are left out of the counts: one whose mount point another removes
/// on the host goes from every namespace.
fn private_mount_namespace() -> std::collections::HashSet<String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    mountinfo.lines().map(inherited_key).collect()
}

/// One cycle (see the top of the file); `i` makes the ids.
fn cycle(c: &Containerd, i: usize) {
    let pod = format!("io.kubernetes.cri.sandbox-id={POD}");
    let (member, own, exec) = (format!("p{i}"), format!("r{i}"), format!("e{i}"));
    // Each container's output is checked too. Once in about 1250 runs, at a
    // load average of 20, ctr exited 0 with no output: the shim hands the
    // output fifo to the container and keeps no end of it, so a container
    // that exits before ctr's reader (opened in the background) has opened
    // the fifo takes its output with it (suspected, not shown).
    let run = |args: &[&str], want: &str| {
        let out = c.ctr(args);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout) == format!("{want}\n"),
            "ctr {args:?}: {:?}, stdout {:?}, stderr {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            c.log()
        );
    };
    let in_pod = [
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--annotation",
        &pod,
        IMAGE,
        &member,
        "echo",
        &member,
    ];
    run(&in_pod, &member);
    run(&["run", "--rm", "--runtime", RUNTIME, IMAGE, &own, "echo", &own], &own);
    run(&["task", "exec", "--exec-id", &exec, "pod", "echo", &exec], &exec);
    c.ok(&["task", "pause", "pod"]);
    c.ok(&["task", "resume", "pod"]);
}

#[test]
fn shim_cycles_leave_nothing_behind() {
    if !is_root() {
        return;
    }
    let inherited_mounts = private_mount_namespace();
    let n = cycles();
    let (name, containerd, ctr) = containerd_build();
    let c = Containerd::start(&containerd, &ctr);
    c.run_detached(
        &["--annotation", &format!("io.kubernetes.cri.sandbox-id={POD}")],
        "pod",
        &["sleep", "1000000"],
    );
    c.wait_task("pod", "RUNNING");
    let shims = c.shims();
    let own_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ppid = |pid: i32| processes().into_iter().find(|p| p.pid == pid).map(|p| p.ppid);
    let serving: Vec<i32> = shims
        .iter()
        .copied()
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&own_pidns))
        .collect();
    let shim = *serving
        .iter()
        .find(|p| !serving.contains(&ppid(**p).unwrap_or(0)))
        .expect("no serving shim");
    let helper = *serving
        .iter()
        .find(|p| ppid(**p) == Some(shim))
        .expect("no fork helper");
    // The pod's shim listens on the socket named after the pod: the next
    // container of the pod finds it there (and a restarted containerd, by
    // the address file of each of the pod's tasks).
    let pod_socket = socket_paths(&c, &[POD.to_string()]).remove(0);
    assert!(pod_socket.exists(), "no socket at {}", pod_socket.display());
    let mut soak = Soak {
        c: &c,
        shim,
        helper,
        groups: vec![POD.to_string()],
        inherited_mounts,
    };
    // Warm-up: what is made once (containerd's and the shim's lazily made
    // state, the allocator's arenas, the binary's pages) exists before the
    // first count.
    let warmup = 3;
    for i in 0..warmup {
        cycle(&c, i);
    }
    soak.groups.extend((0..warmup + n).map(|i| format!("r{i}")));
    let before = soak.snapshot();
    let mem0 = (memory(shim), memory(helper));
    let mut mem_half = mem0;
    let started = Instant::now();
    for i in warmup..warmup + n {
        if i == warmup + n / 2 {
            mem_half = (memory(shim), memory(helper));
        }
        cycle(&c, i);
    }
    let elapsed = started.elapsed();
    // The last own-shim container's shim exits after ctr has returned:
    // wait (bounded, against a hang) for the counts to settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = soak.snapshot();
    while !differences(&before, &after).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = soak.snapshot();
    }
    let mem1 = (memory(shim), memory(helper));
    println!(
        "shim soak on containerd {name}: {n} cycles after {warmup} of warm-up, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!("  {:<58} {:>7} {:>7}", "", "before", "after");
    for (kind, items) in &before {
        println!("  {kind:<58} {:>7} {:>7}", items.len(), after[kind].len());
    }
    println!("  {:<58} {:>7} {:>7} {:>7}", "memory, KiB", "before", "half", "after");
    for (who, pick) in [
        (
            "long-lived shim",
            (|m: &((i64, i64, i64), (i64, i64, i64))| m.0) as fn(&_) -> (i64, i64, i64),
        ),
        ("its fork helper", |m| m.1),
    ] {
        let (b, h, a) = (pick(&mem0), pick(&mem_half), pick(&mem1));
        println!("  {:<58} {:>7} {:>7} {:>7}", format!("{who} Pss"), b.0, h.0, a.0);
        println!("  {:<58} {:>7} {:>7} {:>7}", format!("{who} Rss"), b.1, h.1, a.1);
        println!("  {:<58} {:>7} {:>7} {:>7}", format!("{who} Anonymous"), b.2, h.2, a.2);
    }
    let mut failures = differences(&before, &after);
    for (who, h, a) in [
        ("long-lived shim", mem_half.0 .0, mem1.0 .0),
        ("fork helper", mem_half.1 .0, mem1.1 .0),
    ] {
        if a - h >= PSS_GROWTH_BOUND_KIB {
            failures.push(format!(
                "the {who}'s Pss grew from {h} to {a} KiB over the second half of {n} cycles"
            ));
        }
    }
    // containerd runs `shim delete` in the bundle of every task whose
    // connection closes, a removed pod member's included: that must not
    // remove the socket of the pod's shim, which still serves the pod.
    if !pod_socket.exists() {
        failures.push(format!(
            "the socket of the pod's shim, {}, is gone while the shim serves the pod \
             (delete_shim of a removed pod member removed it)",
            pod_socket.display()
        ));
    }

    // The counts see what a leak would leave: a container of the pod and
    // one with a shim of its own, left running, and an exec whose stdin the
    // long-lived shim holds open.
    let pod = format!("io.kubernetes.cri.sandbox-id={POD}");
    c.run_detached(&["--annotation", &pod], "left", &["sleep", "1000000"]);
    c.run_detached(&[], "leftown", &["sleep", "1000000"]);
    soak.groups.push("leftown".to_string());
    c.wait_task("leftown", "RUNNING");
    let mut held = c
        .cmd(&[
            "task",
            "exec",
            "--exec-id",
            "held",
            "pod",
            "sh",
            "-c",
            "read x; echo $x",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.ok(&["task", "ps", "pod"]).lines().count() < 3 {
        assert!(Instant::now() < deadline, "the held exec never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = differences(&before, &soak.snapshot());
    // Containers are clone(CLONE_PARENT)ed: the children of the shim that
    // serves them.
    let left_pid: i32 = c
        .ok(&["task", "ls"])
        .lines()
        .find(|l| l.starts_with("left "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("no pid for left");
    let left_parent = ppid(left_pid).unwrap_or(0);
    use std::io::Write;
    held.stdin.take().unwrap().write_all(b"released\n").unwrap();
    let out = held.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "released\n");
    let kinds: Vec<&str> = seen.iter().map(|l| l.split(':').next().unwrap()).collect();
    for kind in [
        "cgroups under the namespace",
        "containerd's task dirs",
        "containers",
        "fds of the long-lived shim",
        "fifos (ctr's, runtime and task state)",
        "mounts made in the soak's mount namespace",
        "processes in them",
        "runtime state dirs",
        "shim processes of this containerd",
        "shim sockets in /run/containerd/s",
        "tasks",
    ] {
        if !kinds.contains(&kind) {
            failures.push(format!("the counts did not see a leak of {kind}: {}", seen.join("\n")));
        }
    }
    // And so the pod's next container is served by the pod's shim.
    if ![shim, helper].contains(&left_parent) {
        failures.push(format!(
            "a new container of the pod is served by another shim (its init's parent is \
             {left_parent}, the pod's shim is {shim})"
        ));
    }
    for id in ["left", "leftown", "pod"] {
        c.kill_and_remove(id);
    }
    assert!(failures.is_empty(), "after {n} cycles:\n{}", failures.join("\n"));
}
