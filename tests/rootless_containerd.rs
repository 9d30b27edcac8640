//! Rootless containerd: an ordinary user, made for the test with
//! subordinate id ranges, starts containerd inside rootlesskit (its own
//! user, mount and pid-visible namespaces, `--net=host --copy-up=/run`) and
//! runs containers through io.containerd.myshim.v2 with ctr, entered into
//! rootlesskit's namespaces as that user. The shim and the runtime are then
//! uid 0 of a user namespace without real privileges. Everything the test
//! made (processes, the user, its ranges, the temp dir) goes, pass or fail.

#[path = "common/ctr.rs"]
mod ctr;
#[path = "../runtime/tests/common/user.rs"]
mod user;

use ctr::{build_image, Ctr, IMAGE, RUNTIME};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use user::ThrowawayUser;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-myshim-v2");
const NAMESPACE: &str = "rootless";

fn ready() -> bool {
    let missing: Vec<&str> = [
        "/usr/bin/rootlesskit",
        "/usr/bin/newuidmap",
        "/usr/bin/containerd",
        "/usr/bin/ctr",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    let root = nix::unistd::geteuid().is_root();
    if !root || !missing.is_empty() {
        eprintln!("skipped: needs root and {missing:?} (contrib/install-deps.sh)");
    }
    root && missing.is_empty()
}

/// containerd run by the user inside rootlesskit; removes everything on drop.
struct RootlessContainerd {
    user: ThrowawayUser,
    rootlesskit: Child,
}

impl RootlessContainerd {
    fn start() -> RootlessContainerd {
        let user = ThrowawayUser::new();
        // The user may not reach the build tree: its PATH has a copy of the shim.
        std::fs::create_dir(user.path("bin")).unwrap();
        std::fs::copy(SHIM, user.path("bin/containerd-shim-myshim-v2")).unwrap();
        let config = format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{r}/c.sock\"\n[ttrpc]\n  address = \"{r}/c.sock.ttrpc\"\n",
            r = user.dir.path().display()
        );
        std::fs::write(user.path("config.toml"), config).unwrap();
        std::fs::create_dir(user.path("xdg")).unwrap();
        user.chown(user.dir.path());
        let rootlesskit = spawn_rootlesskit(&user);
        let c = RootlessContainerd { user, rootlesskit };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !c.user.path("rk/child_pid").exists() || !c.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "rootless containerd did not come up: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c.import_image();
        c
    }

    /// rootlesskit's child: its namespaces are where containerd runs.
    fn child_pid(&self) -> String {
        std::fs::read_to_string(self.user.path("rk/child_pid")).unwrap_or_default()
    }

    /// busybox built offline (contrib/make-bundle.sh, contrib/make-image.sh)
    /// and imported by the user.
    fn import_image(&self) {
        let tar = build_image(self.user.dir.path());
        self.user.chown(&tar);
        self.ok(&["images", "import", tar.to_str().unwrap()]);
    }

    /// Live shim processes of this containerd (they name its socket).
    fn shims(&self) -> Vec<i32> {
        let sock = self.user.path("c.sock").display().to_string();
        self.user
            .processes()
            .into_iter()
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                cmdline.contains("containerd-shim-myshim-v2") && cmdline.contains(&sock)
            })
            .collect()
    }

    /// The runtime's state directories of our containerd namespace, read
    /// through rootlesskit's mount namespace (its private /run).
    fn runtime_state(&self) -> Vec<String> {
        let dir = format!(
            "/proc/{}/root/run/containerd/myshim/{NAMESPACE}",
            self.child_pid().trim()
        );
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Ctr for RootlessContainerd {
    fn log(&self) -> String {
        std::fs::read_to_string(self.user.path("containerd.log")).unwrap_or_default()
    }

    /// `ctr ARGS` as the user, in rootlesskit's user and mount namespaces
    /// (as `nsenter -U --preserve-credentials -m -t CHILD` from its docs).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.user.command("/usr/bin/nsenter");
        c.args([
            "-U",
            "--preserve-credentials",
            "-m",
            "-t",
            self.child_pid().trim(),
            "--",
        ])
        .arg("/usr/bin/ctr")
        .arg("-a")
        .arg(self.user.path("c.sock"))
        .args(["-n", NAMESPACE])
        .args(args);
        c
    }
}

