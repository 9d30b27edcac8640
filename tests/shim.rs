//! The shim with a real containerd (each version found: Debian's installed
//! one, and 1.7 / 2.x unpacked by contrib/fetch-containerd.sh), driven by ctr
//! against an image built offline. Each test starts its own containerd in a
//! temp dir and removes everything it made, pass or fail.

#[path = "common/ctr.rs"]
mod ctr;

use ctr::{build_image, Ctr, IMAGE, RUNTIME};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-myshim-v2");

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: shim tests need root");
    }
    root
}

/// containerd builds to test against: (name, containerd, ctr).
fn versions() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = vec![];
    if Path::new("/usr/bin/containerd").exists() {
        out.push((
            "installed".to_string(),
            "/usr/bin/containerd".into(),
            "/usr/bin/ctr".into(),
        ));
    }
    for suite in ["trixie", "sid"] {
        let base = Path::new("/var/cache/myshim/containerd").join(suite).join("usr/bin");
        if base.join("containerd").exists() {
            out.push((suite.to_string(), base.join("containerd"), base.join("ctr")));
        }
    }
    assert!(!out.is_empty(), "no containerd found: run contrib/install-deps.sh");
    out
}

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    ctr: PathBuf,
    namespace: String,
}

impl Containerd {
    fn start(containerd: &Path, ctr: &Path) -> Containerd {
        Containerd::start_with(containerd, ctr, "")
    }

    /// Starts a containerd with `extra` appended to its config.
    fn start_with(containerd: &Path, ctr: &Path, extra: &str) -> Containerd {
        let dir = tempfile::Builder::new().prefix("myshim-ctd").tempdir().unwrap();
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{r}/c.sock\"\n[ttrpc]\n  address = \"{r}/c.sock.ttrpc\"\n{extra}",
            r = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let daemon = spawn_containerd(containerd, d);
        let namespace = format!(
            "myshimtest{}",
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
        c.import_image();
        c
    }

    /// Starts containerd again on the same state (after the test killed it).
    fn restart(&mut self, containerd: &Path) {
        self.daemon = spawn_containerd(containerd, self.dir.path());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not come back: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn import_image(&self) {
        let tar = build_image(self.dir.path());
        self.ok(&["images", "import", tar.to_str().unwrap()]);
    }

    fn rootfs_dir(&self) -> String {
        self.dir.path().join("image/rootfs").display().to_string()
    }

    /// `ctr ARGS` on a pseudo-terminal (script(1)), after `setup` shell commands.
    fn in_pty(&self, setup: &str, args: &str) -> Output {
        let inner = format!(
            "{setup}{} -a {} -n {} {args}",
            self.ctr.display(),
            self.dir.path().join("c.sock").display(),
            self.namespace
        );
        Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A spec file for container `id` (`ctr run --config`): that of the
    /// running `like` (its pod annotation included), with a createRuntime
    /// hook running `script` and a cgroup of its own.
    fn spec_with_create_hook(&self, like: &str, id: &str, script: &str) -> PathBuf {
        let config = self.dir.path().join(format!(
            "state/io.containerd.runtime.v2.task/{}/{like}/config.json",
            self.namespace
        ));
        let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
        spec["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{id}", self.namespace));
        // ctr takes no image with a spec file: the test's image rootfs, read-only.
        spec["root"] = serde_json::json!({"path": self.rootfs_dir(), "readonly": true});
        let file = self.dir.path().join(format!("{id}.json"));
        std::fs::write(&file, spec.to_string()).unwrap();
        file
    }

    /// Shim processes serving this containerd.
    fn shims(&self) -> Vec<i32> {
        let sock = self.dir.path().join("c.sock").display().to_string();
        pids_with_cmdline(|c| c.contains("containerd-shim-myshim-v2") && c.contains(&sock))
    }
}

impl Ctr for Containerd {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.ctr);
        c.arg("-a")
            .arg(self.dir.path().join("c.sock"))
            .arg("-n")
            .arg(&self.namespace);
        // ctr leaves the fifos of detached processes behind: keep them in
        // the test's own directory.
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

/// A field of /proc/PID/status.
fn status_field(pid: i32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// containerd on `d/config.toml`, finding our shim first on its PATH.
fn spawn_containerd(containerd: &Path, d: &Path) -> Child {
    let shim_dir = Path::new(SHIM).parent().unwrap();
    let path = format!("{}:{}", shim_dir.display(), std::env::var("PATH").unwrap_or_default());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("containerd.log"))
        .unwrap();
    Command::new(containerd)
        .arg("--config")
        .arg(d.join("config.toml"))
        .env("PATH", path)
        .current_dir(d)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The /tasks/... topics of `ctr events` output for one namespace, in order.
fn task_topics<'a>(text: &'a str, namespace: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.contains(namespace))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
        .collect()
}

fn pids_with_cmdline(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        if pred(&String::from_utf8_lossy(&cmdline).replace('\0', " ")) {
            out.push(pid);
        }
    }
    out
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
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
        }
        for root in ["/run/containerd/myshim", "/run/containerd/runc"] {
            let _ = std::fs::remove_dir_all(Path::new(root).join(&self.namespace));
        }
        // ctr's empty fifo directories, the shim socket directory and our
        // state root, once no test uses them (remove_dir takes only empty ones).
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
            "/run/containerd/runc",
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

