//! Safety from the start: no host fd leaks in, mounts cannot be sent out of
//! the rootfs by a symlink, a reused pid is never taken for the container,
//! the init is not dumpable before exec; and the console socket and
//! --preserve-fds hand over exactly what they should.

mod common;
use common::*;
use serde_json::json;
use std::os::fd::AsRawFd;
use std::time::Duration;

#[test]
fn no_host_fd_reaches_the_container() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("fds", &["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    let secret = std::fs::File::open("/etc/hostname").unwrap();
    let mut cmd = env.cmd(&["run", "-b", b.arg(), "fds"]);
    // Left open without O_CLOEXEC at fd 7, as a careless caller would.
    dup_into(&mut cmd, secret.as_raw_fd(), 7);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 0-2 are stdio; 3 is ls's own directory fd.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0 1 2 3 ");
    env.assert_gone("fds", &b);
}

#[test]
fn preserve_fds_passes_exactly_those() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle(
        "pfd",
        &["sh", "-c", "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"],
    );
    let dir = env.dir.path().join("pf");
    std::fs::write(&dir, "preserved\n").unwrap();
    let file = std::fs::File::open(&dir).unwrap();
    let fd = file.as_raw_fd();
    let mut cmd = env.cmd(&["run", "--preserve-fds", "1", "-b", b.arg(), "pfd"]);
    dup_into(&mut cmd, fd, 3);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "preserved\n0 1 2 3 4 ");
}

#[test]
fn symlink_in_rootfs_cannot_send_a_mount_to_the_host() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("esc", &["true"]);
    let name = format!("myshim-escape-{}", std::process::id());
    std::os::unix::fs::symlink("/", b.rootfs().join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../..", b.rootfs().join("up")).unwrap();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": format!("/escape/{name}"), "type": "tmpfs", "source": "tmpfs"}));
        m.push(json!({"destination": format!("/up/{name}-2"), "type": "tmpfs", "source": "tmpfs"}));
        c["root"]["readonly"] = json!(false);
    });
    let (code, _, stderr) = run_output(&env, &b, "esc");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !std::path::Path::new(&format!("/{name}")).exists(),
        "mount target created on the host"
    );
    assert!(
        !std::path::Path::new(&format!("/{name}-2")).exists(),
        "mount target created on the host"
    );
    assert!(b.rootfs().join(&name).is_dir(), "target made inside the rootfs instead");
    env.assert_gone("esc", &b);
}

#[test]
fn reused_pid_is_not_the_container() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("reuse", &["true"]);
    env.ok(&["run", "-d", "-b", b.arg(), "reuse"]);
    env.wait_status("reuse", "stopped");
    // Point the state at a live host process, as if the pid had been reused.
    // A reuse starts later than the init: past the clock tick (10 ms) that
    // start times are counted in, or the two would look the same.
    std::thread::sleep(Duration::from_millis(20));
    let mut bystander = std::process::Command::new("sleep").arg("100").spawn().unwrap();
    let state_file = env.root().join("reuse/state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    state["pid"] = json!(bystander.id());
    std::fs::write(&state_file, state.to_string()).unwrap();
    assert_eq!(env.status("reuse"), "stopped");
    env.fails(&["kill", "reuse", "KILL"]);
    env.ok(&["delete", "--force", "reuse"]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a host process with a reused pid was killed"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    env.assert_gone("reuse", &b);
}

#[test]
fn init_is_not_dumpable_before_exec() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("dump", &["sleep", "100"]);
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    env.ok(&["create", "-b", b.arg(), "dump"]);
    let pid = env.pid("dump");
    use std::os::unix::fs::MetadataExt;
    // /proc/PID files of a non-dumpable process belong to root, not to its uid.
    let before = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!((before.uid(), before.gid()), (0, 0));
    env.ok(&["start", "dump"]);
    std::thread::sleep(Duration::from_millis(100));
    let after = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(after.uid(), 1000, "after exec it is the container's own process");
    env.ok(&["delete", "-f", "dump"]);
    env.assert_gone("dump", &b);
}

