//! cgroups with real containers: every resource set is read back from the
//! cgroup files (v1 on this host, v2 in the VM: contrib/test-vm.sh),
//! limits really limit, pause really freezes, and nothing is left behind.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270)
}

/// A cgroupsPath no other test uses.
fn cg_path(name: &str) -> String {
    format!("/myshim-test-{}/{name}", std::process::id())
}

/// Removes the test's cgroup directories at the end of a test, pass or
/// fail; declared before the Env so that it runs after the containers go.
struct CgCleanup(String);

impl Drop for CgCleanup {
    fn drop(&mut self) {
        let rel = self.0.trim_start_matches('/');
        for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let base = if unified() {
                PathBuf::from("/sys/fs/cgroup")
            } else {
                h.path()
            };
            let dir = base.join(rel);
            remove_cgroup_tree(&dir);
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// The host directory holding `controller`'s files for `path`.
fn cg_dir(controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if unified() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(rel)
    }
}

fn cg_read(controller: &str, path: &str, file: &str) -> String {
    let p = cg_dir(controller, path).join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// No directory of `path` is left in any hierarchy; removes the test's parent.
fn assert_cgroup_gone(path: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = if unified() {
            Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
        } else {
            h.path().join(path.trim_start_matches('/'))
        };
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn resources_are_written_to_the_cgroup_files() {
    if !is_root() {
        return;
    }
    let path = cg_path("res");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("res", &["sleep", "100"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864, "reservation": 33554432});
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    env.ok(&["run", "-d", "-b", b.arg(), "res"]);
    let pid = env.pid("res");
    if unified() {
        assert_eq!(cg_read("", &path, "memory.max"), "67108864");
        assert_eq!(cg_read("", &path, "memory.low"), "33554432");
        assert_eq!(cg_read("", &path, "cpu.weight"), "20");
        assert_eq!(cg_read("", &path, "cpu.max"), "50000 100000");
        assert_eq!(cg_read("", &path, "cpuset.cpus"), "0");
        assert_eq!(cg_read("", &path, "pids.max"), "50");
    } else {
        assert_eq!(cg_read("memory", &path, "memory.limit_in_bytes"), "67108864");
        assert_eq!(cg_read("memory", &path, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(cg_read("cpu", &path, "cpu.shares"), "512");
        assert_eq!(cg_read("cpu", &path, "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg_read("cpu", &path, "cpu.cfs_period_us"), "100000");
        assert_eq!(cg_read("cpuset", &path, "cpuset.cpus"), "0");
        assert_eq!(cg_read("pids", &path, "pids.max"), "50");
        let devices = cg_read("devices", &path, "devices.list");
        assert!(
            devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"),
            "{devices}"
        );
    }
    let procs = cg_read("pids", &path, "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "init not in its cgroup: {procs}"
    );
    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["events", "--stats", "res"])).unwrap();
    assert_eq!(stats["type"], "stats");
    // runc's shape: what its parsers read.
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 67108864);
    assert!(
        stats["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(
        stats["data"]["memory"]["raw"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{stats}"
    );
    assert_eq!(stats["data"]["pids"]["current"], 1);
    assert_eq!(stats["data"]["pids"]["limit"], 50);
    assert!(stats["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{stats}");
    // ps reads the cgroup.
    let pids: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "-f", "json", "res"])).unwrap();
    assert_eq!(pids, vec![pid]);
    env.ok(&["delete", "-f", "res"]);
    assert_cgroup_gone(&path);
    env.assert_gone("res", &b);
}

/// Runs container `id` (`args`) detached in cgroup `path`; its bundle.
fn run_detached_in(env: &Env, path: &str, id: &str, args: &[&str]) -> Bundle {
    let mut b = env.bundle(id, args);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    env.ok(&["run", "-d", "-b", b.arg(), id]);
    b
}

/// The lines of a /proc/PID/cgroup text, for the hierarchies whose
/// controllers the runtime manages (not named ones like name=systemd, nor
/// the hybrid host's controller-less v2 line), that are not at `path`.
fn hierarchies_outside(cgroup_text: &str, path: &str) -> Vec<String> {
    cgroup_text
        .lines()
        .filter(|l| {
            // On v1 every hierarchy the host has, name=systemd and a hybrid
            // host's cgroup2 ("0::") among them, as runc places them.
            let controllers = l.split(':').nth(1).unwrap_or_default();
            !unified() || controllers.is_empty()
        })
        .filter(|l| !l.ends_with(path))
        .map(String::from)
        .collect()
}

#[test]
fn init_and_exec_are_in_the_cgroup_of_every_hierarchy() {
    if !is_root() {
        return;
    }
    let path = cg_path("member");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let _b = run_detached_in(&env, &path, "member", &["sleep", "1000"]);
    let init = std::fs::read_to_string(format!("/proc/{}/cgroup", env.pid("member"))).unwrap();
    assert_eq!(
        hierarchies_outside(&init, &path),
        Vec::<String>::new(),
        "the init: {init}"
    );
    // Read from the host: inside, a cgroup namespace may show "/".
    let pid_file = env.dir.path().join("exec.pid");
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "member",
        "sleep",
        "999",
    ]);
    let exec_pid = std::fs::read_to_string(&pid_file).unwrap();
    let exec = std::fs::read_to_string(format!("/proc/{}/cgroup", exec_pid.trim())).unwrap();
    assert_eq!(hierarchies_outside(&exec, &path), Vec::<String>::new(), "exec: {exec}");
    env.ok(&["delete", "-f", "member"]);
    assert_cgroup_gone(&path);
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    if !is_root() {
        return;
    }
    let path = cg_path("bomb");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    // Fork until refused, then count processes with shell builtins only.
    let script = "(i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#";
    let out = sh_in(&env, "bomb", script, |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["pids"] = json!({"limit": 10});
    });
    let processes: u32 = out.trim().parse().unwrap();
    assert!(
        (2..=10).contains(&processes),
        "{processes} processes under a limit of 10"
    );
    assert_cgroup_gone(&path);
}

#[test]
fn memory_limit_ends_in_an_oom_kill() {
    if !is_root() {
        return;
    }
    let path = cg_path("oom");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle(
        "oom",
        &[
            "sh",
            "-c",
            "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["memory"] = json!({"limit": 16777216});
    });
    let (code, stdout, _) = run_output(&env, &b, "oom");
    assert!(!stdout.contains("survived"), "allocated past the limit");
    assert_ne!(code, 0);
    assert_cgroup_gone(&path);
    env.assert_gone("oom", &b);
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !is_root() {
        return;
    }
    let path = cg_path("pause");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let _b = run_detached_in(
        &env,
        &path,
        "pause",
        &["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; done"],
    );
    let pid = env.pid("pause");
    let counter = || {
        let out = env.ok(&["exec", "pause", "cat", "/dev/shm/n"]);
        out.trim().parse::<u64>().unwrap_or(0)
    };
    env.ok(&["pause", "pause"]);
    assert_eq!(env.status("pause"), "paused");
    assert!(env.ok(&["list"]).contains("paused"));
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let frozen_state = state.rsplit(')').next().unwrap().trim_start().chars().next().unwrap();
    assert!(
        frozen_state == 'D' || frozen_state == 'T' || frozen_state == 'S',
        "{frozen_state}"
    );
    let before = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    assert_eq!(before, after, "a paused process ran");
    let e = env.fails(&["start", "pause"]);
    assert!(e.contains("paused"), "{e}");
    env.ok(&["resume", "pause"]);
    assert_eq!(env.status("pause"), "running");
    let first = counter();
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter() == first {
        assert!(Instant::now() < deadline, "the counter did not move after resume");
    }
    let e = env.fails(&["resume", "pause"]);
    assert!(e.contains("not paused"), "{e}");
    env.ok(&["delete", "-f", "pause"]);
    assert_cgroup_gone(&path);
}

/// Thaws the test's container cgroup when a failed test left it frozen, so
/// that CgCleanup's SIGKILLs take effect; declared after CgCleanup.
struct Thaw(String);

impl Drop for Thaw {
    fn drop(&mut self) {
        let (file, value) = if unified() {
            ("cgroup.freeze", "0")
        } else {
            ("freezer.state", "THAWED")
        };
        let _ = std::fs::write(cg_dir("freezer", &self.0).join(file), value);
    }
}

#[test]
fn delete_force_of_a_paused_container_kills_it_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let path = cg_path("paused-del");
    let _cleanup = CgCleanup(path.clone());
    let _thaw = Thaw(path.clone());
    let env = Env::new();
    let b = run_detached_in(&env, &path, "pdel", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cg_read("pids", &path, "cgroup.procs").lines().count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the container's second process never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<i32> = cg_read("pids", &path, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    env.ok(&["pause", "pdel"]);
    assert_eq!(env.status("pdel"), "paused");
    let log = env.dir.path().join("delete.log");
    env.ok(&["--debug", "--log", log.to_str().unwrap(), "delete", "--force", "pdel"]);
    // The init died from the SIGKILL itself, not from the clean-up of the
    // cgroup after waiting for it in vain.
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("did not exit"), "{log}");
    assert_eq!(env.status("pdel"), "absent");
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'),
            "{pid} survived delete --force"
        );
    }
    assert_cgroup_gone(&path);
    env.assert_gone("pdel", &b);
}