/// Nothing of the test's containers is left: no mount under the temp dir,
/// no runtime state, no shim.
fn assert_clean(c: &Containerd) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.shims().is_empty() {
        assert!(Instant::now() < deadline, "shims left running: {:?}", c.shims());
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = c.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.lines().any(|l| l.contains(&format!("{dir}/"))),
        "mounts left under {dir}"
    );
    let state = Path::new("/run/containerd/myshim").join(&c.namespace);
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let parent = hierarchy.path().join(&c.namespace);
        let children: Vec<_> = std::fs::read_dir(&parent)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            children.is_empty(),
            "cgroups left in {}: {children:?}",
            parent.display()
        );
    }
}

#[test]
fn ctr_run_rm_with_image_and_rootfs_dir() {
    if !is_root() {
        return;
    }
    for (name, containerd, ctr) in versions() {
        let c = Containerd::start(&containerd, &ctr);
        let out = c.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            IMAGE,
            "img",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 42",
        ]);
        assert_eq!(
            out.status.code(),
            Some(42),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n", "{name}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("err"), "{name}");
        let rootfs = c.rootfs_dir();
        let out = c.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--rootfs",
            &rootfs,
            "dir",
            "sh",
            "-c",
            "echo from dir",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "from dir\n",
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&c);
    }
}