#[test]
fn console_socket_receives_the_pty_master() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("cs", &["sh", "-c", "echo on-the-pty; tty"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let sock_path = env.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (_, fd) = recv_with_fd(&conn);
        // SAFETY: the fd was just received and is ours.
        unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    });
    env.ok(&[
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "-b",
        b.arg(),
        "cs",
    ]);
    let mut master = receiver.join().unwrap();
    env.ok(&["start", "cs"]);
    let text = read_until(&mut master, "/dev/");
    assert!(text.contains("on-the-pty"), "{text}");
    env.wait_status("cs", "stopped");
    env.ok(&["delete", "cs"]);
    env.assert_gone("cs", &b);
}

/// CVE-2024-21626: a cwd through /proc/self/fd/N of an fd the runtime (or
/// its caller) holds would land outside the container. Every low fd number
/// is tried, for run and for exec.
#[test]
fn cwd_through_a_leaked_fd_never_lands_on_the_host() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let marker_dir = env.dir.path().join("host-secret-dir");
    std::fs::create_dir(&marker_dir).unwrap();
    std::fs::write(marker_dir.join("HOST-MARKER"), "x").unwrap();
    let leaked = std::fs::File::open(&marker_dir).unwrap();
    for n in 3..12 {
        let id = format!("cwd{n}");
        let mut b = env.bundle(&id, &["sh", "-c", "ls"]);
        b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let mut cmd = env.cmd(&["run", "-b", b.arg(), &id]);
        dup_into(&mut cmd, leaked.as_raw_fd(), 7);
        let out = output_via_files(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("HOST-MARKER") && !stdout.contains("state.json"),
            "fd {n}: cwd on the host: {stdout}"
        );
        env.assert_gone(&id, &b);
    }
    let b = env.bundle("cwdexec", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "cwdexec"]);
    for n in 3..12 {
        let cwd = format!("/proc/self/fd/{n}");
        let mut cmd = env.cmd(&["exec", "--cwd", &cwd, "cwdexec", "ls"]);
        dup_into(&mut cmd, leaked.as_raw_fd(), 7);
        let out = output_via_files(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("HOST-MARKER") && !stdout.contains("state.json"),
            "exec fd {n}: {stdout}"
        );
    }
    env.ok(&["delete", "-f", "cwdexec"]);
}

/// CVE-2023-27561: /proc as a symlink in the rootfs is refused.
#[test]
fn symlinked_proc_is_refused() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("symproc", &["true"]);
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::fs::create_dir(b.rootfs().join("fakeproc")).unwrap();
    std::os::unix::fs::symlink("fakeproc", b.rootfs().join("proc")).unwrap();
    let e = env.fails(&["create", "-b", b.arg(), "symproc"]);
    assert!(e.contains("/proc") && e.contains("symlink"), "{e}");
    env.assert_gone("symproc", &b);
}

/// A rootfs whose /dev points out of it: nothing is made on the host; the
/// symlink resolves inside the rootfs, where its target does not exist, so
/// create is refused with a clear error.
#[test]
fn dev_symlink_out_of_the_rootfs_touches_nothing_on_the_host() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let host_dir = env.dir.path().join("host-dev");
    std::fs::create_dir(&host_dir).unwrap();
    let b = env.bundle("symdev", &["sh", "-c", "ls /dev/null"]);
    std::fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink(&host_dir, b.rootfs().join("dev")).unwrap();
    let e = env.fails(&["run", "-b", b.arg(), "symdev"]);
    assert!(e.contains("/dev"), "{e}");
    assert_eq!(
        std::fs::read_dir(&host_dir).unwrap().count(),
        0,
        "something was made in the host directory"
    );
    env.assert_gone("symdev", &b);
}

/// CVE-2019-5736: before it execs, the init is the runtime's own image; a
/// process in the container must not be able to open it through /proc.
#[test]
fn runtime_binary_cannot_be_reached_from_the_container() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let before = std::fs::read(MYSHIM).unwrap();
    let b = env.bundle("exe", &["sleep", "100"]);
    env.ok(&["create", "-b", b.arg(), "exe"]);
    // pid 1 is the waiting init, still the myshim image.
    let script =
        "(echo pwned > /proc/1/exe) 2>/dev/null && echo wrote; cat /proc/1/exe > /dev/null 2>&1 && echo read; true";
    let out = env.ok(&["exec", "exe", "sh", "-c", script]);
    assert!(!out.contains("wrote") && !out.contains("read"), "{out}");
    assert_eq!(std::fs::read(MYSHIM).unwrap(), before, "the runtime binary changed");
    env.ok(&["delete", "exe"]);
    env.assert_gone("exe", &b);
}

