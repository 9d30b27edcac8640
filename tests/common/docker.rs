//! A private dockerd for the Docker tests: its own config, data-root,
//! exec-root, socket and managed containerd in a temp dir, our shim and our
//! CLI as runtimes, the busybox image loaded offline. Dropping it removes
//! every container, stops dockerd and its containerd by pid, kills what is
//! left of their shims and containers, and unmounts what they left behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-myshim-v2");
pub const IMAGE: &str = "docker.io/library/busybox:myshim";
/// The daemon.json runtime names: our shim, and the Go shim driving our CLI.
pub const RT_SHIM: &str = "myshim";
pub const RT_CLI: &str = "myshim-cli";
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: [&str; 2] = ["/usr/sbin/dockerd", "/usr/bin/dockerd"];
/// Bound on one docker command: a hung shim fails the test instead of hanging it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `myshim` CLI beside the shim (built by `cargo test --workspace` or
/// `cargo build --workspace`).
pub fn cli() -> PathBuf {
    Path::new(SHIM).with_file_name("myshim")
}

pub struct Out {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{}: {s}", self.what)?,
            None => write!(f, "{}: timed out after {COMMAND_TIMEOUT:?}", self.what)?,
        }
        write!(f, "\nstdout: {}\nstderr: {}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with `input` on stdin, bounded by COMMAND_TIMEOUT (then killed).
pub fn run(mut cmd: Command, input: Option<&[u8]>) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = vec![];
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        what,
    }
}

pub struct Dockerd {
    dir: tempfile::TempDir,
    daemon: Mutex<Child>,
    /// The parent cgroup of every container (daemon.json "cgroup-parent").
    pub cgroup_parent: String,
    /// Whether /run/docker existed before (dockerd makes /run/docker/plugins).
    had_run_docker: bool,
}

static SHARED: Mutex<Weak<Dockerd>> = Mutex::new(Weak::new());

/// Why the Docker tests cannot run here (not root, no Docker), if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("Docker tests need root".into());
    }
    if dockerd().is_none() || !Path::new(DOCKER).exists() {
        return Some(format!(
            "no dockerd in {DOCKERD:?} or no {DOCKER} (contrib/install-engines.sh)"
        ));
    }
    // Not a skip: a missing CLI is a broken build, as in tests/shim.rs.
    assert!(
        cli().exists(),
        "{} missing: cargo build --workspace (cargo test --test docker builds only the shim)",
        cli().display()
    );
    None
}

fn dockerd() -> Option<&'static str> {
    DOCKERD.into_iter().find(|p| Path::new(p).exists())
}

/// The daemon shared by the tests running now; started by the first of
/// them, stopped when the last one lets go.
pub fn shared() -> Arc<Dockerd> {
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = slot.upgrade() {
        return d;
    }
    let d = Arc::new(Dockerd::start());
    *slot = Arc::downgrade(&d);
    d
}

impl Dockerd {
    /// A daemon of the caller's own (not shared).
    pub fn start() -> Dockerd {
        Dockerd::start_with(serde_json::json!({}))
    }