#[test]
fn update_changes_limits() {
    if !is_root() {
        return;
    }
    let path = cg_path("upd");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let _b = run_detached_in(&env, &path, "upd", &["sleep", "100"]);
    env.ok(&[
        "update",
        "--memory",
        "33554432",
        "--pids-limit",
        "7",
        "--cpu-shares",
        "256",
        "upd",
    ]);
    let file = env.dir.path().join("r.json");
    std::fs::write(&file, json!({"pids": {"limit": 9}}).to_string()).unwrap();
    if unified() {
        assert_eq!(cg_read("", &path, "memory.max"), "33554432");
        assert_eq!(cg_read("", &path, "pids.max"), "7");
    } else {
        assert_eq!(cg_read("memory", &path, "memory.limit_in_bytes"), "33554432");
        assert_eq!(cg_read("pids", &path, "pids.max"), "7");
        assert_eq!(cg_read("cpu", &path, "cpu.shares"), "256");
    }
    env.ok(&["update", "-r", file.to_str().unwrap(), "upd"]);
    assert_eq!(cg_read("pids", &path, "pids.max"), "9");
    let e = env.fails(&["update", "--cpuset-cpus", "999", "upd"]);
    assert!(e.contains("cpuset.cpus") && e.contains("999"), "{e}");
    env.ok(&["delete", "-f", "upd"]);
    assert_cgroup_gone(&path);
}

