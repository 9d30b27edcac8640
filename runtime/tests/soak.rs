//! A soak of the command line (issue 14, "Leaks"): many cycles of
//! create, start, exec, pause, resume, kill and delete, each through the
//! `myshim` binary with a private --root, and afterwards nothing more than
//! before: mounts (in the soak's own mount namespace, where the runtime
//! runs), cgroups under the soak's parent, state dirs, fifos and sockets in
//! the root, fds into it, zombie children, fds of this process, processes
//! of the soak, and the fds and processes of a container that lives through
//! the whole soak and is exec'd into on every cycle. At the end the test
//! leaves such things on purpose, to see that the counts see them.
//!
//! `MYSHIM_SOAK_CYCLES` sets the number of cycles (default 50, which
//! `cargo test` runs in about ten seconds); `contrib/bench/soak.sh 1000` runs the
//! long form. The counts before and after are printed (`--nocapture`).
//!
//! This file holds one test on purpose: the harness runs the tests of a
//! binary on threads of one process, and another test's fds and children
//! would count as this one's.

mod common;
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The number of soak cycles: MYSHIM_SOAK_CYCLES, or a default short
/// enough for `cargo test --workspace`.
fn cycles() -> usize {
    match std::env::var("MYSHIM_SOAK_CYCLES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("MYSHIM_SOAK_CYCLES={v:?} is not a number")),
        Err(_) => 50,
    }
}

fn unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270)
}

/// The cgroup hierarchies of this host: /sys/fs/cgroup on v2, each mounted
/// hierarchy below it on v1 (hybrid's `unified` included).
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

/// Removes the soak's cgroup parent (and whatever a failed run left in it)
/// from every hierarchy, pass or fail. Declared before the Env, so that it
/// runs after the containers are deleted.
struct CgroupParent(String);

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for h in hierarchies() {
            remove_cgroup_tree(&h.join(&self.0));
        }
    }
}

/// Deletes (--force) every container still in the soak's root, pass or
/// fail. Declared after the Env, so that it runs before the temp dir goes.
struct Leftovers<'a>(&'a Env);

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        let out = self.0.run(&["list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.0.run(&["delete", "--force", id]);
        }
    }
}

/// What a leak would leave, by kind: the items of each (their number is the
/// count printed), compared as they are before and after.
type Snapshot = BTreeMap<&'static str, Vec<String>>;

struct Soak<'a> {
    env: &'a Env,
    /// The cgroup parent of all the soak's containers, relative to a hierarchy.
    cgroup_parent: String,
    /// The init of the container that lives through the soak.
    keeper: i32,
    /// The mounts the soak's mount namespace started with, not counted.
    inherited_mounts: std::collections::HashSet<String>,
}

impl Soak<'_> {
    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new();
        let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        s.insert(
            "mounts made in the soak's mount namespace",
            mountinfo
                .lines()
                .filter(|l| !self.inherited_mounts.contains(&inherited_key(l)))
                .map(mount_key)
                .collect(),
        );
        let mut cgroups = vec![];
        for h in hierarchies() {
            let parent = h.join(&self.cgroup_parent);
            walk(&parent, &mut |p, t| {
                if t.is_dir() {
                    cgroups.push(p.display().to_string());
                }
            });
        }
        s.insert("cgroups under the soak's parent", cgroups);
        let root = self.env.root();
        s.insert("state dirs in --root", names(&root));
        let (mut fifos, mut sockets) = (vec![], vec![]);
        walk(&root, &mut |p, t| {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                fifos.push(p.display().to_string());
            } else if t.is_socket() {
                sockets.push(p.display().to_string());
            }
        });
        s.insert("fifos in --root", fifos);
        s.insert("sockets in --root", sockets);
        let me = std::process::id() as i32;
        s.insert(
            "zombie children",
            processes()
                .into_iter()
                .filter(|p| p.ppid == me && p.state == 'Z')
                .map(|p| format!("{} {}", p.pid, p.comm))
                .collect(),
        );
        s.insert("fds of the test process", fds("self"));
        s.insert("fds into --root, all processes", fds_into(&root));
        let dir = self.env.dir.path().display().to_string();
        s.insert("processes of the soak", processes_of(&dir, &self.cgroup_parent));
        s.insert("fds of the long-lived container", fds(&self.keeper.to_string()));
        let keeper_cgroup = hierarchies()
            .into_iter()
            .map(|h| h.join(&self.cgroup_parent).join("keeper/cgroup.procs"))
            .find(|p| p.exists())
            .expect("the long-lived container has no cgroup");
        s.insert(
            "processes in the long-lived container's cgroup",
            std::fs::read_to_string(keeper_cgroup)
                .unwrap()
                .lines()
                .map(String::from)
                .collect(),
        );
        s
    }
}

/// `mount point fstype source` of a mountinfo line.
fn mount_key(line: &str) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    let point = fields.get(4).copied().unwrap_or("");
    let after = line.split_once(" - ").map(|(_, r)| r).unwrap_or("");
    let mut rest = after.split(' ');
    let (fstype, source) = (rest.next().unwrap_or(""), rest.next().unwrap_or(""));
    format!("{point} {fstype} {source}")
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