    /// A daemon of the caller's own, with `extra` daemon.json keys.
    pub fn start_with(extra: serde_json::Value) -> Dockerd {
        let dir = tempfile::Builder::new().prefix("myshim-docker").tempdir().unwrap();
        let d = dir.path();
        let suffix = d.file_name().unwrap().to_string_lossy().replace('.', "");
        let cgroup_parent = format!("/{suffix}");
        let mut config = serde_json::json!({
            "data-root": d.join("data"),
            "exec-root": d.join("exec"),
            "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", d.join("docker.sock").display())],
            "iptables": false,
            "ip6tables": false,
            "bridge": "none",
            "cgroup-parent": cgroup_parent,
            "runtimes": {
                RT_SHIM: {"runtimeType": SHIM},
                RT_CLI: {"path": cli()},
            },
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        std::fs::write(d.join("daemon.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let had_run_docker = Path::new("/run/docker").exists();
        let daemon = spawn_dockerd(d);
        let dockerd = Dockerd {
            dir,
            daemon: Mutex::new(daemon),
            cgroup_parent,
            had_run_docker,
        };
        dockerd.wait_up();
        dockerd.load_image();
        dockerd
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).success() {
            let exited = self.daemon.lock().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "dockerd exited: {:?}\n{}", exited, self.log());
            assert!(Instant::now() < deadline, "dockerd did not come up:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops dockerd and starts it again on the same config and state.
    pub fn restart_daemon(&self) {
        assert!(self.stop_daemon(), "dockerd needed SIGKILL:\n{}", self.log());
        *self.daemon.lock().unwrap() = spawn_dockerd(self.dir.path());
        self.wait_up();
    }

    fn load_image(&self) {
        let (bundle, tar) = (self.path("image"), self.path("image.tar"));
        let mut c = Command::new(repo().join("contrib/make-bundle.sh"));
        c.arg(&bundle);
        let out = run(c, None);
        assert!(out.success(), "{out}");
        let mut c = Command::new(repo().join("contrib/make-image.sh"));
        c.arg(bundle.join("rootfs")).arg(IMAGE).arg(&tar);
        let out = run(c, None);
        assert!(out.success(), "{out}");
        self.ok(&["load", "-i", tar.to_str().unwrap()]);
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default();
        // The tail is what explains a failure.
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn socket(&self) -> String {
        format!("unix://{}", self.path("docker.sock").display())
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        // Our own client config: nothing read from or written to ~/.docker.
        c.env("DOCKER_CONFIG", self.path("client"))
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(self.socket())
            .args(args);
        c
    }

    pub fn docker(&self, args: &[&str]) -> Out {
        run(self.cmd(args), None)
    }

    pub fn docker_input(&self, args: &[&str], input: &[u8]) -> Out {
        run(self.cmd(args), Some(input))
    }

    /// `docker ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.success(), "{out}\ndockerd log:\n{}", self.log());
        out.stdout
    }

    /// `docker inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    /// Waits (bounded) until `docker inspect -f FORMAT NAME` gives `want`.
    pub fn wait_inspect(&self, name: &str, format: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.inspect(name, format);
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "{name}: {format} is {got:?}, never {want:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The containerd socket of this dockerd: every shim it starts names it.
    pub fn containerd_socket(&self) -> String {
        self.path("exec/containerd/containerd.sock").display().to_string()
    }

    /// Live processes of shims serving this dockerd's containerd (with
    /// `id` in their command line, if given).
    pub fn shims(&self, id: Option<&str>) -> Vec<i32> {
        let sock = self.containerd_socket();
        pids_where(|cmdline| {
            cmdline.contains("containerd-shim") && cmdline.contains(&sock) && id.is_none_or(|id| cmdline.contains(id))
        })
    }

    /// This dockerd's cgroup parent in each hierarchy that has it.
    fn cgroup_parents(&self) -> Vec<PathBuf> {
        let rel = self.cgroup_parent.trim_start_matches('/');
        let mut out = vec![];
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            out.push(Path::new("/sys/fs/cgroup").join(rel));
        } else {
            for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                out.push(h.path().join(rel));
            }
        }
        out.retain(|p| p.is_dir());
        out
    }

    /// SIGTERM to dockerd, SIGKILL if it has not exited within 60 s;
    /// false if it needed the SIGKILL.
    pub fn stop_daemon(&self) -> bool {
        let mut daemon = self.daemon.lock().unwrap_or_else(|e| e.into_inner());
        if daemon.try_wait().ok().flatten().is_some() {
            return true;
        }
        let pid = Pid::from_raw(daemon.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while daemon.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = daemon.kill();
                let _ = daemon.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// The managed containerd's pid, while it runs.
    pub fn containerd_pid(&self) -> Option<i32> {
        let pid = std::fs::read_to_string(self.path("exec/containerd/containerd.pid"))
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(&self.dir.path().display().to_string())
            .then_some(pid)
    }

    /// Processes in this daemon's containers' cgroups.
    pub fn container_procs(&self) -> Vec<i32> {
        self.cgroup_parents().iter().flat_map(|p| procs_below(p)).collect()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first (their shims unmount and exit), then the daemon.
        let ids = self.docker(&["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        self.stop_daemon();
        // dockerd stops its containerd; if it did not, we stop it by its pid.
        if let Some(pid) = self.containerd_pid() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for pid in self.shims(None) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Container processes a killed shim left behind: only those in our cgroups.
        for pid in self.container_procs() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(200));
        // overlay, netns and shm mounts under data-root and exec-root, deepest first.
        let dir = format!("{}/", self.dir.path().display());
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
        }
        for parent in self.cgroup_parents() {
            remove_cgroup_tree(&parent);
        }
        // Shared directories, only once empty (other daemons may use them).
        for d in [
            "/run/containerd/myshim/moby",
            "/run/containerd/myshim",
            "/run/containerd/s",
            "/run/containerd",
        ] {
            let _ = std::fs::remove_dir(d);
        }
        if !self.had_run_docker {
            let _ = std::fs::remove_dir("/run/docker/plugins");
            let _ = std::fs::remove_dir("/run/docker");
        }
    }
}

/// dockerd on `d/daemon.json`, its output appended to d/dockerd.log.
fn spawn_dockerd(d: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("dockerd.log"))
        .unwrap();
    // dockerd finds containerd, docker-init and docker-proxy on its PATH.
    let path = format!(
        "/usr/sbin:/usr/bin:/sbin:/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(dockerd().unwrap())
        .arg("--config-file")
        .arg(d.join("daemon.json"))
        .env("PATH", path)
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Every pid in the cgroup `dir` and its descendants.
fn procs_below(dir: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(procs_below(&e.path()));
        }
    }
    out
}

/// rmdir of a cgroup and its descendants, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Live (not zombie) processes whose command line satisfies `pred`.
pub fn pids_where(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_none_or(|r| r.trim_start().starts_with('Z')) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if pred(&String::from_utf8_lossy(&cmdline).replace('\0', " ")) {
            out.push(pid);
        }
    }
    out
}

/// A container by name, removed (`docker rm -f`) when dropped.
pub struct Container<'a> {
    pub d: &'a Dockerd,
    pub name: String,
}

impl<'a> Container<'a> {
    /// `docker run -d --name NAME --runtime RT --network none OPTIONS IMAGE CMD`.
    pub fn run(d: &'a Dockerd, name: &str, rt: &str, options: &[&str], cmd: &[&str]) -> Container<'a> {
        let c = Container::named(d, name);
        let mut args = vec!["run", "-d", "--name", name, "--runtime", rt, "--network", "none"];
        args.extend(options);
        args.push(IMAGE);
        args.extend(cmd);
        d.ok(&args);
        c
    }

    /// A name to be used by the caller's own `docker run`; removed on drop.
    pub fn named(d: &'a Dockerd, name: &str) -> Container<'a> {
        let _ = d.docker(&["rm", "-f", name]);
        Container {
            d,
            name: name.to_string(),
        }
    }

    /// `docker exec NAME CMD`, which must succeed; its stdout.
    pub fn exec(&self, cmd: &[&str]) -> String {
        self.exec_with(&[], cmd)
    }

    /// `docker exec OPTIONS NAME CMD`, which must succeed; its stdout.
    pub fn exec_with(&self, options: &[&str], cmd: &[&str]) -> String {
        let mut a = vec!["exec"];
        a.extend(options);
        a.push(&self.name);
        a.extend(cmd);
        self.d.ok(&a)
    }

    /// `sh -c SCRIPT` inside, which must succeed; its stdout trimmed.
    pub fn sh(&self, script: &str) -> String {
        self.exec(&["sh", "-c", script]).trim().to_string()
    }

    pub fn id(&self) -> String {
        self.d.inspect(&self.name, "{{.Id}}")
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.d.docker(&["rm", "-f", &self.name]);
    }
}
