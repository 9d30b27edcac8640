//! The CRI (Kubernetes' runtime API) through containerd 1.7 and 2.x (and
//! Debian's 1.6), driven by contrib/cri/cri.py, with two runtime handlers:
//! `myshim` (our shim) and `myshim-cli` (containerd's Go runc shim with our
//! CLI as its BinaryName); runc as the reference in a few.
//! Each test starts its own containerd with its root, state, sockets, CNI
//! dir and pod logs in a temp dir, imports the images offline into the
//! `k8s.io` namespace, runs pods on the host network (no CNI) under a cgroup
//! parent of its own, and removes everything it made, pass or fail.

#[allow(dead_code)]
#[path = "common/ctr.rs"]
mod ctr;

use ctr::{build_image, repo, Ctr, IMAGE};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-myshim-v2");
/// The sandbox (pause) image: the same busybox whose default command sleeps.
const PAUSE_IMAGE: &str = "docker.io/library/busybox:myshim-pause";
/// Debian's python3, the one python3-grpcio and python3-protobuf are for.
const PYTHON: &str = "/usr/bin/python3";
const MIB: u64 = 1024 * 1024;

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: CRI tests need root");
    }
    root
}

/// The bin dir of containerd `version`: Debian's installed 1.6, or the builds
/// of contrib/fetch-containerd.sh, 1.7 (trixie) and 2.x (sid).
fn containerd_bin(version: &str) -> Option<PathBuf> {
    let bin = match version {
        "1.6" => PathBuf::from("/usr/bin"),
        "1.7" => PathBuf::from("/var/cache/myshim/containerd/trixie/usr/bin"),
        _ => PathBuf::from("/var/cache/myshim/containerd/sid/usr/bin"),
    };
    if !bin.join("containerd").exists() {
        eprintln!(
            "skipped: no containerd {version} at {} (contrib/install-deps.sh, contrib/fetch-containerd.sh)",
            bin.display()
        );
        return None;
    }
    Some(bin)
}

/// containerd's config: contrib/cri/containerd-VERSION.toml (the CRI with
/// handlers runc, myshim and myshim-cli) for a containerd in `d`.
fn config(version: &str, d: &Path, myshim_cli: &Path) -> String {
    // 1.6 reads 1.7's config (version 2).
    let name = if version.starts_with("1.") { "1.7" } else { "2.x" };
    let template = std::fs::read_to_string(repo().join(format!("contrib/cri/containerd-{name}.toml"))).unwrap();
    template
        .replace("@DIR@", &d.display().to_string())
        .replace("@MYSHIM@", &myshim_cli.display().to_string())
        .replace("@SANDBOX_IMAGE@", PAUSE_IMAGE)
}

/// A private containerd with the CRI, and the pods of one test.
struct Cri {
    dir: tempfile::TempDir,
    daemon: Child,
    bin: PathBuf,
    /// The pods' cgroup parent (cgroupfs driver), unique to the test.
    cgroup_parent: String,
    /// Sandbox and container ids, for their runtime state on cleanup.
    ids: RefCell<Vec<String>>,
}