/// `FD -> TARGET` for each open fd of /proc/`pid`. The fd that reads the
/// directory is itself in the list of `self`, the same one every time.
fn fds(pid: &str) -> Vec<String> {
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

/// Open fds of any process that point below `dir`.
fn fds_into(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut v = vec![];
    for p in processes() {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{}/fd", p.pid)) else {
            continue;
        };
        for e in entries.flatten() {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            if target.to_string_lossy().starts_with(&dir) {
                v.push(format!("{} {}: {}", p.pid, p.comm, target.display()));
            }
        }
    }
    v.sort();
    v
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

/// Processes in a cgroup below `cgroup_parent` (of any hierarchy), or whose
/// root, cwd or command line is below `dir` (a half-made init still has
/// the runtime's, bundle included).
fn processes_of(dir: &str, cgroup_parent: &str) -> Vec<String> {
    let mut in_cgroups = std::collections::BTreeSet::new();
    for h in hierarchies() {
        walk(&h.join(cgroup_parent), &mut |p, _| {
            if p.file_name().is_some_and(|n| n == "cgroup.procs") {
                let procs = std::fs::read_to_string(p).unwrap_or_default();
                in_cgroups.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        });
    }
    let mut v = vec![];
    for p in processes() {
        let under = |link: &str| {
            std::fs::read_link(format!("/proc/{}/{link}", p.pid)).is_ok_and(|t| t.to_string_lossy().starts_with(dir))
        };
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
        if in_cgroups.contains(&p.pid)
            || under("root")
            || under("cwd")
            || String::from_utf8_lossy(&cmdline).contains(dir)
        {
            v.push(format!("{} {} {}", p.pid, p.state, p.comm));
        }
    }
    v.sort();
    v
}

/// Prints the counts of `before` and `after` side by side.
fn print_counts(title: &str, before: &Snapshot, after: &Snapshot) {
    println!("{title}");
    println!("  {:<50} {:>7} {:>7}", "", "before", "after");
    for (kind, items) in before {
        println!("  {kind:<50} {:>7} {:>7}", items.len(), after[kind].len());
    }
}

/// The kinds whose items differ, with what appeared and what went.
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

/// One cycle: a container is created, started, exec'd into, paused and
/// resumed, exec'd into again, killed and deleted; the long-lived container
/// gets an exec too.
fn cycle(env: &Env, bundle: &mut Bundle, cgroup_parent: &str, i: usize) {
    let id = format!("c{i}");
    let cg = format!("/{cgroup_parent}/{id}");
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    env.ok(&["create", "-b", bundle.arg(), &id]);
    env.ok(&["start", &id]);
    assert_eq!(env.ok(&["exec", &id, "echo", &id]), format!("{id}\n"));
    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    env.ok(&["resume", &id]);
    assert_eq!(env.ok(&["exec", &id, "sh", "-c", "echo $0", &id]), format!("{id}\n"));
    assert_eq!(env.ok(&["exec", "keeper", "echo", &id]), format!("{id}\n"));
    env.ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
}

#[test]
fn cli_cycles_leave_nothing_behind() {
    if !is_root() {
        return;
    }
    let inherited_mounts = private_mount_namespace();
    let n = cycles();
    let cgroup_parent = format!("myshim-soak-{}", std::process::id());
    let _cgroups = CgroupParent(cgroup_parent.clone());
    let env = Env::new();
    let _leftovers = Leftovers(&env);
    let mut keeper = env.bundle("keeper", &["sleep", "1000000"]);
    keeper.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{cgroup_parent}/keeper")));
    // create/start as runc's callers do: the runtime's stdio is not the
    // container's here (files, as Env::run makes them).
    env.ok(&["create", "-b", keeper.arg(), "keeper"]);
    env.ok(&["start", "keeper"]);
    let soak = Soak {
        env: &env,
        cgroup_parent: cgroup_parent.clone(),
        keeper: env.pid("keeper"),
        inherited_mounts,
    };
    let mut bundle = env.bundle("cycle", &["sleep", "1000000"]);
    // A warm-up cycle first: what is made once and kept (the root's
    // directory, the cgroup parent) exists before the first count.
    cycle(&env, &mut bundle, &cgroup_parent, 0);
    let before = soak.snapshot();
    for i in 1..=n {
        cycle(&env, &mut bundle, &cgroup_parent, i);
    }
    let after = soak.snapshot();
    print_counts(
        &format!("myshim CLI soak, {n} cycles after a warm-up:"),
        &before,
        &after,
    );
    let leaks = differences(&before, &after);
    assert!(leaks.is_empty(), "after {n} cycles:\n{}", leaks.join("\n"));

    // The counts see what a leak would leave: a container not deleted
    // (state dir, fifo, cgroups, processes, zombie-free), an fd this
    // process keeps, a mount on the host.
    let mut left = env.bundle("left", &["sleep", "1000000"]);
    left.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{cgroup_parent}/left")));
    env.ok(&["create", "-b", left.arg(), "left"]);
    let kept = std::fs::File::open(env.root().join("left")).unwrap();
    let mounted = env.dir.path().join("mounted");
    std::fs::create_dir(&mounted).unwrap();
    let mount = nix::mount::mount(
        Some(&mounted),
        &mounted,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    );
    let seen = soak.snapshot();
    if mount.is_ok() {
        let _ = nix::mount::umount2(&mounted, nix::mount::MntFlags::MNT_DETACH);
    }
    drop(kept);
    let leaked = differences(&before, &seen);
    let kinds: Vec<&str> = leaked.iter().map(|l| l.split(':').next().unwrap()).collect();
    let mut expected = vec![
        "cgroups under the soak's parent",
        "fds into --root, all processes",
        "fds of the test process",
        "fifos in --root",
        "processes of the soak",
        "state dirs in --root",
    ];
    if mount.is_ok() {
        expected.push("mounts made in the soak's mount namespace");
    }
    expected.sort();
    env.ok(&["delete", "--force", "left"]);
    assert_eq!(kinds, expected, "a leak the counts should see:\n{}", leaked.join("\n"));
    assert!(differences(&before, &soak.snapshot()).is_empty());
    env.ok(&["delete", "--force", "keeper"]);
}