/// The variable that makes `exe_attacker` attack: the directory it shares
/// with the test, as the container sees it.
const ATTACK_ENV: &str = "MYSHIM_TEST_EXE_ATTACK";
/// A copy of this test binary in the container, running only `exe_attacker`.
const ATTACKER: [&str; 7] = [
    "/attacker",
    "--ignored",
    "--exact",
    "exe_attacker",
    "--nocapture",
    "--test-threads",
    "1",
];

/// CVE-2019-5736 for real, on the waiting init: an exec'd process with
/// CAP_SYS_PTRACE takes an O_PATH handle on /proc/1/exe before `start`, and
/// writes through it at once and again once no runtime process is left.
#[test]
fn runtime_binary_survives_a_kept_handle_on_the_waiting_init() {
    if !is_root() {
        return;
    }
    let env = Env::with_own_binary();
    let before = sha256(&env.bin);
    let (b, shared) = attack_bundle(&env, "exeinit", &["sleep", "100"]);
    env.ok(&["create", "-b", b.arg(), "exeinit"]);
    let var = format!("{ATTACK_ENV}=/attack");
    let mut exec = vec!["exec", "-d", "-e", &var, "exeinit"];
    exec.extend(ATTACKER);
    env.ok(&exec);
    assert_eq!(
        wait_for_file(&shared.join("grabbed")),
        "1",
        "the attacker took another process"
    );
    env.ok(&["start", "exeinit"]);
    finish_attack(&env, &shared, &before);
    env.ok(&["delete", "-f", "exeinit"]);
    env.assert_gone("exeinit", &b);
}

/// CVE-2019-5736 for real, on the helper `exec` starts in the container's
/// pid namespace: the container's own process (CAP_SYS_PTRACE) watches for
/// it while the test execs `true` until it has caught one.
#[test]
fn runtime_binary_survives_a_kept_handle_on_an_exec_helper() {
    if !is_root() {
        return;
    }
    let env = Env::with_own_binary();
    let before = sha256(&env.bin);
    let (mut b, shared) = attack_bundle(&env, "exehelper", &ATTACKER);
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("{ATTACK_ENV}=/attack")))
    });
    env.ok(&["run", "-d", "-b", b.arg(), "exehelper"]);
    let grabbed = shared.join("grabbed");
    for _ in 0..200 {
        if grabbed.exists() {
            break;
        }
        env.ok(&["exec", "exehelper", "true"]);
    }
    let pid = wait_for_file(&grabbed);
    assert_ne!(pid, "1", "the attacker took the container's init");
    finish_attack(&env, &shared, &before);
    env.ok(&["delete", "-f", "exehelper"]);
    env.assert_gone("exehelper", &b);
}

/// A container with CAP_SYS_PTRACE, a copy of this test binary as
/// /attacker, and a host directory shared at /attack.
fn attack_bundle(env: &Env, id: &str, args: &[&str]) -> (Bundle, std::path::PathBuf) {
    let mut b = env.bundle(id, args);
    let shared = env.dir.path().join(format!("{id}-shared"));
    std::fs::create_dir(&shared).unwrap();
    std::fs::create_dir(b.rootfs().join("attack")).unwrap();
    std::fs::copy(std::env::current_exe().unwrap(), b.rootfs().join("attacker")).unwrap();
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_PTRACE"));
        }
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/attack", "type": "bind", "source": shared, "options": ["rbind"]}));
    });
    (b, shared)
}