impl Ctr for Cri {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("ctr"));
        c.arg("-a").arg(self.sock()).args(["-n", "k8s.io"]).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        // The end is what matters; the whole log drowns the failure.
        let noise = ["loading plugin", "cri plugin with config", "starting cri plugin"];
        let lines: Vec<&str> = log.lines().filter(|l| !noise.iter().any(|n| l.contains(n))).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Cri {
    /// containerd `version` ("1.7", "2.1") with the CRI; None when skipped.
    fn start(version: &str) -> Option<Cri> {
        if !is_root() {
            return None;
        }
        let bin = containerd_bin(version)?;
        let myshim = Path::new(SHIM).with_file_name("myshim");
        assert!(myshim.exists(), "{} missing: cargo build --workspace", myshim.display());
        let dir = tempfile::Builder::new().prefix("myshim-cri").tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("cni")).unwrap();
        std::fs::write(d.join("config.toml"), config(version, d, &myshim)).unwrap();
        let daemon = spawn_containerd(&bin, d);
        let name = d.file_name().unwrap().to_string_lossy().replace(['.', '_'], "-");
        let c = Cri {
            cgroup_parent: format!("/{name}"),
            dir,
            daemon,
            bin,
            ids: RefCell::new(vec![]),
        };
        c.wait_ready();
        c.import_images();
        Some(c)
    }

    fn wait_ready(&self) {
        // Bounded for a hang, generous for an emulated VM (cgroup v2 runs).
        let deadline = Instant::now() + Duration::from_secs(120);
        while let Err(e) = self.call("Version", json!({})) {
            assert!(
                Instant::now() < deadline,
                "containerd's CRI did not come up: {e}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// containerd stopped (SIGTERM, as a service manager does) and started
    /// again on the same state; the shims keep running meanwhile.
    fn restart(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.daemon.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.daemon.wait().unwrap();
        self.daemon = spawn_containerd(&self.bin, self.dir.path());
        self.wait_ready();
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    /// The workload image, and the same rootfs as the pause image (its
    /// command a long sleep: the sandbox's process must stay up).
    fn import_images(&self) {
        let d = self.dir.path();
        let tar = build_image(d);
        let pause = d.join("pause.tar");
        let out = Command::new(PYTHON)
            .arg(repo().join("contrib/cri/cri.py"))
            .arg("image-cmd")
            .args([&tar, &pause])
            .args([PAUSE_IMAGE, "sleep", "2147483647"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for t in [&tar, &pause] {
            self.ok(&["images", "import", t.to_str().unwrap()]);
        }
    }

    fn cri_py(&self, timeout: u32) -> Command {
        let mut c = Command::new(PYTHON);
        c.arg(repo().join("contrib/cri/cri.py"))
            .arg("-a")
            .arg(self.sock())
            .args(["--timeout", &timeout.to_string()])
            .stdin(Stdio::null());
        c
    }

    /// One CRI call; the reply, or the gRPC error as "CODE: details".
    fn call_timeout(&self, method: &str, request: Value, timeout: u32) -> Result<Value, String> {
        let out = self
            .cri_py(timeout)
            .args(["call", method, &request.to_string()])
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn call(&self, method: &str, request: Value) -> Result<Value, String> {
        self.call_timeout(method, request, 60)
    }

    fn cri(&self, method: &str, request: Value) -> Value {
        self.call(method, request.clone())
            .unwrap_or_else(|e| panic!("{method} {request}: {e}\n{}", self.log()))
    }

    fn pod_config(&self, name: &str, pid_mode: &str) -> Value {
        let logs = self.dir.path().join("logs").join(name);
        json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "namespace": "default"},
            "log_directory": logs,
            "linux": {
                "cgroup_parent": self.cgroup_parent,
                "security_context": {"namespace_options": {"network": "NODE", "pid": pid_mode}},
            },
        })
    }

    /// RunPodSandbox with `handler`; the pod id and its config.
    fn run_pod(&self, name: &str, handler: &str, pid_mode: &str) -> (String, Value) {
        let config = self.pod_config(name, pid_mode);
        let r = self.cri("RunPodSandbox", json!({"config": config, "runtime_handler": handler}));
        let id = r["pod_sandbox_id"].as_str().unwrap().to_string();
        self.ids.borrow_mut().push(id.clone());
        (id, config)
    }

    /// CreateContainer + StartContainer of IMAGE running `sh -c script`,
    /// its log at log_directory/NAME.log; memory limit in MiB if not 0.
    fn start_container(&self, pod: &(String, Value), name: &str, script: &str, memory_mib: u64) -> String {
        let pid_mode = &pod.1["linux"]["security_context"]["namespace_options"]["pid"];
        let mut config = json!({
            "metadata": {"name": name},
            "image": {"image": IMAGE},
            "command": ["sh", "-c", script],
            "log_path": format!("{name}.log"),
            "linux": {"security_context": {"namespace_options": {"network": "NODE", "pid": pid_mode}}},
        });
        if memory_mib > 0 {
            config["linux"]["resources"] = json!({"memory_limit_in_bytes": memory_mib * MIB});
        }
        let r = self.cri(
            "CreateContainer",
            json!({"pod_sandbox_id": pod.0, "config": config, "sandbox_config": pod.1}),
        );
        let id = r["container_id"].as_str().unwrap().to_string();
        self.ids.borrow_mut().push(id.clone());
        self.cri("StartContainer", json!({"container_id": id}));
        id
    }

    /// ExecSync: (stdout, stderr, exit code).
    fn exec(&self, id: &str, cmd: &[&str]) -> (String, String, i64) {
        let r = self.cri("ExecSync", json!({"container_id": id, "cmd": cmd, "timeout": 30}));
        let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        (text("stdout"), text("stderr"), r["exit_code"].as_i64().unwrap_or(0))
    }

    /// A memory cgroup file of the container, read from inside.
    fn read_inside(&self, id: &str, file: &str) -> String {
        let (out, err, code) = self.exec(id, &["cat", &format!("/sys/fs/cgroup/memory/{file}")]);
        assert_eq!(code, 0, "cat {file} inside: {err}");
        out.trim().to_string()
    }

    fn status(&self, id: &str) -> Value {
        self.cri("ContainerStatus", json!({"container_id": id}))["status"].clone()
    }

    /// The CRI log file of container `name` of pod `pod`: (stream, tag, text)
    /// per line, each line checked to be in the CRI format
    /// (`RFC3339NANO STREAM TAG TEXT`).
    fn log_lines(&self, pod: &str, name: &str) -> Vec<(String, String, String)> {
        let path = self.dir.path().join("logs").join(pod).join(format!("{name}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                assert!(
                    f.len() == 4 && f[0].contains('T') && f[0].ends_with('Z') && ["stdout", "stderr"].contains(&f[1]),
                    "not a CRI log line in {}: {l:?}",
                    path.display()
                );
                (f[1].to_string(), f[2].to_string(), f[3].to_string())
            })
            .collect()
    }

    /// Waits (bounded) for `text` as a full stdout line of the log.
    fn wait_log(&self, pod: &str, name: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.log_lines(pod, name);
            if lines.iter().any(|(s, t, l)| s == "stdout" && t == "F" && l == text) {
                return;
            }
            assert!(Instant::now() < deadline, "no {text:?} in the log of {name}: {lines:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Our shim's serving processes for this containerd (not their fork helpers).
    fn myshim_servers(&self) -> Vec<i32> {
        let sock = self.sock().display().to_string();
        let all = pids_with_cmdline(|c| c.starts_with(SHIM) && c.contains(&sock));
        all.iter().copied().filter(|p| !all.contains(&ppid(*p))).collect()
    }

    /// containerd's Go runc shims for this containerd.
    fn go_shims(&self) -> Vec<i32> {
        let sock = self.sock().display().to_string();
        pids_with_cmdline(|c| {
            c.split(' ')
                .next()
                .is_some_and(|a| a.ends_with("/containerd-shim-runc-v2"))
                && c.contains(&sock)
        })
    }

    /// Nothing of the test's pods is left: no pod, container or task, no
    /// shim, no mount under the temp dir, no cgroup, no runtime state.
    fn assert_clean(&self) {
        let pods = self.cri("ListPodSandbox", json!({}));
        assert!(
            pods["items"].as_array().is_none_or(|a| a.is_empty()),
            "pods left: {pods}"
        );
        let cs = self.cri("ListContainers", json!({}));
        assert!(
            cs["containers"].as_array().is_none_or(|a| a.is_empty()),
            "containers left: {cs}"
        );
        assert_eq!(self.ok(&["task", "ls", "-q"]), "", "tasks left");
        assert_eq!(self.ok(&["containers", "ls", "-q"]), "", "containerd containers left");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(self.myshim_servers().is_empty() && self.go_shims().is_empty()) {
            assert!(
                Instant::now() < deadline,
                "shims left: ours {:?}, Go {:?}",
                self.myshim_servers(),
                self.go_shims()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mounts = mounts_under(self.dir.path());
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        for hierarchy in cgroup_hierarchies() {
            let parent = hierarchy.join(self.cgroup_parent.trim_start_matches('/'));
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
        for id in self.ids.borrow().iter() {
            for root in ["/run/containerd/myshim/k8s.io", "/run/containerd/runc/k8s.io"] {
                let state = Path::new(root).join(id);
                assert!(!state.exists(), "runtime state left: {}", state.display());
            }
        }
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // Containers first (a stuck stop would hold the CRI), then the
        // CRI's own cleanup, containerd by pid, and shims of this containerd.
        let tree: Vec<PathBuf> = cgroup_hierarchies()
            .map(|h| h.join(self.cgroup_parent.trim_start_matches('/')))
            .collect();
        for t in &tree {
            kill_cgroup_tree(t);
        }
        let _ = self.cri_py(15).arg("cleanup").output();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        for pid in self.myshim_servers().into_iter().chain(self.go_shims()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // Their helpers and children are gone with them; give the kernel a moment.
        std::thread::sleep(Duration::from_millis(200));
        let mut targets = mounts_under(self.dir.path());
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = nix::mount::umount2(t.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for id in self.ids.borrow().iter() {
            for root in ["/run/containerd/myshim/k8s.io", "/run/containerd/runc/k8s.io"] {
                let _ = std::fs::remove_dir_all(Path::new(root).join(id));
            }
        }
        // Shared directories, only once empty (other tests may use them).
        for dir in [
            "/run/containerd/myshim/k8s.io",
            "/run/containerd/runc/k8s.io",
            "/run/containerd/myshim",
            "/run/containerd/runc",
            "/run/containerd/s",
            "/run/containerd",
        ] {
            let _ = std::fs::remove_dir(dir);
        }
        for t in &tree {
            remove_cgroup_tree(t);
        }
    }
}

/// containerd of `bin` on `d/config.toml`, with our shim and this version's
/// Go runc shim first on its PATH; its log appended to d/containerd.log.
fn spawn_containerd(bin: &Path, d: &Path) -> Child {
    let path = format!(
        "{}:{}:{}",
        Path::new(SHIM).parent().unwrap().display(),
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("containerd.log"))
        .unwrap();
    Command::new(bin.join("containerd"))
        .arg("--config")
        .arg(d.join("config.toml"))
        .env("PATH", path)
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 and the unified one).
fn cgroup_hierarchies() -> impl Iterator<Item = PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v2_root = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.len() > 4 && f[4] == "/sys/fs/cgroup" && l.contains(" - cgroup2 ")
    });
    let dirs: Vec<PathBuf> = if v2_root {
        vec![PathBuf::from("/sys/fs/cgroup")]
    } else {
        std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()
    };
    dirs.into_iter()
}

/// SIGKILL to every process in the cgroup tree `dir` (one this test made),
/// thawed first: a frozen process would not die.
fn kill_cgroup_tree(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            kill_cgroup_tree(&sub.path());
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
}

/// Removes the cgroup tree `dir` (one this test made), deepest first.
fn remove_cgroup_tree(dir: &Path) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&sub.path());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        kill_cgroup_tree(dir);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Live (not zombie) processes whose cmdline (spaces for NULs) matches.
fn pids_with_cmdline(pred: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if pred(&String::from_utf8_lossy(&cmdline).replace('\0', " ")) {
            out.push(pid);
        }
    }
    out
}

/// An int64 of the CRI's JSON (a string in proto3 JSON), 0 when left out.
fn int(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_u64().unwrap(),
        _ => 0,
    }
}

/// One shim per pod, serving the pod (`-id` is the sandbox's id): ours with
/// `myshim`, the Go one with `myshim-cli`.
fn assert_one_shim_per_pod(c: &Cri, handler: &str, pods: &[&str]) {
    let mut want: Vec<String> = pods.iter().map(|p| p.to_string()).collect();
    want.sort();
    // A removed pod's shim exits just after the reply: waited for, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ours, go) = (c.myshim_servers(), c.go_shims());
        let (serving, other) = match handler {
            "myshim" => (&ours, &go),
            _ => (&go, &ours),
        };
        let mut ids: Vec<String> = serving.iter().map(|p| shim_id(*p)).collect();
        ids.sort();
        if other.is_empty() && ids == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{handler}: shims ours {ours:?}, Go {go:?} serve {ids:?}, not one per pod of {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `-id` argument of a shim's command line.
fn shim_id(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.iter()
        .position(|a| a == "-id")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_default()
}

/// A pod of two containers: exec, stats, the CRI log, StopContainer of one
/// that traps TERM and of one that ignores it (KILL after the timeout), then
/// the pod stopped and removed with nothing left.
fn pod_lifecycle(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("p", handler, "CONTAINER");
    let a = c.start_container(
        &pod,
        "a",
        "echo hello from a; trap 'echo got TERM; exit 0' TERM; sleep 100000 & wait",
        64,
    );
    let b = c.start_container(&pod, "b", "trap '' TERM; echo b ready; sleep 100000 & wait", 0);
    for id in [&a, &b] {
        assert_eq!(c.status(id)["state"], "CONTAINER_RUNNING", "{}", c.log());
    }
    // A second pod gets a shim of its own; each serves both of its containers.
    let other = c.run_pod("q", handler, "CONTAINER");
    c.start_container(&other, "q", "sleep 100000", 0);
    assert_one_shim_per_pod(&c, handler, &[&pod.0, &other.0]);
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": other.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": other.0}));
    assert_one_shim_per_pod(&c, handler, &[&pod.0]);

    let (out, err, code) = c.exec(&a, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));
    // The container's own cgroup is what it sees (the CRI mounts /sys/fs/cgroup).
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert_eq!(c.read_inside(&a, "memory.limit_in_bytes"), (64 * MIB).to_string());
    }

    let stats = c.cri("ContainerStats", json!({"container_id": a}))["stats"].clone();
    let working_set = int(&stats["memory"]["working_set_bytes"]["value"]);
    assert!(working_set > 0, "no working set: {stats}");
    // available = limit - working set: the limit reached the CRI.
    let available = int(&stats["memory"]["available_bytes"]["value"]);
    assert_eq!(available + working_set, 64 * MIB, "{stats}");
    assert_eq!(stats["attributes"]["id"], a.as_str());

    c.wait_log("p", "a", "hello from a");
    c.wait_log("p", "b", "b ready");

    c.cri("StopContainer", json!({"container_id": a, "timeout": 60}));
    let s = c.status(&a);
    assert_eq!(s["state"], "CONTAINER_EXITED", "{s}");
    assert_eq!(int(&s["exit_code"]), 0, "the TERM trap's exit: {s}");
    c.wait_log("p", "a", "got TERM");

    c.cri("StopContainer", json!({"container_id": b, "timeout": 2}));
    let s = c.status(&b);
    assert_eq!(s["state"], "CONTAINER_EXITED", "{s}");
    assert_eq!(int(&s["exit_code"]), 137, "KILL after the timeout: {s}");

    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// UpdateContainerResources raising and lowering the memory limit (the CRI
/// sets swap = limit), read from inside the container.
fn update_resources(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("u", handler, "CONTAINER");
    let id = c.start_container(&pod, "u", "sleep 100000", 64);
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    for mib in [128, 32] {
        let limit = mib * MIB;
        c.cri(
            "UpdateContainerResources",
            json!({"container_id": id, "linux": {"memory_limit_in_bytes": limit}}),
        );
        if v1 {
            assert_eq!(
                c.read_inside(&id, "memory.limit_in_bytes"),
                limit.to_string(),
                "{mib} MiB"
            );
            if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
                assert_eq!(c.read_inside(&id, "memory.memsw.limit_in_bytes"), limit.to_string());
            }
        } else {
            let (out, _, _) = c.exec(&id, &["cat", "/sys/fs/cgroup/memory.max"]);
            assert_eq!(out.trim(), limit.to_string(), "{mib} MiB");
        }
        let s = c.status(&id);
        assert_eq!(int(&s["resources"]["linux"]["memory_limit_in_bytes"]), limit, "{s}");
    }
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// In a pod sharing one pid namespace (shareProcessNamespace), a container
/// whose init exits on TERM and leaves a background child: its processes
/// must all go, as the Go shim makes runc do (`kill --all` of the stopped
/// container), so that the stop completes (containerd waits for the
/// container's stdout to close, and the child holds it).
fn shared_pid_namespace_stop(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("s", handler, "POD");
    let id = c.start_container(&pod, "s", "trap 'exit 0' TERM; echo up; sleep 100000 & wait", 0);
    c.wait_log("s", "s", "up");
    // A hang-guard well past the stop timeout, not a performance threshold.
    let r = c.call_timeout("StopContainer", json!({"container_id": id, "timeout": 2}), 30);
    assert!(r.is_ok(), "StopContainer: {}\n{}", r.unwrap_err(), c.log());
    assert_eq!(c.status(&id)["state"], "CONTAINER_EXITED");
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// ContainerStats fills what containerd derives from the shim's metrics
/// (cgroup v1 or v2), as for runc: CPU time, memory usage, working set, RSS,
/// page faults, and the available bytes under the limit.
fn container_stats(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("m", handler, "CONTAINER");
    let id = c.start_container(&pod, "m", "echo up; sleep 100000", 64);
    c.wait_log("m", "m", "up");
    let stats = c.cri("ContainerStats", json!({"container_id": id}))["stats"].clone();
    let (cpu, mem) = (&stats["cpu"], &stats["memory"]);
    let mut missing = vec![];
    for (name, v) in [
        ("cpu.usage_core_nano_seconds", &cpu["usage_core_nano_seconds"]),
        ("memory.working_set_bytes", &mem["working_set_bytes"]),
        ("memory.usage_bytes", &mem["usage_bytes"]),
        ("memory.rss_bytes", &mem["rss_bytes"]),
        ("memory.page_faults", &mem["page_faults"]),
        ("memory.available_bytes", &mem["available_bytes"]),
    ] {
        if int(&v["value"]) == 0 {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "{handler}: zero or missing {missing:?} in {stats}");
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// Waits (bounded) until container `id` has exited; its status.
fn wait_exited(c: &Cri, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.status(id);
        if s["state"] == "CONTAINER_EXITED" {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} never exited: {s}\n{}", c.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A container that exits by itself reports its code, and the pod's shim
/// runs its replacement (what kubelet does on a restart: attempt 1 of the
/// same name, in the same pod, after the old one is removed).
fn exit_and_restart(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("r", handler, "CONTAINER");
    let keep = c.start_container(&pod, "keep", "sleep 100000", 0);
    let first = c.start_container(&pod, "r", "echo attempt 0; exit 7", 0);
    let s = wait_exited(&c, &first);
    assert_eq!((int(&s["exit_code"]), s["reason"].as_str()), (7, Some("Error")), "{s}");
    c.cri("RemoveContainer", json!({"container_id": first}));
    let second = c.start_container(&pod, "r", "echo attempt 1; exit 0", 0);
    let s = wait_exited(&c, &second);
    assert_eq!(
        (int(&s["exit_code"]), s["reason"].as_str()),
        (0, Some("Completed")),
        "{s}"
    );
    c.wait_log("r", "r", "attempt 1");
    assert_eq!(c.status(&keep)["state"], "CONTAINER_RUNNING");
    assert_one_shim_per_pod(&c, handler, &[&pod.0]);
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// A container past its memory limit is OOM-killed and the CRI says so
/// (containerd gets it from the shim's TaskOOM event).
fn oom_killed(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("o", handler, "CONTAINER");
    // tail keeps the last 10 lines; /dev/zero has no newline, so all of it.
    let id = c.start_container(&pod, "o", "exec tail /dev/zero", 16);
    let s = wait_exited(&c, &id);
    assert_eq!(
        (int(&s["exit_code"]), s["reason"].as_str()),
        (137, Some("OOMKilled")),
        "{s}"
    );
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// ExecSync past its timeout fails and its process is killed (containerd
/// kills the exec; the init stays).
fn exec_timeout(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("e", handler, "CONTAINER");
    let id = c.start_container(&pod, "e", "sleep 100000", 0);
    let r = c.call(
        "ExecSync",
        json!({"container_id": id, "cmd": ["sleep", "1000"], "timeout": 1}),
    );
    assert!(r.is_err(), "ExecSync past its timeout: {r:?}");
    let procs = Path::new("/sys/fs/cgroup/pids")
        .join(c.cgroup_parent.trim_start_matches('/'))
        .join(&id)
        .join("cgroup.procs");
    let procs = if procs.exists() {
        procs
    } else {
        // cgroup v2: one hierarchy.
        Path::new("/sys/fs/cgroup")
            .join(c.cgroup_parent.trim_start_matches('/'))
            .join(&id)
            .join("cgroup.procs")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids = std::fs::read_to_string(&procs).unwrap();
        if pids.lines().count() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the timed-out exec still runs: {pids}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (out, _, code) = c.exec(&id, &["echo", "after"]);
    assert_eq!((out.as_str(), code), ("after\n", 0));
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// Pods outlive a containerd restart: the CRI finds the pod and its
/// container running through their shim, execs in it, sees a stop that
/// happens after the restart, and removes it all.
fn containerd_restart(version: &str, handler: &str) {
    let Some(mut c) = Cri::start(version) else { return };
    let pod = c.run_pod("k", handler, "CONTAINER");
    let a = c.start_container(&pod, "k", "trap 'echo got TERM; exit 0' TERM; sleep 100000 & wait", 0);
    let b = c.start_container(&pod, "l", "sleep 100000", 0);
    let shims_before = (c.myshim_servers(), c.go_shims());
    c.restart();
    assert_eq!(
        (c.myshim_servers(), c.go_shims()),
        shims_before,
        "the shims did not stay"
    );
    let p = c.cri("PodSandboxStatus", json!({"pod_sandbox_id": pod.0}));
    assert_eq!(p["status"]["state"], "SANDBOX_READY", "{p}");
    for id in [&a, &b] {
        assert_eq!(c.status(id)["state"], "CONTAINER_RUNNING", "{}", c.log());
    }
    let (out, _, code) = c.exec(&a, &["echo", "after restart"]);
    assert_eq!((out.as_str(), code), ("after restart\n", 0));
    c.cri("StopContainer", json!({"container_id": a, "timeout": 60}));
    let s = c.status(&a);
    assert_eq!(
        (s["state"].as_str(), int(&s["exit_code"])),
        (Some("CONTAINER_EXITED"), 0),
        "{s}"
    );
    c.wait_log("k", "k", "got TERM");
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

/// What a restricted pod asks for: a non-root user, a read-only rootfs, no
/// capabilities, no_new_privs and the CRI's default seccomp profile, each
/// seen from inside.
fn restricted_security_context(version: &str, handler: &str) {
    let Some(c) = Cri::start(version) else { return };
    let pod = c.run_pod("x", handler, "CONTAINER");
    let config = json!({
        "metadata": {"name": "x"},
        "image": {"image": IMAGE},
        "command": ["sleep", "100000"],
        "log_path": "x.log",
        "linux": {"security_context": {
            "namespace_options": {"network": "NODE", "pid": "CONTAINER"},
            "run_as_user": {"value": 1000},
            "run_as_group": {"value": 1000},
            "readonly_rootfs": true,
            "no_new_privs": true,
            "capabilities": {"drop_capabilities": ["ALL"]},
            "seccomp": {"profile_type": "RuntimeDefault"},
        }},
    });
    let r = c.cri(
        "CreateContainer",
        json!({"pod_sandbox_id": pod.0, "config": config, "sandbox_config": pod.1}),
    );
    let id = r["container_id"].as_str().unwrap().to_string();
    c.ids.borrow_mut().push(id.clone());
    c.cri("StartContainer", json!({"container_id": id}));
    let (out, _, _) = c.exec(&id, &["id", "-u"]);
    assert_eq!(out, "1000\n");
    let (out, _, _) = c.exec(&id, &["id", "-g"]);
    assert_eq!(out, "1000\n");
    let (_, err, code) = c.exec(&id, &["touch", "/x"]);
    assert!(
        code != 0 && err.contains("Read-only file system"),
        "touch /x: {code} {err}"
    );
    // The init (pid 1 of its own pid namespace) and an exec'd process.
    for proc in ["1", "self"] {
        let (status, _, _) = c.exec(&id, &["cat", &format!("/proc/{proc}/status")]);
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        assert_eq!(field("Uid").split_whitespace().next(), Some("1000"), "{status}");
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(field(cap), "0000000000000000", "{cap}: {status}");
        }
        assert_eq!(field("NoNewPrivs"), "1", "{status}");
        assert_eq!(field("Seccomp"), "2", "a seccomp filter: {status}");
    }
    c.cri("StopPodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.cri("RemovePodSandbox", json!({"pod_sandbox_id": pod.0}));
    c.assert_clean();
}

macro_rules! cri_tests {
    ($($name:ident: $f:ident($version:literal, $handler:literal);)*) => {
        $(#[test] fn $name() { $f($version, $handler); })*
    };
}

cri_tests! {
    pod_containerd_1_6_myshim: pod_lifecycle("1.6", "myshim");
    pod_containerd_1_6_myshim_cli: pod_lifecycle("1.6", "myshim-cli");
    pod_containerd_1_7_myshim: pod_lifecycle("1.7", "myshim");
    pod_containerd_1_7_myshim_cli: pod_lifecycle("1.7", "myshim-cli");
    pod_containerd_2_1_myshim: pod_lifecycle("2.1", "myshim");
    pod_containerd_2_1_myshim_cli: pod_lifecycle("2.1", "myshim-cli");
    update_resources_containerd_1_6_myshim: update_resources("1.6", "myshim");
    update_resources_containerd_1_6_myshim_cli: update_resources("1.6", "myshim-cli");
    update_resources_containerd_1_7_myshim: update_resources("1.7", "myshim");
    update_resources_containerd_1_7_myshim_cli: update_resources("1.7", "myshim-cli");
    update_resources_containerd_2_1_myshim: update_resources("2.1", "myshim");
    update_resources_containerd_2_1_myshim_cli: update_resources("2.1", "myshim-cli");
    shared_pid_stop_containerd_1_7_myshim: shared_pid_namespace_stop("1.7", "myshim");
    shared_pid_stop_containerd_1_7_myshim_cli: shared_pid_namespace_stop("1.7", "myshim-cli");
    shared_pid_stop_containerd_2_1_myshim: shared_pid_namespace_stop("2.1", "myshim");
    shared_pid_stop_containerd_2_1_myshim_cli: shared_pid_namespace_stop("2.1", "myshim-cli");
    exit_and_restart_containerd_1_7_myshim: exit_and_restart("1.7", "myshim");
    exit_and_restart_containerd_1_7_myshim_cli: exit_and_restart("1.7", "myshim-cli");
    exit_and_restart_containerd_2_1_myshim: exit_and_restart("2.1", "myshim");
    exit_and_restart_containerd_2_1_myshim_cli: exit_and_restart("2.1", "myshim-cli");
    oom_killed_containerd_1_7_myshim: oom_killed("1.7", "myshim");
    oom_killed_containerd_1_7_myshim_cli: oom_killed("1.7", "myshim-cli");
    oom_killed_containerd_2_1_myshim: oom_killed("2.1", "myshim");
    oom_killed_containerd_2_1_myshim_cli: oom_killed("2.1", "myshim-cli");
    exec_timeout_containerd_1_7_myshim: exec_timeout("1.7", "myshim");
    exec_timeout_containerd_1_7_myshim_cli: exec_timeout("1.7", "myshim-cli");
    exec_timeout_containerd_2_1_myshim: exec_timeout("2.1", "myshim");
    exec_timeout_containerd_2_1_myshim_cli: exec_timeout("2.1", "myshim-cli");
    containerd_restart_1_7_myshim: containerd_restart("1.7", "myshim");
    containerd_restart_1_7_myshim_cli: containerd_restart("1.7", "myshim-cli");
    containerd_restart_2_1_myshim: containerd_restart("2.1", "myshim");
    containerd_restart_2_1_myshim_cli: containerd_restart("2.1", "myshim-cli");
    restricted_security_context_1_7_myshim: restricted_security_context("1.7", "myshim");
    restricted_security_context_1_7_myshim_cli: restricted_security_context("1.7", "myshim-cli");
    restricted_security_context_2_1_myshim: restricted_security_context("2.1", "myshim");
    restricted_security_context_2_1_myshim_cli: restricted_security_context("2.1", "myshim-cli");
    container_stats_containerd_1_7_myshim: container_stats("1.7", "myshim");
    container_stats_containerd_1_7_myshim_cli: container_stats("1.7", "myshim-cli");
    container_stats_containerd_2_1_myshim: container_stats("2.1", "myshim");
    container_stats_containerd_2_1_myshim_cli: container_stats("2.1", "myshim-cli");
    container_stats_containerd_2_1_runc: container_stats("2.1", "runc");
    // The reference: containerd's Go shim with runc passes the same test.
    shared_pid_stop_containerd_2_1_runc: shared_pid_namespace_stop("2.1", "runc");
}