/// What `update --memory M --memory-swap S` leaves in the cgroup: (memory,
/// memory+swap) on v1, (memory.max, memory.swap.max) on v2.
fn memory_and_swap(path: &str) -> (String, String) {
    if unified() {
        (cg_read("", path, "memory.max"), cg_read("", path, "memory.swap.max"))
    } else {
        (
            cg_read("memory", path, "memory.limit_in_bytes"),
            cg_read("memory", path, "memory.memsw.limit_in_bytes"),
        )
    }
}

/// The kernel checks memory <= memory+swap on every v1 write, so raising
/// both must write the swap limit first and lowering them the memory limit
/// first (`docker update`, the CRI's UpdateContainerResources).
#[test]
fn memory_with_swap_limits_go_up_and_down() {
    if !is_root() {
        return;
    }
    let swap_file = if unified() {
        "memory.swap.max"
    } else {
        "memory.memsw.limit_in_bytes"
    };
    if !cg_dir("memory", "/").join(swap_file).exists() {
        eprintln!("skipped: no swap accounting ({swap_file})");
        return;
    }
    let path = cg_path("memsw");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let _b = run_detached_in(&env, &path, "memsw", &["sleep", "100"]);
    let (mib64, mib128, mib256, mib512) = (64 << 20, 128 << 20, 256 << 20, 512 << 20);
    let expect = |memory: u64, swap: u64| {
        if unified() {
            (memory.to_string(), (swap - memory).to_string())
        } else {
            (memory.to_string(), swap.to_string())
        }
    };
    for (memory, swap) in [(mib64, mib128), (mib256, mib512), (mib64, mib128)] {
        env.ok(&[
            "update",
            "--memory",
            &memory.to_string(),
            "--memory-swap",
            &swap.to_string(),
            "memsw",
        ]);
        assert_eq!(memory_and_swap(&path), expect(memory, swap), "after {memory}/{swap}");
    }
    env.ok(&["update", "--memory", "-1", "--memory-swap", "-1", "memsw"]);
    let (memory, swap) = memory_and_swap(&path);
    assert!(memory == "max" || memory.parse::<u64>().unwrap() > 1 << 60, "{memory}");
    assert!(swap == "max" || swap.parse::<u64>().unwrap() > 1 << 60, "{swap}");
    env.ok(&["delete", "-f", "memsw"]);
    assert_cgroup_gone(&path);
}