/// Every runtime process has exited (the binary is no longer busy): the
/// attacker writes again. Neither write may land.
fn finish_attack(env: &Env, shared: &std::path::Path, before: &str) {
    std::fs::write(shared.join("go"), "").unwrap();
    let result = wait_for_file(&shared.join("result"));
    eprintln!("attacker: {result}");
    assert!(result.contains("late:"), "the attack did not run: {result}");
    assert!(!result.contains("wrote"), "{result}");
    assert_eq!(sha256(&env.bin), before, "the runtime binary changed: {result}");
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The contents of `path` once it exists (bounded: the attacker gives up
/// after a minute too).
fn wait_for_file(path: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The attacker of the CVE-2019-5736 tests, run inside their containers as
/// a copy of this binary; elsewhere (no `ATTACK_ENV`) it does nothing.
#[test]
#[ignore = "run inside a container by the CVE-2019-5736 tests"]
fn exe_attacker() {
    if let Ok(dir) = std::env::var(ATTACK_ENV) {
        attacker::run(std::path::Path::new(&dir));
    }
}

mod attacker {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Grabs the exe of a runtime process, writes through it, waits for the
    /// test's go, writes again after reopening, and reports to `dir`.
    pub fn run(dir: &Path) {
        // Written whole, then renamed: the test reads it as soon as it exists.
        let report = |name: &str, text: String| {
            std::fs::write(dir.join("partial"), text).unwrap();
            std::fs::rename(dir.join("partial"), dir.join(name)).unwrap();
        };
        let Some((pid, handle)) = grab_runtime_exe() else {
            return report("result", "gave up: no runtime process seen\n".into());
        };
        report("grabbed", pid.to_string());
        let early = write_through(&handle);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.join("go").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let late = write_through(&handle);
        report("result", format!("early: {early}\nlate: {late}\n"));
    }

    /// Polls /proc until a process runs neither busybox nor this binary:
    /// a runtime process. Returns its pid and an O_PATH fd on its exe.
    fn grab_runtime_exe() -> Option<(i32, OwnedFd)> {
        let id = |m: std::fs::Metadata| (m.dev(), m.ino());
        let ours = [
            id(std::fs::metadata("/proc/self/exe").unwrap()),
            id(std::fs::metadata("/bin/busybox").unwrap()),
        ];
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            for pid in pids() {
                let path = format!("/proc/{pid}/exe");
                let Ok(fd) = nix::fcntl::open(path.as_str(), nix::fcntl::OFlag::O_PATH, nix::sys::stat::Mode::empty())
                else {
                    continue;
                };
                // SAFETY: a fresh fd from open.
                let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                let meta = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                if meta.is_ok_and(|m| !ours.contains(&id(m))) {
                    return Some((pid, fd));
                }
            }
        }
        None
    }

    fn pids() -> Vec<i32> {
        let entries = std::fs::read_dir("/proc").unwrap().flatten();
        entries.filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
    }

    /// Reopens the handle for writing, as the original exploit did.
    fn write_through(handle: &OwnedFd) -> String {
        let path = format!("/proc/self/fd/{}", handle.as_raw_fd());
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(mut f) => match std::io::Write::write_all(&mut f, b"#!/bin/sh\necho pwned\n") {
                Ok(()) => "wrote".into(),
                Err(e) => format!("write failed: {e}"),
            },
            Err(e) => format!("open failed: {e}"),
        }
    }
}

/// A bundle whose /dev is a bind of `fakedev`, with `name` in it a symlink
/// to a host procfs file: what CVE-2025-31133 and CVE-2025-52565 plant.
fn bundle_with_planted_dev(env: &Env, id: &str, name: &str, args: &[&str]) -> Bundle {
    let mut b = env.bundle(id, args);
    let fakedev = b.path.join("fakedev");
    std::fs::create_dir(&fakedev).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", fakedev.join(name)).unwrap();
    b.edit(|c| {
        c["mounts"][1] = json!({"destination": "/dev", "type": "bind", "source": fakedev, "options": ["rbind"]});
    });
    b
}

/// CVE-2025-31133: masking binds /dev/null; a /dev/null that is not the
/// 1:3 character device is refused.
#[test]
fn masked_paths_need_the_real_dev_null() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let b = bundle_with_planted_dev(&env, "fakenull", "null", &["true"]);
    let e = env.fails(&["create", "-b", b.arg(), "fakenull"]);
    assert!(e.contains("/dev/null") && e.contains("1:3"), "{e}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    env.assert_gone("fakenull", &b);
}

/// CVE-2025-52565: the pty is never mounted through a planted /dev/console.
#[test]
fn planted_dev_console_is_refused() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = bundle_with_planted_dev(&env, "fakecons", "console", &["true"]);
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["linux"]["maskedPaths"] = json!([]);
    });
    let sock = env.dir.path().join("cons.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let e = env.fails(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.arg(),
        "fakecons",
    ]);
    assert!(e.contains("/dev/console") && e.contains("symlink"), "{e}");
    env.assert_gone("fakecons", &b);
}