#[test]
fn detached_task_ls_ps_exec_kill_delete() {
    if !is_root() {
        return;
    }
    for (name, containerd, ctr) in versions() {
        let c = Containerd::start(&containerd, &ctr);
        c.run_detached(&[], "d1", &["sleep", "1000"]);
        c.wait_task("d1", "RUNNING");
        // The shim serves everything on one thread, its fork helper on one.
        // (The container's init can still be a copy of the helper about to
        // execve, in its own pid namespace: not counted.)
        let own_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        let threads: Vec<String> = c
            .shims()
            .into_iter()
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&own_pidns))
            .map(|pid| status_field(pid, "Threads"))
            .collect();
        assert_eq!(threads, ["1", "1"], "{name}: threads of the shim and its helper");
        // They run from a write-protected image of the binary, not from the
        // file on disk (CVE-2019-5736; the runtime's security tests attack it).
        for pid in c.shims() {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
            assert_ne!(exe, Path::new(SHIM), "{name}: shim {pid} runs from its binary on disk");
        }
        let ps = c.ok(&["task", "ps", "d1"]);
        assert_eq!(ps.lines().count(), 2, "{name}: {ps}");
        let out = c.ctr(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "d1",
            "sh",
            "-c",
            "echo in exec; exit 3",
        ]);
        assert_eq!(out.status.code(), Some(3), "{name}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "in exec\n");
        // stdin reaches the exec'd process and EOF arrives (CloseIO).
        let mut child = c
            .cmd(&[
                "task",
                "exec",
                "--exec-id",
                "e2",
                "d1",
                "sh",
                "-c",
                "read x; echo got $x; cat",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"hello\nrest\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\nrest\n", "{name}");
        // A reused exec id is refused.
        let mut hold = c
            .cmd(&["task", "exec", "--exec-id", "e3", "d1", "sleep", "100"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let dup = c.ctr(&["task", "exec", "--exec-id", "e3", "d1", "true"]);
        assert!(!dup.status.success());
        assert!(
            String::from_utf8_lossy(&dup.stderr).contains("already exists"),
            "{name}: {}",
            String::from_utf8_lossy(&dup.stderr)
        );
        c.ok(&["task", "kill", "-s", "KILL", "d1"]);
        c.wait_task("d1", "STOPPED");
        let _ = hold.kill();
        let _ = hold.wait();
        c.ok(&["task", "delete", "d1"]);
        let gone = c.ctr(&["task", "kill", "d1"]);
        assert!(!gone.status.success());
        c.ok(&["container", "rm", "d1"]);
        assert_clean(&c);
    }
}

#[test]
fn exit_by_signal_is_137_and_events_come_in_order() {
    if !is_root() {
        return;
    }
    for (name, containerd, ctr) in versions() {
        let c = Containerd::start(&containerd, &ctr);
        let mut events = c.cmd(&["events"]).stdout(Stdio::piped()).spawn().unwrap();
        // Time for ctr to subscribe before the first event.
        std::thread::sleep(Duration::from_millis(1000));
        let run = c
            .cmd(&["run", "--rm", "--runtime", RUNTIME, IMAGE, "ev", "sleep", "1000"])
            .spawn()
            .unwrap();
        c.wait_task("ev", "RUNNING");
        let out = c.ctr(&["task", "exec", "--exec-id", "x1", "ev", "true"]);
        assert!(out.status.success(), "{name}");
        c.ok(&["task", "kill", "-s", "KILL", "ev"]);
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(137), "{name}");
        std::thread::sleep(Duration::from_millis(500));
        let _ = events.kill();
        let text = String::from_utf8_lossy(&events.wait_with_output().unwrap().stdout).into_owned();
        let topics = task_topics(&text, &c.namespace);
        let expected = [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit",
            "/tasks/delete",
        ];
        assert_eq!(topics, expected, "{name}: {text}");
        assert_clean(&c);
    }
}

#[test]
fn terminal_run() {
    if !is_root() {
        return;
    }
    for (name, containerd, ctr) in versions() {
        let c = Containerd::start(&containerd, &ctr);
        let out = c.in_pty(
            "stty rows 21 cols 77; ",
            &format!("run -t --rm --runtime {RUNTIME} {IMAGE} tty sh -c 'sleep 0.5; tty; stty size; exit 5'"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("/dev/pts/0") && text.contains("21 77"), "{name}: {text}");
        assert_eq!(out.status.code(), Some(5), "{name}: {text}");
        assert_clean(&c);
    }
}

#[test]
fn create_error_names_the_cause() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let out = c.ctr(&["run", "--rm", "--runtime", RUNTIME, IMAGE, "bad", "/no/such/program"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/program") && err.contains("no such file or directory"),
        "{err}"
    );
    let _ = c.ctr(&["container", "rm", "bad"]);
    assert_clean(&c);
}

#[test]
fn pod_containers_share_one_shim() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let pod = "io.kubernetes.cri.sandbox-id=pod1";
    c.run_detached(&["--annotation", pod], "p1", &["sleep", "1000"]);
    c.run_detached(&["--annotation", pod], "p2", &["sleep", "1000"]);
    c.run_detached(&[], "solo", &["sleep", "1000"]);
    c.wait_task("p2", "RUNNING");
    // One shim process (plus its fork helper) per group: p1+p2, and solo.
    let serving: Vec<i32> = c.shims().into_iter().filter(|p| is_shim_server(*p)).collect();
    assert_eq!(serving.len(), 2, "{serving:?}");
    for id in ["p1", "p2", "solo"] {
        c.kill_and_remove(id);
    }
    assert_clean(&c);
}

/// A create whose hook takes its time does not stall the shim it shares
/// with another container: the stdin of a process in that one still flows
/// through the shim while the hook waits, and its requests are served.
#[test]
fn a_slow_create_hook_does_not_stall_the_pod_shim() {
    use std::io::{BufRead, Write};
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let pod = "io.kubernetes.cri.sandbox-id=podh";
    c.run_detached(&["--annotation", pod], "h1", &["sleep", "1000"]);
    c.wait_task("h1", "RUNNING");
    let echo_loop = "while read l; do echo got $l; done";
    let mut echo = c
        .cmd(&["task", "exec", "--exec-id", "echo", "h1", "sh", "-c", echo_loop])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_echo = echo.stdin.take().unwrap();
    let (tx, echoed) = std::sync::mpsc::channel();
    let from_echo = std::io::BufReader::new(echo.stdout.take().unwrap());
    std::thread::spawn(move || from_echo.lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let bound = Duration::from_secs(20); // against a hang, not a speed limit
    writeln!(to_echo, "before").unwrap();
    assert_eq!(echoed.recv_timeout(bound).as_deref(), Ok("got before"));

    // h2, in the same pod, with a createRuntime hook that waits for us.
    let release = c.dir.path().join("release");
    let wait_for_release = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
    let spec_file = c.spec_with_create_hook("h1", "h2", &wait_for_release);
    let spec_arg = spec_file.to_str().unwrap();
    let slow_err = c.dir.path().join("h2.err");
    let mut slow = c
        .cmd(&["run", "-d", "--runtime", RUNTIME, "--config", spec_arg, "h2"])
        .stderr(std::fs::File::create(&slow_err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + bound;
    while pids_with_cmdline(|cmd| cmd.contains(&wait_for_release)).is_empty() {
        let failed = slow.try_wait().unwrap().is_some() || Instant::now() > deadline;
        assert!(
            !failed,
            "h2's hook never ran: {}",
            std::fs::read_to_string(&slow_err).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    writeln!(to_echo, "during").unwrap();
    let during = echoed.recv_timeout(bound);
    // Requests too: an exec in h1 (create, start, wait, delete) while h2's
    // create still waits for its hook.
    let (done, exec_done) = std::sync::mpsc::channel();
    let mut exec_in_h1 = c.cmd(&["task", "exec", "--exec-id", "while-hook", "h1", "echo", "served"]);
    std::thread::spawn(move || drop(done.send(exec_in_h1.output())));
    let served = exec_done.recv_timeout(bound);
    std::fs::write(&release, "").unwrap();
    let created = slow.wait().unwrap();
    drop(to_echo);
    let _ = echo.wait();
    assert_eq!(
        during.as_deref(),
        Ok("got during"),
        "the shim stalled while h2's hook ran"
    );
    let served = served.expect("an exec in h1 waited for h2's create hook").unwrap();
    assert_eq!(String::from_utf8_lossy(&served.stdout), "served\n", "{}", c.log());
    assert!(created.success(), "{}", c.log());
    for id in ["h1", "h2"] {
        c.kill_and_remove(id);
    }
    assert_clean(&c);
}

/// Options for a runtime that is not runc's reach the shim in containerd's
/// other option types (ctr's `--runtime-config-path`, `--no-pivot` on 1.x);
/// the shim starts and honours what applies.
#[test]
fn options_of_other_types_are_understood() {
    if !is_root() {
        return;
    }
    for (name, containerd, ctr) in versions() {
        let c = Containerd::start(&containerd, &ctr);
        let config = c.dir.path().join("runtime.toml");
        std::fs::write(&config, "").unwrap();
        let out = c.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            config.to_str().unwrap(),
            IMAGE,
            "opt1",
            "echo",
            "with-config-path",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "with-config-path\n",
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&c);
    }
}

/// containerd 2.x asks the shim binary `-info` (what `ctr plugins
/// inspect-runtime` shows, and what it checks before creating a container
/// that needs a feature): our name, and our runtime's features.
#[test]
fn containerd_2_reads_the_runtime_info() {
    if !is_root() {
        return;
    }
    for (name, containerd, ctr) in versions().into_iter().filter(|(n, ..)| n == "sid") {
        let c = Containerd::start(&containerd, &ctr);
        let out = c.ok(&["plugins", "inspect-runtime", "--runtime", SHIM]);
        let info: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}: {out}"));
        assert_eq!(info["Name"], "io.containerd.myshim.v2", "{name}: {out}");
        let options = info["Features"]["mountOptions"].as_array();
        assert!(options.is_some_and(|o| o.iter().any(|x| x == "rro")), "{name}: {out}");
        assert_clean(&c);
    }
}

/// The helper's worker killed in the middle of a create (in a hook) in a
/// pod's shim: the create fails, what the runtime had made of the container
/// (state, cgroup, init) goes with it, and the pod's other container is
/// served on.
#[test]
fn a_worker_killed_in_the_middle_of_a_create_leaves_nothing() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    c.run_detached(
        &["--annotation", "io.kubernetes.cri.sandbox-id=podw"],
        "w1",
        &["sleep", "1000"],
    );
    c.wait_task("w1", "RUNNING");
    let release = c.dir.path().join("never");
    let wait_forever = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
    let spec_file = c.spec_with_create_hook("w1", "w2", &wait_forever);
    let mut create = c
        .cmd(&[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--config",
            spec_file.to_str().unwrap(),
            "w2",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let hook = loop {
        if let Some(pid) = pids_with_cmdline(|cmd| cmd.contains(&wait_forever)).first() {
            break *pid;
        }
        assert!(
            Instant::now() < deadline && create.try_wait().unwrap().is_none(),
            "the hook never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stat = std::fs::read_to_string(format!("/proc/{hook}/stat")).unwrap();
    let worker: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        std::fs::read_to_string(format!("/proc/{worker}/cmdline"))
            .unwrap()
            .contains("containerd-shim-myshim-v2"),
        "the hook's parent {worker} is no worker of the shim"
    );
    // SAFETY: plain kills of processes this test made the shim start.
    unsafe {
        libc::kill(worker, libc::SIGKILL);
        libc::kill(hook, libc::SIGKILL);
    }
    let out = create.wait_with_output().unwrap();
    assert!(!out.status.success(), "the create went on without its worker");
    let _ = c.ctr(&["task", "delete", "-f", "w2"]);
    let _ = c.ctr(&["container", "rm", "w2"]);
    let state = Path::new("/run/containerd/myshim").join(&c.namespace).join("w2");
    assert!(!state.exists(), "runtime state of w2 left: {}", state.display());
    let cgroups: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(&c.namespace).join("w2"))
        .filter(|p| p.exists())
        .collect();
    assert!(cgroups.is_empty(), "cgroups of w2 left: {cgroups:?}");
    // w1 still served by the same shim.
    assert_eq!(
        c.ok(&["task", "exec", "--exec-id", "after", "w1", "echo", "ok"]),
        "ok\n"
    );
    c.kill_and_remove("w1");
    assert_clean(&c);
}

/// An exec whose process spec is larger than any fixed buffer reaches the
/// helper whole; and with the helper dead, the task can still be deleted
/// (the shim deletes in process) and nothing is left.
#[test]
fn big_requests_and_a_dead_helper() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    c.run_detached(&[], "bh", &["sleep", "1000"]);
    c.wait_task("bh", "RUNNING");
    // An argument of 100 000 bytes makes the exec's process spec that big.
    let big = "x".repeat(100_000);
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "big",
        "bh",
        "sh",
        "-c",
        "echo ${#1}",
        "sh",
        &big,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000", "{}", c.log());
    let helpers: Vec<i32> = c.shims().into_iter().filter(|p| !is_shim_server(*p)).collect();
    assert!(!helpers.is_empty(), "no fork helper found");
    for pid in helpers {
        // SAFETY: plain kill of the helper process this test's shim forked.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    c.kill_and_remove("bh");
    assert_clean(&c);
}

/// The serving shim, not its fork helper (whose parent is the shim).
fn is_shim_server(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ppid = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .unwrap_or("0");
    let parent = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    !String::from_utf8_lossy(&parent).contains("containerd-shim-myshim-v2")
}

#[test]
fn killed_shim_is_cleaned_up_by_delete() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    c.run_detached(&[], "k1", &["sleep", "1000"]);
    c.wait_task("k1", "RUNNING");
    let task_pid: i32 = c
        .ok(&["task", "ls"])
        .lines()
        .find(|l| l.starts_with("k1"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    for pid in c.shims().into_iter().filter(|p| is_shim_server(*p)) {
        // It may be gone already (a pod's second shim exits at once).
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    // containerd runs `shim delete`: the container is killed, its rootfs unmounted.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Path::new(&format!("/proc/{task_pid}/ns")).exists() && !is_zombie(task_pid) {
        assert!(Instant::now() < deadline, "the container survived its shim");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.ctr(&["task", "delete", "k1"]);
    c.ok(&["container", "rm", "k1"]);
    assert_clean(&c);
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

#[test]
fn binary_and_file_log_uris() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let d = c.dir.path();
    // A logging program as containerd specifies it: output on fds 3 and 4,
    // fd 5 closed when ready, query pairs as arguments.
    let logger = d.join("logger.sh");
    std::fs::write(
        &logger,
        "#!/bin/sh\n[ \"$1\" = dir ] || exit 1\nexec 5>&-\ncat <&3 > \"$2/out\" & cat <&4 > \"$2/err\" &\nwait\n",
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?dir={}", logger.display(), d.display());
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--log-uri",
        &uri,
        IMAGE,
        "bin",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(d.join("err")).unwrap_or_default() != "to-err\n" {
        assert!(Instant::now() < deadline, "logger never got stderr");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(d.join("out")).unwrap(), "to-out\n");
    let file = d.join("file.log");
    let uri = format!("file://{}", file.display());
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--log-uri",
        &uri,
        IMAGE,
        "file",
        "sh",
        "-c",
        "echo in-file",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "in-file\n");
    assert_clean(&c);
}

#[test]
fn exec_tty_and_detached_and_error_codes() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    c.run_detached(&[], "x", &["sleep", "1000"]);
    c.wait_task("x", "RUNNING");
    let out = c.in_pty("", "task exec -t --exec-id t1 x sh -c 'tty; exit 6'");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");
    // -d: the exec'd process runs on after ctr returns.
    c.ok(&["task", "exec", "-d", "--exec-id", "bg", "x", "sleep", "300"]);
    let ps = c.ok(&["task", "ps", "x"]);
    assert_eq!(ps.lines().count(), 3, "{ps}");
    // Starting a stopped task is refused; a deleted one is not found.
    c.ok(&["task", "kill", "-a", "-s", "KILL", "x"]);
    c.wait_task("x", "STOPPED");
    let start = c.ctr(&["task", "start", "x"]);
    assert!(!start.status.success());
    c.ok(&["task", "delete", "x"]);
    let kill = c.ctr(&["task", "kill", "x"]);
    assert!(
        String::from_utf8_lossy(&kill.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    c.ok(&["container", "rm", "x"]);
    assert_clean(&c);
}

#[test]
fn tasks_survive_a_containerd_restart() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let mut c = Containerd::start(&containerd, &ctr);
    c.run_detached(&[], "r1", &["sleep", "1000"]);
    c.wait_task("r1", "RUNNING");
    c.daemon.kill().unwrap();
    c.daemon.wait().unwrap();
    c.restart(&containerd);
    c.wait_task("r1", "RUNNING");
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "after",
        "r1",
        "sh",
        "-c",
        "echo still here",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
    c.kill_and_remove("r1");
    assert_clean(&c);
}

#[test]
fn metrics_pause_resume_and_oom() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let mut events = c.cmd(&["events"]).stdout(Stdio::piped()).spawn().unwrap();
    // Time for ctr to subscribe before the first event.
    std::thread::sleep(Duration::from_millis(1000));
    c.run_detached(&["--memory-limit", "33554432"], "m", &["sleep", "1000"]);
    c.wait_task("m", "RUNNING");
    let metrics = c.ok(&["task", "metrics", "m"]);
    let value = |name: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {metrics}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // ctr names the v1 and v2 metrics differently.
    let v2 = metrics.contains("memory.usage_limit");
    let (usage, limit) = if v2 {
        ("memory.usage ", "memory.usage_limit")
    } else {
        ("memory.usage_in_bytes", "memory.limit_in_bytes")
    };
    assert!(value(usage) > 0, "{metrics}");
    assert_eq!(value(limit), 33554432, "{metrics}");
    assert_eq!(value("pids.current"), 1, "{metrics}");
    c.ok(&["task", "pause", "m"]);
    c.wait_task("m", "PAUSED");
    c.ok(&["task", "resume", "m"]);
    c.wait_task("m", "RUNNING");
    c.kill_and_remove("m");
    // A memory hog under a small limit: TaskOOM, then its TaskExit.
    let hog = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived";
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        "16777216",
        IMAGE,
        "hog",
        "sh",
        "-c",
        hog,
    ]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let text = String::from_utf8_lossy(&events.wait_with_output().unwrap().stdout).into_owned();
    let topics = task_topics(&text, &c.namespace);
    let pos = |t: &str| {
        topics
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} missing: {text}"))
    };
    assert!(pos("/tasks/paused") < pos("/tasks/resumed"), "{text}");
    // One TaskOOM per kill (the hog's pipeline may lose several processes);
    // the last one comes right before the init's exit.
    pos("/tasks/oom");
    let last_oom = topics.iter().rposition(|x| *x == "/tasks/oom").unwrap();
    assert_eq!(
        topics[last_oom + 1],
        "/tasks/exit",
        "TaskOOM must come before the exit: {text}"
    );
    oom_of_a_child_is_reported_while_the_init_runs(&c);
    assert_clean(&c);
}

/// A child OOM-killed under a memory limit while the init lives on: TaskOOM
/// arrives when it happens, not at the init's exit.
fn oom_of_a_child_is_reported_while_the_init_runs(c: &Containerd) {
    let log = c.dir.path().join("oom-events.log");
    let mut events = c
        .cmd(&["events"])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // The child marks itself the OOM killer's first choice, so under load the
    // init is never picked instead.
    let child_hog = "(echo 1000 > /proc/self/oom_score_adj; x=$(head -c 100000000 /dev/zero | tr '\\0' a)); sleep 1000";
    c.run_detached(&["--memory-limit", "16777216"], "hog2", &["sh", "-c", child_hog]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().any(|l| l.contains("/tasks/oom") && l.contains("hog2")) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ls = c.ok(&["task", "ls"]);
    c.kill_and_remove("hog2");
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        seen,
        "no TaskOOM for hog2: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        ls.lines().any(|l| l.starts_with("hog2") && l.contains("RUNNING")),
        "the init should outlive its OOM-killed child: {ls}"
    );
}

#[test]
fn exit_while_containerd_is_down_is_seen_after_it_returns() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let mut c = Containerd::start(&containerd, &ctr);
    c.run_detached(&[], "gone", &["sh", "-c", "sleep 2; exit 3"]);
    c.wait_task("gone", "RUNNING");
    c.daemon.kill().unwrap();
    c.daemon.wait().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    c.restart(&containerd);
    c.wait_task("gone", "STOPPED");
    let out = c.ctr(&["task", "delete", "gone"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exit code 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.ok(&["container", "rm", "gone"]);
    assert_clean(&c);
}

/// An init that joined another pid namespace (here the host's) leaves its
/// children behind when it exits: the shim kills them before it reports
/// the exit, as containerd's Go shim does, so a stopped task has nothing
/// left running (a CRI pod sharing its pid namespace could never stop).
#[test]
fn init_exit_in_a_shared_pid_namespace_kills_what_it_left() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let marker = format!("{}", 3000 + std::process::id() % 1000);
    // Any process of ours names the host's pid namespace (pid 1's would
    // need capabilities the test may lack).
    let host_ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    c.run_detached(
        &["--with-ns", &host_ns],
        "shared",
        &["sh", "-c", &format!("sleep {marker} & sleep 0.5")],
    );
    c.wait_task("shared", "STOPPED");
    let sleeper = |c: &str| c.trim_end() == format!("sleep {marker}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_with_cmdline(sleeper).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the init's child outlived it: {:?}",
            pids_with_cmdline(sleeper)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.ok(&["task", "delete", "shared"]);
    c.ok(&["container", "rm", "shared"]);
    assert_clean(&c);
}

/// The key paths of a JSON document whose values are set (protobuf's JSON
/// leaves out zero fields), array elements under `[]`.
fn set_fields(v: &serde_json::Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| set_fields(v, &format!("{at}.{k}"), out)),
        serde_json::Value::Array(a) => a.iter().for_each(|v| set_fields(v, &format!("{at}[]"), out)),
        serde_json::Value::Null | serde_json::Value::Bool(false) => {}
        serde_json::Value::Number(n) if n.as_f64() == Some(0.0) => {}
        _ => {
            out.insert(at.to_string());
        }
    }
}

/// Docker, nerdctl and the CRI read the task's metrics as containerd's Go
/// shim fills them (Docker's stats limit, its cache-less usage, per-CPU
/// use, block I/O): ours fills the same fields for the same container.
#[test]
fn metrics_fill_what_the_go_shim_fills() {
    if !is_root() {
        return;
    }
    let (_, containerd, ctr) = versions().remove(0);
    let c = Containerd::start(&containerd, &ctr);
    let work = "dd if=/dev/zero of=/tmp/f bs=1M count=4 2>/dev/null; sync; exec sleep 1000";
    let metrics = |runtime: &str, id: &str| {
        c.ok(&[
            "run",
            "-d",
            "--runtime",
            runtime,
            "--memory-limit",
            "33554432",
            IMAGE,
            id,
            "sh",
            "-c",
            work,
        ]);
        c.wait_task(id, "RUNNING");
        std::thread::sleep(Duration::from_millis(500));
        let text = c.ok(&["task", "metrics", "--format", "json", id]);
        c.kill_and_remove(id);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let mut fields = std::collections::BTreeSet::new();
        set_fields(&v["Data"], "", &mut fields);
        (fields, v)
    };
    let (go, go_json) = metrics("io.containerd.runc.v2", "gom");
    let (ours, ours_json) = metrics(RUNTIME, "ourm");
    // Counters that one run may leave at zero and the next not.
    let volatile = [
        "pg_fault",
        "pg_maj_fault",
        "pg_pg_in",
        "pg_pg_out",
        "dirty",
        "writeback",
        "active_anon",
        "active_file",
        "inactive_anon",
        "unevictable",
        "mapped_file",
        "rss_huge",
        "cpu.usage.kernel",
        "cpu.usage.user",
    ];
    let steady = |path: &&String| !volatile.iter().any(|v| path.replace("total_", "").ends_with(v));
    let missing: Vec<&String> = go.difference(&ours).filter(steady).collect();
    assert!(
        missing.is_empty(),
        "not filled: {missing:?}\nGo shim: {go_json}\nours: {ours_json}"
    );
}

/// containerd killed while 20 tasks run, 5 of them killed while it is down
/// for longer than any retry of old: once it is back every one of those
/// exits reaches it as a TaskExit, the shims of the exited tasks go once
/// they are deleted, and the others serve on (a publish after the restart
/// works on a fresh connection).
#[test]
fn exits_while_containerd_is_down_reach_it_when_it_is_back() {
    if !is_root() {
        return;
    }
    // 1.6 and 2.x (which deletes at boot the tasks whose shim has no
    // process left, and sends a TaskExit of its own for them).
    for (name, containerd, ctr) in versions().into_iter().filter(|(n, ..)| n != "trixie") {
        // Forwarded events are logged at trace level (2.x) or debug (1.x).
        let mut c = Containerd::start_with(&containerd, &ctr, "[debug]\n  level = \"trace\"\n");
        let ids: Vec<String> = (0..20).map(|i| format!("down{i}")).collect();
        for id in &ids {
            c.run_detached(&[], id, &["sleep", "1000"]);
        }
        for id in &ids {
            c.wait_task(id, "RUNNING");
        }
        let ls = c.ok(&["task", "ls"]);
        let pid_of = |id: &str| -> i32 {
            let line = ls.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let killed: Vec<&String> = ids.iter().take(5).collect();
        let pids: Vec<i32> = killed.iter().map(|id| pid_of(id)).collect();
        c.daemon.kill().unwrap();
        c.daemon.wait().unwrap();
        for pid in pids {
            // SAFETY: plain kill of a container init the test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_secs(30));
        let log_before = c.log().len();
        c.restart(&containerd);
        let exits_forwarded = |c: &Containerd| -> usize {
            c.log()[log_before..]
                .lines()
                .filter(|l| l.contains("event forwarded") && l.contains("/tasks/exit") && l.contains(&c.namespace))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while exits_forwarded(&c) < killed.len() {
            assert!(
                Instant::now() < deadline,
                "{name}: {} of {} exits reached the restarted containerd\n{}",
                exits_forwarded(&c),
                killed.len(),
                c.log()[log_before..]
                    .lines()
                    .filter(|l| ["forward", "shim", "exit", "delet", "cleanup"]
                        .iter()
                        .any(|w| l.contains(w)))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // A task killed now: its exit goes out on a new connection.
        let before = exits_forwarded(&c);
        c.ok(&["task", "kill", "-s", "KILL", &ids[5]]);
        c.wait_task(&ids[5], "STOPPED");
        let deadline = Instant::now() + Duration::from_secs(20);
        while exits_forwarded(&c) == before {
            assert!(Instant::now() < deadline, "{name}: no TaskExit after the restart");
            std::thread::sleep(Duration::from_millis(50));
        }
        for id in &ids {
            // containerd 2.x deletes dead tasks at boot; 1.x keeps them stopped.
            let _ = c.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = c.ctr(&["task", "delete", "-f", id]);
            c.ok(&["container", "rm", id]);
        }
        assert_clean(&c);
    }
}

/// containerd's Go runc shim driving our CLI (`ctr run --runc-binary`, what
/// Docker's `path` and the CRI's `BinaryName` do). It takes a kill error for
/// "already finished" only in runc's words, so a kill of a stopped task and
/// `task rm -f` work only when our CLI uses them.
#[test]
fn go_runc_shim_drives_our_cli() {
    if !is_root() {
        return;
    }
    let myshim = Path::new(SHIM).with_file_name("myshim");
    assert!(myshim.exists(), "{} missing: cargo build --workspace", myshim.display());
    let myshim = myshim.display().to_string();
    for (name, containerd, ctr) in versions() {
        let c = Containerd::start(&containerd, &ctr);
        let run = |id: &str, cmd: &[&str]| {
            let mut args = vec![
                "run",
                "-d",
                "--runtime",
                "io.containerd.runc.v2",
                "--runc-binary",
                &myshim,
                IMAGE,
                id,
            ];
            args.extend(cmd);
            c.ok(&args);
            c.wait_task(id, "RUNNING");
        };
        run("gs1", &["sleep", "1000"]);
        let out = c.ok(&["task", "exec", "--exec-id", "e1", "gs1", "echo", "in exec"]);
        assert_eq!(out, "in exec\n", "{name}");
        c.ok(&["task", "pause", "gs1"]);
        c.wait_task("gs1", "PAUSED");
        c.ok(&["task", "resume", "gs1"]);
        c.wait_task("gs1", "RUNNING");
        assert!(!c.ok(&["task", "metrics", "gs1"]).is_empty(), "{name}");
        c.ok(&["task", "kill", "-s", "KILL", "gs1"]);
        c.wait_task("gs1", "STOPPED");
        let again = c.ctr(&["task", "kill", "-s", "KILL", "gs1"]);
        let e = String::from_utf8_lossy(&again.stderr);
        assert!(
            e.contains("process already finished"),
            "{name}: kill of a stopped task: {e}"
        );
        c.ok(&["task", "rm", "-f", "gs1"]);
        c.ok(&["container", "rm", "gs1"]);
        // `task rm -f` of a running task kills it first.
        run("gs2", &["sleep", "1000"]);
        c.ok(&["task", "rm", "-f", "gs2"]);
        c.ok(&["container", "rm", "gs2"]);
        let state = Path::new("/run/containerd/runc").join(&c.namespace);
        let left: Vec<_> = std::fs::read_dir(&state)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{name}: runtime state left: {left:?}");
        assert_clean(&c);
    }
}