/// Without a pid namespace of its own, an init that exits leaves its
/// children running; containerd's Go shim then sends `kill --all` to the
/// stopped container and waits for them to go (a CRI StopContainer would
/// never end otherwise).
#[test]
fn kill_all_of_a_stopped_container_reaches_what_its_init_left() {
    if !is_root() {
        return;
    }
    let path = cg_path("leftover");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("left", &["sh", "-c", "sleep 1000 & echo started"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    env.ok(&["run", "-d", "-b", b.arg(), "left"]);
    let procs = || cg_read("pids", &path, "cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let init_gone_child_left = || env.ok(&["state", "left"]).contains("stopped") && !procs().is_empty();
    while !init_gone_child_left() {
        assert!(
            Instant::now() < deadline,
            "init never exited leaving its child: {}",
            procs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ok(&["kill", "--all", "left", "KILL"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !procs().is_empty() {
        assert!(Instant::now() < deadline, "left behind after kill --all: {}", procs());
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ok(&["delete", "left"]);
    assert_cgroup_gone(&path);
}

/// `exec --cgroup`: into an existing sub-cgroup of the container's, for
/// every hierarchy or per controller; into a paused one only with
/// `--ignore-paused`.
#[test]
fn exec_into_a_sub_cgroup_and_into_a_paused_container() {
    if !is_root() {
        return;
    }
    let path = cg_path("execsub");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let _b = run_detached_in(&env, &path, "execsub", &["sleep", "100"]);
    let controllers = if unified() {
        vec![""]
    } else {
        vec!["memory", "pids", "cpu"]
    };
    // A sub-cgroup in every hierarchy the container is in (a new cpuset
    // takes no task until it has cpus and mems).
    let mut subs = vec![];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let base = if unified() {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            h.path()
        };
        let own = base.join(path.trim_start_matches('/'));
        if own.is_dir() && !subs.contains(&own.join("sub")) {
            std::fs::create_dir(own.join("sub")).unwrap();
            // v1 only: a v2 child without the cpuset controller has no such file.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let empty = std::fs::read_to_string(own.join("sub").join(file)).is_ok_and(|v| v.trim().is_empty());
                if let (true, Ok(v)) = (empty, std::fs::read_to_string(own.join(file))) {
                    std::fs::write(own.join("sub").join(file), v.trim()).unwrap();
                }
            }
            subs.push(own.join("sub"));
        }
    }
    let line_of = |text: &str, controller: &str| -> String {
        text.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|list| list.split(',').any(|x| x == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} line: {text}"))
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    let all = env.ok(&["exec", "--cgroup", "sub", "execsub", "cat", "/proc/self/cgroup"]);
    // The full path, or "/sub" where the container has a cgroup namespace.
    for c in &controllers {
        assert!(line_of(&all, c).ends_with("/sub"), "{c}: {all}");
    }
    if !unified() {
        let one = env.ok(&["exec", "--cgroup", "memory:sub", "execsub", "cat", "/proc/self/cgroup"]);
        assert!(line_of(&one, "memory").ends_with("/sub"), "{one}");
        assert!(!line_of(&one, "pids").ends_with("/sub"), "{one}");
    }
    let e = env.fails(&["exec", "--cgroup", "nope", "execsub", "true"]);
    assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
    let e = env.fails(&["exec", "--cgroup", "../..", "execsub", "true"]);
    assert!(e.contains("'..'"), "{e}");
    env.ok(&["pause", "execsub"]);
    let e = env.fails(&["exec", "execsub", "true"]);
    assert!(
        e.contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{e}"
    );
    // --ignore-paused: set up outside, placed in the frozen cgroup last; it
    // runs its program once the container is resumed.
    let pid_file = env.dir.path().join("paused-exec.pid");
    env.ok(&[
        "exec",
        "-d",
        "--ignore-paused",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "execsub",
        "sleep",
        "77",
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(
        cg_read("pids", &path, "cgroup.procs")
            .lines()
            .any(|l| l == pid.to_string()),
        "the exec'd process is not in the container's cgroup"
    );
    let cmdline = || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert_ne!(cmdline(), "sleep\u{0}77\u{0}", "it ran while the container was paused");
    env.ok(&["resume", "execsub"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cmdline() != "sleep\u{0}77\u{0}" {
        assert!(
            Instant::now() < deadline,
            "the exec'd process never ran after resume: {:?}",
            cmdline()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    env.ok(&["delete", "-f", "execsub"]);
    assert_cgroup_gone(&path);
}

#[test]
fn delete_kills_what_is_left_in_the_cgroup() {
    if !is_root() {
        return;
    }
    let path = cg_path("left");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    // Without a pid namespace, a child outlives the init unless the cgroup is cleaned.
    let mut b = env.bundle("left", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    });
    env.ok(&["run", "-d", "-b", b.arg(), "left"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // sh forks one sleep and execs the other.
    while cg_read("pids", &path, "cgroup.procs").lines().count() < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<i32> = cg_read("pids", &path, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    env.ok(&["kill", "left", "KILL"]);
    env.wait_status("left", "stopped");
    // v2 kernels >= 5.14 empty the cgroup with cgroup.kill; older ones and
    // v1 kill the listed pids (the same code, tested here on v1).
    let has_cgroup_kill = unified() && cg_dir("", &path).join("cgroup.kill").exists();
    let log = env.dir.path().join("delete.log");
    env.ok(&["--debug", "--log", log.to_str().unwrap(), "delete", "left"]);
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log.contains("killed what was left through cgroup.kill"),
        has_cgroup_kill,
        "{log}"
    );
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'),
            "{pid} survived delete"
        );
    }
    assert_cgroup_gone(&path);
    env.assert_gone("left", &b);
}

/// The container's cgroup directory in every hierarchy that has one.
fn container_cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if unified() {
        return vec![Path::new("/sys/fs/cgroup").join(rel)];
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|h| !h.file_type().unwrap().is_symlink())
        .map(|h| h.path().join(rel))
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn delete_removes_cgroups_made_inside_the_container_with_their_processes() {
    if !is_root() {
        return;
    }
    let path = cg_path("nested");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let b = run_detached_in(&env, &path, "nested", &["sleep", "1000"]);
    let pid_file = env.dir.path().join("exec.pid");
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "nested",
        "sleep",
        "999",
    ]);
    let exec_pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    // What a workload managing its own cgroups does: sub-cgroups, two deep,
    // with one of its processes moved into them (not into v1 cpuset's,
    // which take no task before their cpus are set).
    for dir in container_cgroup_dirs(&path) {
        let sub = dir.join("workload/inner");
        std::fs::create_dir_all(&sub).unwrap();
        if !dir.to_string_lossy().contains("cpuset") {
            std::fs::write(sub.join("cgroup.procs"), &exec_pid).unwrap();
        }
    }
    let in_sub = std::fs::read_to_string(cg_dir("pids", &path).join("workload/inner/cgroup.procs")).unwrap();
    assert_eq!(in_sub.trim(), exec_pid);
    let pids: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "-f", "json", "nested"])).unwrap();
    assert!(
        pids.contains(&exec_pid.parse().unwrap()),
        "ps misses the process in the sub-cgroup: {pids:?}"
    );
    env.ok(&["delete", "--force", "nested"]);
    let stat = std::fs::read_to_string(format!("/proc/{exec_pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'),
        "{exec_pid} in the sub-cgroup survived delete"
    );
    assert_cgroup_gone(&path);
    env.assert_gone("nested", &b);
}

#[test]
fn bad_cgroup_input_is_refused_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("sysd", &["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:myshim:sysd"));
    let e = env.fails(&["create", "-b", b.arg(), "sysd"]);
    assert!(e.contains("systemd"), "{e}");
    env.assert_gone("sysd", &b);
    let e = env.fails(&["--systemd-cgroup", "create", "-b", b.arg(), "sysd"]);
    assert!(e.contains("systemd cgroup driver"), "{e}");
    env.assert_gone("sysd", &b);

    let path = cg_path("rejected");
    let mut b = env.bundle("rej", &["true"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["cpu"] = json!({"cpus": "999"});
    });
    let e = env.fails(&["create", "-b", b.arg(), "rej"]);
    assert!(e.contains("cpuset.cpus") && e.contains("999"), "{e}");
    env.assert_gone("rej", &b);
    assert_cgroup_gone(&path);
}

/// A `sleep` of the test's own, killed and reaped when the test ends.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rejected_limits_on_an_existing_cgroup_kill_nothing_in_it() {
    if !is_root() {
        return;
    }
    let path = cg_path("someone-elses");
    let _cleanup = CgCleanup(path.clone());
    // Someone else's process in the cgroup the container names (v1: in the
    // hierarchy whose cgroup.procs the runtime reads to kill).
    let dir = cg_dir("pids", &path);
    std::fs::create_dir_all(&dir).unwrap();
    let mut other = Sleeper(std::process::Command::new("sleep").arg("1000").spawn().unwrap());
    std::fs::write(dir.join("cgroup.procs"), other.0.id().to_string()).unwrap();
    let env = Env::new();
    // Limits the kernel rejects; then a step after the init is in the
    // cgroup (a createRuntime hook) that fails.
    type Failure = (&'static str, fn(&mut serde_json::Value), &'static str);
    let failures: [Failure; 2] = [
        (
            "intruder",
            |c| c["linux"]["resources"]["cpu"] = json!({"cpus": "999"}),
            "cpuset.cpus",
        ),
        (
            "intruder2",
            |c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}),
            "createRuntime",
        ),
    ];
    for (id, failure, named) in failures {
        let mut b = env.bundle(id, &["true"]);
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(path);
            failure(c);
        });
        let e = env.fails(&["create", "-b", b.arg(), id]);
        assert!(e.contains(named), "{id}: {e}");
        env.assert_gone(id, &b);
        assert_eq!(
            other.0.try_wait().unwrap(),
            None,
            "{id}: the failed create killed a process it did not start"
        );
        assert!(dir.is_dir(), "{id}: the failed create removed a cgroup it did not make");
    }
}

#[test]
fn device_rules_deny_what_is_not_allowed() {
    if !is_root() {
        return;
    }
    let path = cg_path("dev");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let out = sh_in(&env, "devrule", "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null 2>&1 && echo opened || echo denied; head -c 1 /dev/zero | wc -c", |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["root"]["readonly"] = json!(false);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_MKNOD"));
        }
    });
    assert_eq!(out, "denied\n1\n");
    assert_cgroup_gone(&path);
}