/// CVE-2022-29162: exec'd processes get no inheritable capabilities the
/// config did not give.
#[test]
fn exec_gets_no_inheritable_capabilities() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("inh", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "inh"]);
    let out = env.ok(&["exec", "inh", "grep", "-E", "CapInh|CapAmb", "/proc/self/status"]);
    assert_eq!(out, "CapInh:\t0000000000000000\nCapAmb:\t0000000000000000\n");
    env.ok(&["delete", "-f", "inh"]);
}

/// CVE-2021-30465: a directory swapped with a symlink to / while mounts are
/// made never sends a mount or a directory onto the host.
#[test]
fn symlink_exchange_race_stays_inside() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let tag = format!("myshim-race-{}", std::process::id());
    let mut b = env.bundle("race", &["true"]);
    let mnt = b.rootfs().join("mnt");
    std::fs::create_dir_all(mnt.join("a")).unwrap();
    std::os::unix::fs::symlink("/", mnt.join("link")).unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        let mounts = c["mounts"].as_array_mut().unwrap();
        for i in 0..20 {
            mounts.push(json!({"destination": format!("/mnt/a/{tag}-{i}"), "type": "tmpfs", "source": "tmpfs"}));
        }
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        let (a, link) = (mnt.join("a"), mnt.join("link"));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = nix::fcntl::renameat2(None, &a, None, &link, nix::fcntl::RenameFlags::RENAME_EXCHANGE);
            }
        })
    };
    for i in 0..10 {
        let _ = env.run(&["run", "-b", b.arg(), &format!("race{i}")]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    racer.join().unwrap();
    let host: Vec<_> = std::fs::read_dir("/")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&tag))
        .collect();
    assert!(host.is_empty(), "directories made on the host: {host:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&tag), "a mount reached the host");
    assert_no_leftovers(&b.path);
}

/// A host sysctl restored on drop, should a test's attack reach it.
struct HostSysctl {
    path: &'static str,
    value: String,
}

impl HostSysctl {
    fn new(path: &'static str) -> HostSysctl {
        let value = std::fs::read_to_string(path).unwrap();
        HostSysctl { path, value }
    }

    fn unchanged(&self) -> bool {
        std::fs::read_to_string(self.path).unwrap() == self.value
    }
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        if !self.unchanged() {
            let _ = std::fs::write(self.path, &self.value);
        }
    }
}

/// CVE-2025-52881: a file bind-mounted over the /proc/sys file that a
/// linux.sysctl entry names must not receive the runtime's write: neither a
/// plain decoy file nor another procfs file, global to the host.
#[test]
fn sysctl_write_is_not_redirected_by_a_mount_over_proc() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let host = HostSysctl::new("/proc/sys/fs/lease-break-time");
    // A value both files would take.
    let value = if host.value.trim() == "7" { "8" } else { "7" };
    for (id, decoy) in [("sysdecoy", None), ("sysproc", Some(host.path))] {
        let mut b = env.bundle(id, &["true"]);
        let source = decoy.map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::fs::write(b.path.join("decoy"), "decoy\n").unwrap();
            b.path.join("decoy")
        });
        b.edit(|c| {
            c["linux"]["sysctl"] = json!({"kernel.domainname": value});
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/proc/sys/kernel/domainname", "type": "bind", "source": source}));
        });
        let out = env.run(&["run", "-b", b.arg(), id]);
        if decoy.is_none() {
            assert_eq!(
                std::fs::read_to_string(&source).unwrap(),
                "decoy\n",
                "the decoy was written"
            );
        }
        assert!(host.unchanged(), "{id}: the write landed on the host's {}", host.path);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains("kernel.domainname"), "{id}: {e}");
        env.assert_gone(id, &b);
    }
}

/// An AppArmor profile loaded for one test and removed after it; None where
/// AppArmor is not enabled (no LSM here: the test then runs in a VM whose
/// kernel has it, with securityfs mounted).
struct AppArmorProfile {
    name: String,
    file: tempfile::NamedTempFile,
}