/// `rootlesskit --net=host --copy-up=/run containerd` as the user; the
/// copied-up /run/containerd (a link to the host's) is removed first, so
/// that the shim makes its sockets and state in the private /run.
fn spawn_rootlesskit(user: &ThrowawayUser) -> Child {
    let dir = user.dir.path().display().to_string();
    let log = std::fs::File::create(user.path("containerd.log")).unwrap();
    user.command("/usr/bin/rootlesskit")
        .args(["--net=host", "--copy-up=/run", "--state-dir"])
        .arg(user.path("rk"))
        .args(["--", "/bin/sh", "-c"])
        .arg(format!(
            "rm -f /run/containerd && exec containerd --log-level debug --config {dir}/config.toml"
        ))
        .env("PATH", format!("{dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        .env("XDG_RUNTIME_DIR", user.path("xdg"))
        .env("USER", &user.name)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Drop for RootlessContainerd {
    fn drop(&mut self) {
        if let Ok(ls) = String::from_utf8(self.ctr(&["task", "ls", "-q"]).stdout) {
            for id in ls.lines() {
                let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
                let _ = self.ctr(&["task", "delete", "-f", id]);
            }
        }
        // rootlesskit, containerd, shims and containers are all the user's
        // (or its subordinate ids'): the account's drop kills them by pid.
        let _ = self.rootlesskit.kill();
        let _ = self.rootlesskit.wait();
        self.user.kill_all();
    }
}

/// Lines of the containerd log (with the shims' debug output) that contain `text`.
fn count_in(log: &str, text: &str) -> usize {
    log.lines().filter(|l| l.contains(text)).count()
}

#[test]
fn ctr_run_exec_kill_delete_under_rootlesskit() {
    if !ready() {
        return;
    }
    let c = RootlessContainerd::start();

    // A container in the foreground: its root is the user on the host, and
    // it has no cgroup of its own (none writable here), said once at debug.
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "fg",
        "sh",
        "-c",
        "id -u; head -1 /proc/self/uid_map; test -c /dev/null && echo devices; exit 3",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "0", &c.user.uid.to_string(), "1", "devices"], "{stdout}");
    assert_eq!(
        count_in(&c.log(), "no OOM events: container \"fg\" has no cgroup"),
        1,
        "{}",
        c.log()
    );

    // Detached, with several execs: each lands in the container's pid
    // namespace, and a container created after them gets its own.
    c.run_detached(&[], "bg", &["sleep", "1000"]);
    c.wait_task("bg", "RUNNING");
    for n in 1..=2 {
        let ps = c.ok(&["task", "exec", "--exec-id", &format!("ps{n}"), "bg", "ps", "-o", "comm"]);
        assert_eq!(
            ps.split_whitespace().collect::<Vec<_>>(),
            ["COMMAND", "sleep", "ps"],
            "{ps}"
        );
    }
    let out = c.ok(&["task", "exec", "--exec-id", "id", "bg", "sh", "-c", "id -u"]);
    assert_eq!(out.trim(), "0");
    let code = c
        .ctr(&["task", "exec", "--exec-id", "code", "bg", "sh", "-c", "exit 7"])
        .status
        .code();
    assert_eq!(code, Some(7));
    c.run_detached(&[], "other", &["sleep", "1000"]);
    c.wait_task("other", "RUNNING");
    let ps = c.ok(&["task", "exec", "--exec-id", "ps3", "bg", "ps", "-o", "comm"]);
    assert_eq!(
        ps.split_whitespace().collect::<Vec<_>>(),
        ["COMMAND", "sleep", "ps"],
        "{ps}"
    );

    // kill, delete: nothing of the containers is left.
    for id in ["bg", "other"] {
        c.kill_and_remove(id);
    }
    assert_eq!(c.ok(&["task", "ls", "-q"]).trim(), "");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.shims().is_empty() {
        assert!(Instant::now() < deadline, "shims left running: {:?}", c.shims());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        c.runtime_state().is_empty(),
        "runtime state left: {:?}",
        c.runtime_state()
    );
    let dir = c.user.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&dir), "host mounts left under {dir}");
}