/// Docker's `--device /dev/fuse:r`: the node in linux.devices, its access in
/// linux.resources.devices. As with runc the node gets only what the rules
/// grant (read), any node may be made (`c *:* m`), and /dev/net/tun is in
/// the defaults.
#[test]
fn linux_devices_get_only_the_access_their_rules_grant() {
    if !is_root() || !Path::new("/dev/fuse").exists() {
        return;
    }
    let path = cg_path("devr");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let script = "head -c 0 /dev/fuse && echo read; (echo x > /dev/fuse) 2>/dev/null && echo written; \
                  mknod /tmp/tty1 c 4 1 && echo made; mknod /tmp/tun c 10 200 && (: < /tmp/tun) && echo tun";
    let out = sh_in(&env, "devr", script, |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["root"]["readonly"] = json!(false);
        c["linux"]["devices"] =
            json!([{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o666}]);
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
        ]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    assert_eq!(out, "read\nmade\ntun\n");
    assert_cgroup_gone(&path);
}

#[test]
fn more_resources_read_back() {
    if !is_root() {
        return;
    }
    let path = cg_path("more");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("more", &["sleep", "100"]);
    let v2 = unified();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000, "burst": 1000, "idle": 0});
        c["linux"]["resources"]["blockIO"] = json!({"weight": 300});
        if v2 {
            c["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 100663296});
            c["linux"]["resources"]["unified"] = json!({"memory.high": "50331648"});
        } else {
            c["linux"]["resources"]["memory"] =
                json!({"limit": 67108864, "swap": 100663296, "swappiness": 10, "disableOOMKiller": true});
        }
    });
    env.ok(&["run", "-d", "-b", b.arg(), "more"]);
    if v2 {
        assert_eq!(cg_read("", &path, "cpu.max.burst"), "1000");
        assert_eq!(cg_read("", &path, "cpu.idle"), "0");
        assert_eq!(
            cg_read("", &path, "memory.swap.max"),
            "33554432",
            "OCI swap counts memory too"
        );
        assert_eq!(cg_read("", &path, "memory.high"), "50331648");
        let weight = std::fs::read_to_string(cg_dir("", &path).join("io.bfq.weight"))
            .or_else(|_| std::fs::read_to_string(cg_dir("", &path).join("io.weight")))
            .unwrap_or_default();
        assert!(
            weight.is_empty() || weight.contains("default 300") || weight.contains("default 2930"),
            "{weight}"
        );
    } else {
        assert_eq!(cg_read("cpu", &path, "cpu.cfs_burst_us"), "1000");
        assert_eq!(cg_read("cpu", &path, "cpu.idle"), "0");
        assert_eq!(cg_read("memory", &path, "memory.memsw.limit_in_bytes"), "100663296");
        assert_eq!(cg_read("memory", &path, "memory.swappiness"), "10");
        assert!(cg_read("memory", &path, "memory.oom_control").contains("oom_kill_disable 1"));
        assert!(cg_read("blkio", &path, "blkio.bfq.weight").contains("300"));
    }
    env.ok(&["delete", "-f", "more"]);
    assert_cgroup_gone(&path);
}