impl AppArmorProfile {
    fn load() -> Option<AppArmorProfile> {
        if !std::path::Path::new("/sys/kernel/security/apparmor/profiles").exists() {
            eprintln!("skipped: AppArmor is not enabled (or securityfs not mounted)");
            return None;
        }
        let name = format!("myshim-test-{}", std::process::id());
        let file = tempfile::NamedTempFile::new().unwrap();
        let text = format!("profile {name} flags=(attach_disconnected) {{\n  file,\n  capability,\n  signal,\n}}\n");
        std::fs::write(file.path(), text).unwrap();
        let status = std::process::Command::new("apparmor_parser")
            .arg("-r")
            .arg(file.path())
            .status()
            .expect("apparmor_parser (Debian package apparmor)");
        assert!(status.success(), "loading the test profile");
        Some(AppArmorProfile { name, file })
    }
}

impl Drop for AppArmorProfile {
    fn drop(&mut self) {
        let _ = std::process::Command::new("apparmor_parser")
            .arg("-R")
            .arg(self.file.path())
            .status();
    }
}

type BundleEdit = fn(&mut serde_json::Value, &std::path::Path);

/// /proc is a bind of the bundle's `fake` directory.
fn fake_proc(c: &mut serde_json::Value, fake: &std::path::Path) {
    c["mounts"][0] = json!({"destination": "/proc", "type": "bind", "source": fake, "options": ["rbind"]});
}

/// `fake/attr` is bound over the init's /proc/PID/attr and
/// /proc/PID/task/PID/attr.
fn bind_over_attr(c: &mut serde_json::Value, fake: &std::path::Path) {
    let mounts = c["mounts"].as_array_mut().unwrap();
    for dest in ["/proc/self/attr", "/proc/thread-self/attr"] {
        mounts.push(json!({"destination": dest, "type": "bind", "source": fake.join("attr"), "options": ["rbind"]}));
    }
}

/// process.apparmorProfile confines the process; CVE-2019-16884: a fake
/// /proc (a bind of a bundle directory) or a directory bound over the init's
/// /proc/PID/attr must not swallow the runtime's write and let the process
/// run unconfined. Either create is refused, or the process is confined.
#[test]
fn apparmor_profile_applies_and_a_fake_proc_cannot_swallow_it() {
    if !is_root() {
        return;
    }
    let Some(profile) = AppArmorProfile::load() else { return };
    let env = Env::new();
    let label = |id: &str, edit: BundleEdit| {
        // cat is sh's child: its /proc/PID is not the init's, which the attack covers.
        let mut b = env.bundle(id, &["sh", "-c", "cat /proc/self/attr/current; true"]);
        let fake = b.path.join("fake");
        // Empty decoys wherever the runtime might write.
        for dir in ["attr/apparmor", "thread-self/attr/apparmor", "self/attr/apparmor"] {
            std::fs::create_dir_all(fake.join(dir)).unwrap();
            std::fs::write(fake.join(dir).join("exec"), "").unwrap();
            std::fs::write(fake.join(dir).join("../exec"), "").unwrap();
        }
        b.edit(|c| {
            c["process"]["apparmorProfile"] = json!(profile.name);
            edit(c, &fake);
        });
        let (code, stdout, stderr) = run_output(&env, &b, id);
        env.assert_gone(id, &b);
        eprintln!("{id}: exit {code}: {stdout} {stderr}");
        let written: Vec<_> = [
            "attr/apparmor/exec",
            "attr/exec",
            "thread-self/attr/apparmor/exec",
            "thread-self/attr/exec",
        ]
        .iter()
        .filter(|f| std::fs::read(fake.join(f)).is_ok_and(|t| !t.is_empty()))
        .collect();
        assert!(written.is_empty(), "{id}: the profile went to the decoy {written:?}");
        (code, stdout, stderr)
    };
    let (code, stdout, stderr) = label("aa", |_, _| {});
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), format!("{} (enforce)", profile.name));
    let attacks: [(&str, BundleEdit); 2] = [("aafakeproc", fake_proc), ("aaoverattr", bind_over_attr)];
    for (id, edit) in attacks {
        let (code, stdout, stderr) = label(id, edit);
        let confined = stdout.trim() == format!("{} (enforce)", profile.name);
        assert!(
            confined || (code != 0 && stderr.contains("apparmorProfile")),
            "{id}: ran unconfined: {stdout} {stderr}"
        );
    }
}
