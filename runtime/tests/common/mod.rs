//! Shared set-up for the integration tests: busybox bundles, a private
//! `--root`, and a guard that removes every container a test made, pass or fail.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const MYSHIM: &str = env!("CARGO_BIN_EXE_myshim");

/// Integration tests need root; without it they say so and pass vacuously.
pub fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: integration tests need root");
    }
    root
}

/// A fresh busybox rootfs with relative applet symlinks.
pub fn make_rootfs(rootfs: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "/bin/busybox missing: apt-get install busybox-static");
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "etc", "tmp", "root",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list-full").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "bin/busybox" {
            continue;
        }
        let path = rootfs.join(applet);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let depth = Path::new(applet).components().count() - 1;
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let _ = std::os::unix::fs::symlink(target, &path);
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// A temp dir with `root/` (state), and bundles under it.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// The myshim binary the commands run.
    pub bin: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("myshim-test").tempdir().unwrap();
        Env {
            dir,
            bin: PathBuf::from(MYSHIM),
            ids: Default::default(),
        }
    }

    /// Runs a copy of myshim in the temp dir: for tests that attack the
    /// runtime binary, so that a successful attack cannot spoil the build.
    pub fn with_own_binary() -> Env {
        let mut env = Env::new();
        env.bin = env.dir.path().join("myshim");
        std::fs::copy(MYSHIM, &env.bin).unwrap();
        env
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A bundle with runc's default config, terminal off, and `args`.
    pub fn bundle(&self, name: &str, args: &[&str]) -> Bundle {
        let path = self.dir.path().join(name);
        make_rootfs(&path.join("rootfs"));
        let out = Command::new(MYSHIM).arg("spec").arg("-b").arg(&path).output().unwrap();
        assert!(out.status.success(), "spec: {}", String::from_utf8_lossy(&out.stderr));
        let mut b = Bundle { path };
        b.edit(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(args);
        });
        b
    }

    /// `myshim --root ROOT args...`; every id it may create is remembered.
    pub fn cmd(&self, args: &[&str]) -> Command {
        // `create`/`run [options] <id>`: options take values (-b BUNDLE), so
        // the id is the last argument, not the first one without a dash.
        if args.iter().any(|a| ["create", "run"].contains(a)) {
            if let Some(id) = args.last().filter(|a| !a.starts_with('-')) {
                self.ids.borrow_mut().push(id.to_string());
            }
        }
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs to completion. stdout/stderr go through files, not pipes: a
    /// container left running (create, run -d) inherits them and would keep
    /// a pipe open.
    pub fn run(&self, args: &[&str]) -> Output {
        output_via_files(&mut self.cmd(args))
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "myshim {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and insists on failure; returns the message of the one error
    /// line on stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "myshim {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        error_message(&String::from_utf8_lossy(&out.stderr))
    }

    pub fn status(&self, id: &str) -> String {
        let out = self.run(&["state", id]);
        if !out.status.success() {
            return "absent".into();
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    pub fn pid(&self, id: &str) -> i32 {
        let v: Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }

    /// Waits (bounded) until `id` has `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(id) != status {
            assert!(
                Instant::now() < deadline,
                "{id} never became {status} (is {})",
                self.status(id)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Nothing of `id` is left: no state dir, no process, no mount.
    pub fn assert_gone(&self, id: &str, bundle: &Bundle) {
        assert!(!self.root().join(id).exists(), "state dir of {id} left behind");
        assert_no_leftovers(&bundle.path);
    }
}

/// The message of runc's fatal-error line on a stderr that is not a
/// terminal (`time="..." level=error msg="..."`), checked to be the one line
/// there; quotes and backslashes unescaped.
pub fn error_message(stderr: &str) -> String {
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "error should be one line: {stderr:?}");
    let quoted = line
        .split_once(" level=error msg=\"")
        .filter(|(time, _)| time.starts_with("time=\""))
        .and_then(|(_, rest)| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not runc's error line: {stderr:?}"));
    let mut msg = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            msg.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => msg.push('\n'),
            Some('t') => msg.push('\t'),
            Some(other) => msg.push(other),
            None => {}
        }
    }
    msg
}

/// No host mount and no process refers to the bundle.
pub fn assert_no_leftovers(bundle: &Path) {
    let bundle = bundle.to_string_lossy();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*bundle), "a mount under {bundle} is left on the host");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let users = processes_under(&bundle);
        if users.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left with root under {bundle}: {users:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn processes_under(bundle: &str) -> Vec<i32> {
    let mut pids = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')) {
            continue;
        }
        let in_bundle = |link: &str| {
            std::fs::read_link(format!("/proc/{pid}/{link}")).is_ok_and(|p| p.to_string_lossy().starts_with(bundle))
        };
        // A half-made init still carries myshim's command line, bundle included.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let in_cmdline = String::from_utf8_lossy(&cmdline).contains(bundle);
        if in_bundle("root") || in_bundle("cwd") || in_cmdline {
            pids.push(pid);
        }
    }
    pids
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = Command::new(&self.bin)
                .arg("--root")
                .arg(self.root())
                .args(["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub struct Bundle {
    pub path: PathBuf,
}

impl Bundle {
    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path.join("config.json")).unwrap()).unwrap()
    }

    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(self.path.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }
}

/// `myshim run` of a bundle, returning (exit code, stdout, stderr).
pub fn run_output(env: &Env, bundle: &Bundle, id: &str) -> (i32, String, String) {
    let out = env.run(&["run", "-b", bundle.arg(), id]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a container whose args are `sh -c script` and returns its stdout,
/// asserting success; `edit` adjusts the config first.
pub fn sh_in(env: &Env, name: &str, script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut b = env.bundle(name, &["sh", "-c", script]);
    b.edit(edit);
    let (code, stdout, stderr) = run_output(env, &b, name);
    assert_eq!(code, 0, "container {name} failed: {stderr}\nstdout: {stdout}");
    env.assert_gone(name, &b);
    stdout
}

/// Reads from `f` until `needle` has appeared (bounded), returning all read.
pub fn read_until(f: &mut std::fs::File, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "never saw {needle:?} in {seen:?}");
        match std::io::Read::read(f, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

/// Makes `fd` appear as `target` in the command's process, without
/// close-on-exec (dup2 onto itself would keep the flag: clear it explicitly).
pub fn dup_into(cmd: &mut Command, fd: std::os::fd::RawFd, target: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl between fork and exec are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, target) < 0 || libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `cmd` to completion with stdout/stderr in files, not pipes: a
/// container left running (create, run -d) inherits them and would keep a
/// pipe open.
pub fn output_via_files(cmd: &mut Command) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = vec![];
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Accepts one message on `conn` with an fd attached (SCM_RIGHTS): returns
/// the bytes and the fd.
pub fn recv_with_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::RawFd) {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (len, fd) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let flags = nix::sys::socket::MsgFlags::empty();
        let msg = nix::sys::socket::recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), flags).unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("no fd in the message");
        (msg.bytes, fd)
    };
    buf.truncate(len);
    (buf, fd)
}

/// Removes a cgroup of the test's and those below it, deepest first,
/// killing whatever a failed test left in them.
pub fn remove_cgroup_tree(dir: &Path) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&sub.path());
        }
    }
    for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
    {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}