#[test]
fn kernel_tcp_limit_is_applied_on_v1_or_refused_on_v2() {
    if !is_root() {
        return;
    }
    let path = cg_path("ktcp");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("ktcp", &["sleep", "100"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["memory"] = json!({"kernelTCP": 8388608});
    });
    if unified() {
        let e = env.fails(&["create", "-b", b.arg(), "ktcp"]);
        assert!(e.contains("kernelTCP"), "{e}");
        env.assert_gone("ktcp", &b);
    } else {
        env.ok(&["run", "-d", "-b", b.arg(), "ktcp"]);
        assert_eq!(cg_read("memory", &path, "memory.kmem.tcp.limit_in_bytes"), "8388608");
        env.ok(&["delete", "-f", "ktcp"]);
    }
    assert_cgroup_gone(&path);
}

/// hugepageLimits name files per page size: one the kernel lacks, or no
/// hugetlb controller to write them to, is an error naming it (as runc's
/// silence would leave the limit unapplied).
#[test]
fn hugepage_limits_that_cannot_apply_are_refused() {
    if !is_root() {
        return;
    }
    let path = cg_path("hugebad");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("hugebad", &["true"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 0}]);
    });
    let e = env.fails(&["create", "-b", b.arg(), "hugebad"]);
    assert!(e.contains("hugepageLimits") && e.contains("\"3MB\""), "{e}");
    env.assert_gone("hugebad", &b);
    assert_cgroup_gone(&path);
    let v1_without_hugetlb = !unified() && !Path::new("/sys/fs/cgroup/hugetlb").is_dir();
    if let (Some(size), true) = (huge_page_size(), v1_without_hugetlb) {
        b.edit(|c| c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": size, "limit": 0}]));
        let e = env.fails(&["create", "-b", b.arg(), "hugebad"]);
        assert!(e.contains("no hugetlb hierarchy"), "{e}");
        env.assert_gone("hugebad", &b);
        assert_cgroup_gone(&path);
    }
}

#[test]
fn network_class_id_is_applied_or_refused_clearly() {
    if !is_root() {
        return;
    }
    let path = cg_path("net");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("net", &["sleep", "100"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["network"] = json!({"classID": 1048577});
    });
    let has_net_cls = !unified() && Path::new("/sys/fs/cgroup/net_cls").is_dir();
    if has_net_cls {
        env.ok(&["run", "-d", "-b", b.arg(), "net"]);
        assert_eq!(cg_read("net_cls", &path, "net_cls.classid"), "1048577");
        env.ok(&["delete", "-f", "net"]);
    } else {
        let e = env.fails(&["create", "-b", b.arg(), "net"]);
        assert!(e.contains("net_cls"), "{e}");
        env.assert_gone("net", &b);
    }
    assert_cgroup_gone(&path);
}

/// No machine here has an RDMA device: a limit for one is refused, naming
/// the rdma hierarchy (v1, none mounted) or the file and device (v2).
#[test]
fn rdma_limits_for_a_missing_device_are_refused_clearly() {
    if !is_root() {
        return;
    }
    let path = cg_path("rdma");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("rdma", &["true"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["rdma"] = json!({"mlx5_9": {"hcaHandles": 2}});
    });
    let e = env.fails(&["create", "-b", b.arg(), "rdma"]);
    let named = match unified() {
        true => e.contains("rdma.max") && e.contains("mlx5_9"),
        false => e.contains("rdma"),
    };
    assert!(named, "{e}");
    env.assert_gone("rdma", &b);
    assert_cgroup_gone(&path);
}

/// A real block device's major:minor, for per-device limits.
fn block_device() -> Option<String> {
    let dev = std::fs::read_to_string("/sys/block/vda/dev")
        .or_else(|_| std::fs::read_to_string("/sys/block/loop0/dev"))
        .ok()?;
    Some(dev.trim().to_string())
}

#[test]
fn block_io_throttles_per_device() {
    if !is_root() {
        return;
    }
    let Some(dev) = block_device() else {
        eprintln!("skipped: no block device to throttle");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let path = cg_path("bio");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("bio", &["sleep", "100"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
        });
    });
    env.ok(&["run", "-d", "-b", b.arg(), "bio"]);
    if unified() {
        let max = cg_read("", &path, "io.max");
        assert!(
            max.contains(&format!("{dev} rbps=1048576")) && max.contains("wiops=100"),
            "{max}"
        );
    } else {
        assert_eq!(
            cg_read("blkio", &path, "blkio.throttle.read_bps_device"),
            format!("{dev} 1048576")
        );
        assert_eq!(
            cg_read("blkio", &path, "blkio.throttle.write_iops_device"),
            format!("{dev} 100")
        );
    }
    env.ok(&["delete", "-f", "bio"]);
    assert_cgroup_gone(&path);
}

/// Waits (bounded, so a broken watch fails instead of hanging) until `fd`
/// is readable.
fn wait_readable(fd: std::os::fd::RawFd) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 120_000) };
    assert_eq!(n, 1, "the OOM watch never became readable");
}

#[test]
fn oom_watch_sees_a_child_killed_while_the_init_lives() {
    if !is_root() {
        return;
    }
    let path = cg_path("oomw");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    // The child makes itself the OOM killer's first choice, then outgrows
    // the limit; the init waits for it and lives on.
    let hog = r#"echo 1000 > /proc/self/oom_score_adj; x=$(head -c 100000000 /dev/zero | tr '\0' a); echo survived"#;
    let script = format!(
        "sh -c '{}' > /dev/shm/hog; echo $? > /dev/shm/hog-status; sleep 1000",
        hog.replace('\'', r#"'\''"#)
    );
    let mut b = env.bundle("oomw", &["sh", "-c", &script]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
    });
    env.ok(&["create", "-b", b.arg(), "oomw"]);
    let mut watch = myshim_runtime::container::oom_watch(&env.root(), "oomw").unwrap();
    assert_eq!(watch.new_kills().unwrap(), 0, "no kill before start");
    env.ok(&["start", "oomw"]);
    let mut kills = 0;
    while kills == 0 {
        wait_readable(std::os::fd::AsRawFd::as_raw_fd(&watch));
        kills += watch.new_kills().unwrap();
    }
    assert!(kills >= 1);
    // The init goes on: it records the child's end and sleeps.
    let status = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = env.run(&["exec", "oomw", "cat", "/dev/shm/hog-status"]);
            if out.status.success() {
                break String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            assert!(Instant::now() < deadline, "the init never saw its child end");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(status, "137", "the child was not SIGKILLed");
    assert_eq!(env.status("oomw"), "running");
    assert_eq!(
        env.ok(&["exec", "oomw", "cat", "/dev/shm/hog"]),
        "",
        "the child allocated past the limit"
    );
    watch.new_kills().unwrap();
    env.ok(&["delete", "-f", "oomw"]);
    // After the cgroup's removal the watch fails; on v1 that wakes it too.
    if !unified() {
        wait_readable(std::os::fd::AsRawFd::as_raw_fd(&watch));
    }
    let e = format!("{:#}", watch.new_kills().unwrap_err());
    assert!(e.contains("memory."), "{e}");
    drop(watch);
    assert_cgroup_gone(&path);
    env.assert_gone("oomw", &b);
}

#[test]
fn cpu_realtime_read_back() {
    if !is_root() {
        return;
    }
    // A parent of this test's own: realtime runtime comes out of it.
    let parent = format!("/myshim-test-{}-rt", std::process::id());
    let path = format!("{parent}/rt");
    let starved = format!("/myshim-test-{}-rt0/rt", std::process::id());
    let _cleanup = (CgCleanup(path.clone()), CgCleanup(starved.clone()));
    let env = Env::new();
    let bundle = |name: &str, path: &str| {
        let mut b = env.bundle(name, &["sleep", "100"]);
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(path);
            c["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 5000, "realtimePeriod": 500000});
        });
        b
    };
    let b = bundle("rt", &path);
    if unified() {
        let e = env.fails(&["create", "-b", b.arg(), "rt"]);
        assert!(e.contains("realtime"), "{e}");
        env.assert_gone("rt", &b);
        assert_cgroup_gone(&path);
        return;
    }
    let parent_dir = cg_dir("cpu", &parent);
    std::fs::create_dir_all(&parent_dir).unwrap();
    if !parent_dir.join("cpu.rt_runtime_us").exists() {
        eprintln!("skipped: no cpu.rt_runtime_us (kernel without CONFIG_RT_GROUP_SCHED)");
        return;
    }
    if let Err(e) = std::fs::write(parent_dir.join("cpu.rt_runtime_us"), "20000") {
        eprintln!("skipped: the host refuses realtime runtime for a cgroup below the root of its cpu hierarchy: {e}");
        return;
    }
    env.ok(&["run", "-d", "-b", b.arg(), "rt"]);
    assert_eq!(cg_read("cpu", &path, "cpu.rt_period_us"), "500000");
    assert_eq!(cg_read("cpu", &path, "cpu.rt_runtime_us"), "5000");
    env.ok(&["delete", "-f", "rt"]);
    assert_cgroup_gone(&path);
    // Under a parent that grants nothing, the kernel refuses: said clearly.
    let b = bundle("rt0", &starved);
    let e = env.fails(&["create", "-b", b.arg(), "rt0"]);
    assert!(e.contains("cpu.rt_runtime_us") && e.contains("5000"), "{e}");
    env.assert_gone("rt0", &b);
    assert_cgroup_gone(&starved);
}

/// A loop device of the test's own over a file, with the I/O scheduler
/// that per-device weights need; restored and detached on drop.
struct LoopDevice {
    dev: String,
    /// major:minor
    number: String,
    restore: Vec<(PathBuf, String)>,
}

impl LoopDevice {
    fn attach(file: &Path) -> Result<LoopDevice, String> {
        std::fs::File::create(file)
            .and_then(|f| f.set_len(16 << 20))
            .map_err(|e| format!("backing file: {e}"))?;
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!("losetup: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let sys = Path::new("/sys/block").join(dev.trim_start_matches("/dev/"));
        let number = std::fs::read_to_string(sys.join("dev")).unwrap().trim().to_string();
        Ok(LoopDevice {
            dev,
            number,
            restore: vec![],
        })
    }

    fn sys(&self, file: &str) -> PathBuf {
        Path::new("/sys/block")
            .join(self.dev.trim_start_matches("/dev/"))
            .join(file)
    }

    /// Writes `value` to `file`, to be set back to `undo` on drop.
    fn set(&mut self, file: PathBuf, value: &str, undo: String) -> Result<(), String> {
        std::fs::write(&file, value).map_err(|e| format!("writing {value:?} to {}: {e}", file.display()))?;
        self.restore.push((file, undo));
        Ok(())
    }

    /// Makes the device take per-device weights: BFQ (v1 and v2) or
    /// CFQ (old v1 kernels) as its scheduler, or else io.cost on v2.
    fn enable_weights(&mut self) -> Result<(), String> {
        let scheduler = self.sys("queue/scheduler");
        let list = std::fs::read_to_string(&scheduler).map_err(|e| e.to_string())?;
        let current = list
            .split_whitespace()
            .find_map(|s| s.strip_prefix('[')?.strip_suffix(']'))
            .unwrap_or("none")
            .to_string();
        let words: Vec<&str> = list.split_whitespace().map(|s| s.trim_matches(['[', ']'])).collect();
        if let Some(wanted) = ["bfq", "cfq"].into_iter().find(|s| words.contains(s)) {
            return self.set(scheduler, wanted, current);
        }
        if unified() && Path::new("/sys/fs/cgroup/io.cost.qos").exists() {
            let n = self.number.clone();
            return self.set(
                "/sys/fs/cgroup/io.cost.qos".into(),
                &format!("{n} enable=1"),
                format!("{n} enable=0"),
            );
        }
        Err(format!("neither BFQ nor CFQ in {list:?} and no io.cost"))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        for (file, value) in self.restore.drain(..).rev() {
            let _ = std::fs::write(file, value);
        }
        let _ = std::process::Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

#[test]
fn block_io_weight_per_device_read_back() {
    if !is_root() {
        return;
    }
    let path = cg_path("wdev");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    // Declared after the Env: detached before its directory (the backing file) goes.
    let mut device = match LoopDevice::attach(&env.dir.path().join("disk")) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: no loop device of our own: {e}");
            return;
        }
    };
    if let Err(e) = device.enable_weights() {
        eprintln!("skipped: {} cannot take per-device weights: {e}", device.dev);
        return;
    }
    let (major, minor) = device.number.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let mut b = env.bundle("wdev", &["sleep", "100"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["blockIO"] = json!({"weightDevice": [{"major": major, "minor": minor, "weight": 300}]});
    });
    env.ok(&["run", "-d", "-b", b.arg(), "wdev"]);
    let dir = if unified() {
        cg_dir("", &path)
    } else {
        cg_dir("blkio", &path)
    };
    // CFQ, BFQ (v1 and v2) take the OCI weight; io.weight its own scale.
    let files = [
        ("blkio.weight_device", 300),
        ("blkio.bfq.weight_device", 300),
        ("io.bfq.weight", 300),
        ("io.weight", 2930),
    ];
    let (file, weight) = files
        .into_iter()
        .find(|(f, _)| dir.join(f).exists())
        .expect("no per-device weight file in the cgroup");
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let want = format!("{} {weight}", device.number);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want),
        "{file}: {text:?}, wanted {want:?}"
    );
    env.ok(&["delete", "-f", "wdev"]);
    assert_cgroup_gone(&path);
    env.assert_gone("wdev", &b);
}

/// The smallest huge page size, in the kernel's file names ("2MB").
fn huge_page_size() -> Option<String> {
    let mut kb: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()
        })
        .collect();
    kb.sort();
    let kb = *kb.first()?;
    Some(match kb {
        k if k % (1 << 20) == 0 => format!("{}GB", k >> 20),
        k if k % (1 << 10) == 0 => format!("{}MB", k >> 10),
        k => format!("{k}KB"),
    })
}

#[test]
fn hugepage_limits_read_back() {
    if !is_root() {
        return;
    }
    let has_hugetlb = if unified() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("hugetlb"))
    } else {
        Path::new("/sys/fs/cgroup/hugetlb").is_dir()
    };
    let Some(size) = huge_page_size().filter(|_| has_hugetlb) else {
        eprintln!("skipped: no hugetlb controller in this host's cgroup hierarchy (on a v1 hybrid host it may sit on the cgroup2 mount), or no huge pages");
        return;
    };
    let path = cg_path("huge");
    let _cleanup = CgCleanup(path.clone());
    let env = Env::new();
    let mut b = env.bundle("huge", &["sleep", "100"]);
    // Two pages of the smallest size: the kernel keeps whole pages.
    let page: u64 = size.trim_end_matches(['K', 'M', 'G', 'B']).parse::<u64>().unwrap()
        << match size.trim_start_matches(char::is_numeric) {
            "KB" => 10,
            "MB" => 20,
            _ => 30,
        };
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": size, "limit": 2 * page}]);
    });
    env.ok(&["run", "-d", "-b", b.arg(), "huge"]);
    let file = if unified() {
        format!("hugetlb.{size}.max")
    } else {
        format!("hugetlb.{size}.limit_in_bytes")
    };
    assert_eq!(cg_read("hugetlb", &path, &file), (2 * page).to_string());
    env.ok(&["delete", "-f", "huge"]);
    assert_cgroup_gone(&path);
    env.assert_gone("huge", &b);
}
