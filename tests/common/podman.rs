//! Podman with myshim as its OCI runtime, for the engine tests: as root with
//! all of Podman's storage and state in a temp dir, or as a throwaway
//! rootless user. The containers.conf is contrib/podman/containers.conf with
//! the built binary as the `myshim` runtime and what this kind of host needs
//! (cgroupfs, file events, no network, ulimits within the hard limits).
//! Everything made goes on drop, pass or fail: containers, conmon and
//! container processes, mounts, cgroups, the user.
#![allow(dead_code)]

#[path = "../../runtime/tests/common/user.rs"]
mod user;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
pub use user::ThrowawayUser;

pub const IMAGE: &str = "localhost/busybox:myshim";
const PODMAN: &str = "/usr/bin/podman";
/// Bound on any one podman command: a hang fails the test instead of blocking it.
const COMMAND_LIMIT: Duration = Duration::from_secs(180);

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Files root Podman writes outside its --root/--runroot/--tmpdir (the blob
/// info cache, the shared-memory locks): removed after the last Podman of
/// this test binary if they were not there before the first.
const HOST_LEFTOVERS: [&str; 2] = ["/var/lib/containers", "/dev/shm/libpod_lock"];

struct Live {
    count: usize,
    preexisting: Option<Vec<bool>>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    count: 0,
    preexisting: None,
});

fn live_enter() {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if live.preexisting.is_none() {
        live.preexisting = Some(HOST_LEFTOVERS.iter().map(|p| Path::new(p).exists()).collect());
    }
    live.count += 1;
}

fn live_leave() {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.count -= 1;
    if live.count > 0 {
        return;
    }
    for (path, existed) in HOST_LEFTOVERS.iter().zip(live.preexisting.clone().unwrap_or_default()) {
        if !existed {
            let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The runtime binary built beside the shim.
pub fn myshim() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_containerd-shim-myshim-v2")).with_file_name("myshim")
}

/// Why the Podman tests cannot run here, if they cannot.
pub fn unavailable(rootless: bool) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    let mut needed = vec![PODMAN, "/usr/bin/conmon", "/usr/bin/script"];
    if rootless {
        needed.extend(["/usr/bin/newuidmap", "/usr/bin/newgidmap", "/usr/bin/setpriv"]);
    }
    let missing: Vec<&str> = needed.into_iter().filter(|p| !Path::new(p).exists()).collect();
    (!missing.is_empty()).then(|| format!("{missing:?} missing (contrib/install-engines.sh)"))
}

/// An init binary for --init: Podman's default (catatonit) or tini.
pub fn init_binary() -> Option<&'static str> {
    [
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
        "/usr/bin/tini-static",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// contrib/podman/containers.conf with `runtime` as the myshim binary and
/// this host's needs added.
pub fn containers_conf(runtime: &Path) -> String {
    let example = std::fs::read_to_string(repo().join("contrib/podman/containers.conf")).unwrap();
    let start = example.find("myshim = [").expect("no myshim runtime in the example");
    let end = start + example[start..].find(']').unwrap() + 1;
    let mut conf = format!(
        "{}myshim = [\"{}\"]{}",
        &example[..start],
        runtime.display(),
        &example[end..]
    );
    let mut engine = "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n".to_string();
    if let Some(init) = init_binary() {
        engine += &format!("init_path = \"{init}\"\n");
    }
    assert!(conf.contains("\n[engine]\n"), "no [engine] table in the example");
    conf = conf.replacen("\n[engine]\n", &format!("\n{engine}"), 1);
    format!("[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\nnetns = \"none\"\n\n{conf}")
}

/// What a podman command did.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn words(&self) -> Vec<&str> {
        self.stdout.split_whitespace().collect()
    }
}

/// Runs `cmd` with stdout and stderr in files (conmon may keep pipes open
/// past podman's exit); fails if it is still running after COMMAND_LIMIT.
pub fn run_bounded(cmd: Command, scratch: &Path) -> Out {
    let what = format!("{cmd:?}");
    let (out, finished) = run_within(cmd, scratch);
    assert!(finished, "{what} still running after {COMMAND_LIMIT:?}: {out:?}");
    out
}

/// `cmd` killed after COMMAND_LIMIT; whether it finished by itself.
fn run_within(mut cmd: Command, scratch: &Path) -> (Out, bool) {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let (o, e) = (scratch.join(format!("out{n}")), scratch.join(format!("err{n}")));
    cmd.stdout(File::create(&o).unwrap()).stderr(File::create(&e).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| {
        let text = String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(p);
        text
    };
    let out = Out {
        code: status.and_then(|s| s.code()),
        stdout: read(&o),
        stderr: read(&e),
    };
    (out, status.is_some())
}

/// Single-quotes `s` for sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub struct Podman {
    /// Where Podman's files, the image and the config live.
    base: PathBuf,
    /// Root's temp dir (a rootless user has its own).
    dir: Option<tempfile::TempDir>,
    user: Option<ThrowawayUser>,
    /// Root: the cgroup parent of every container, made by Podman and removed here.
    cgroup_parent: Option<String>,
    /// Podman's global flags.
    global: Vec<String>,
    env: Vec<(String, String)>,
}

impl Podman {
    /// Podman as root: --root, --runroot and --tmpdir in a temp dir, each
    /// container below a cgroup of this test's.
    pub fn root() -> Podman {
        live_enter();
        let dir = tempfile::Builder::new().prefix("myshim-podman").tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let conf = base.join("containers.conf");
        std::fs::write(&conf, containers_conf(&myshim())).unwrap();
        let global = ["root", "runroot", "tmpdir"]
            .iter()
            .flat_map(|f| [format!("--{f}"), base.join(f).display().to_string()])
            .collect();
        let name = base.file_name().unwrap().to_string_lossy().replace('.', "");
        let p = Podman {
            dir: Some(dir),
            user: None,
            cgroup_parent: Some(format!("/{name}")),
            global,
            env: vec![("CONTAINERS_CONF".into(), conf.display().to_string())],
            base,
        };
        p.load_image();
        p
    }

    /// Podman as a throwaway user with subordinate ids, its own HOME and
    /// XDG_RUNTIME_DIR, Podman's default rootless storage; no global flags.
    pub fn rootless() -> Podman {
        live_enter();
        let user = ThrowawayUser::new();
        let base = user.dir.path().to_path_buf();
        // The user may not reach the build tree: it gets its own copy.
        let runtime = base.join("bin/myshim");
        std::fs::create_dir_all(runtime.parent().unwrap()).unwrap();
        std::fs::copy(myshim(), &runtime).unwrap();
        let conf = base.join("containers.conf");
        std::fs::write(&conf, containers_conf(&runtime)).unwrap();
        for d in ["home", "xdg"] {
            std::fs::create_dir(base.join(d)).unwrap();
        }
        std::fs::set_permissions(base.join("xdg"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        user.chown(&base);
        let env = vec![
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("HOME".into(), base.join("home").display().to_string()),
            ("USER".into(), user.name.clone()),
            ("LOGNAME".into(), user.name.clone()),
            ("XDG_RUNTIME_DIR".into(), base.join("xdg").display().to_string()),
            ("CONTAINERS_CONF".into(), conf.display().to_string()),
        ];
        let p = Podman {
            base,
            dir: None,
            user: Some(user),
            cgroup_parent: None,
            global: vec![],
            env,
        };
        p.load_image();
        p
    }

    pub fn user(&self) -> Option<&ThrowawayUser> {
        self.user.as_ref()
    }

    /// A path in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// A directory for the test, the user's if rootless.
    pub fn make_dir(&self, name: &str) -> PathBuf {
        let d = self.path(name);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(u) = &self.user {
            u.chown(&d);
        }
        d
    }

    /// Gives `path` to the user, if rootless.
    pub fn give(&self, path: &Path) {
        if let Some(u) = &self.user {
            u.chown(path);
        }
    }

    /// The command line after `podman`: global flags, then `args`, with the
    /// test's cgroup parent for `run` and `create`.
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v = self.global.clone();
        if let (Some(cg), Some(&("run" | "create"))) = (&self.cgroup_parent, args.first()) {
            v.extend([args[0].to_string(), format!("--cgroup-parent={cg}")]);
            v.extend(args[1..].iter().map(|a| a.to_string()));
        } else {
            v.extend(args.iter().map(|a| a.to_string()));
        }
        v
    }

    /// `program ARGS` as Podman's caller (root or the user), with its environment.
    fn command(&self, program: &str, args: &[String]) -> Command {
        let mut c = match &self.user {
            Some(u) => u.command(program),
            None => {
                let mut c = Command::new(program);
                c.current_dir(&self.base).stdin(Stdio::null());
                c
            }
        };
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env.iter().cloned())
            .args(args);
        c
    }

    /// `podman ARGS`, not started yet.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.command(PODMAN, &self.argv(args))
    }

    pub fn podman(&self, args: &[&str]) -> Out {
        run_bounded(self.cmd(args), &self.scratch())
    }

    /// `podman ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert_eq!(out.code, Some(0), "podman {args:?}: {out:?}");
        out.stdout
    }

    /// `podman ARGS` as one shell-quoted line, for scripts run on a pty.
    pub fn shell_line(&self, args: &[&str]) -> String {
        let words: Vec<String> = std::iter::once(PODMAN.to_string())
            .chain(self.argv(args))
            .map(|a| quote(&a))
            .collect();
        words.join(" ")
    }

    /// `podman ARGS` on a pseudo-terminal (script(1)), after `setup` shell commands there.
    pub fn in_pty(&self, setup: &str, args: &[&str]) -> Out {
        let inner = format!("{setup}{}", self.shell_line(args));
        let argv = ["-qec".to_string(), inner, "/dev/null".to_string()];
        run_bounded(self.command("/usr/bin/script", &argv), &self.scratch())
    }

    /// `podman inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name]).trim().to_string()
    }

    /// Waits (bounded) until `inspect FORMAT` of `name` reads `want`.
    pub fn wait_for(&self, name: &str, format: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.podman(&["inspect", "--format", format, name]);
            if got.stdout.trim() == want {
                return;
            }
            assert!(Instant::now() < deadline, "{name}: {format} never {want:?}: {got:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The container's cgroup directory in hierarchy `controller` (root only).
    pub fn cgroup_dir(&self, controller: &str, name: &str) -> PathBuf {
        let id = self.inspect(name, "{{.Id}}");
        let parent = self.cgroup_parent.as_deref().expect("a cgroup parent");
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(parent.trim_start_matches('/'))
            .join(format!("libpod-{id}"))
    }

    fn scratch(&self) -> PathBuf {
        let d = self.path("out");
        if !d.exists() {
            std::fs::create_dir_all(&d).unwrap();
        }
        d
    }

    fn load_image(&self) {
        let (bundle, tar) = (self.path("image"), self.path("image.tar"));
        let status = Command::new(repo().join("contrib/make-bundle.sh"))
            .arg(&bundle)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "make-bundle.sh");
        let status = Command::new(repo().join("contrib/make-image.sh"))
            .arg(bundle.join("rootfs"))
            .arg(IMAGE)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(status.success(), "make-image.sh");
        self.give(&tar);
        self.ok(&["load", "-i", tar.to_str().unwrap()]);
    }

    /// Live processes of the test: those that name its directory (conmon,
    /// Podman's cleanup runs), those in its cgroups (containers), and all of
    /// its user's.
    pub fn processes(&self) -> Vec<i32> {
        let base = self.base.display().to_string();
        let mut pids = self.user.as_ref().map(|u| u.processes()).unwrap_or_default();
        if let Some(cg) = &self.cgroup_parent {
            for e in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                cgroup_procs(&e.path().join(cg.trim_start_matches('/')), &mut pids);
            }
        }
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&base) {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        let me = std::process::id() as i32;
        pids.retain(|&pid| pid != me && !is_zombie(pid));
        pids
    }

    /// Rootless Podman's pause process (`podman` with no arguments), which
    /// keeps its user namespace for the next command and is meant to stay.
    pub fn is_pause_process(&self, pid: i32) -> bool {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
        // Podman's own pause, or `catatonit -P` where catatonit is installed.
        let podman_pause = exe == Path::new(PODMAN) && args.len() == 1;
        let catatonit_pause = exe.file_name().is_some_and(|n| n == "catatonit") && args.get(1) == Some(&&b"-P"[..]);
        self.user.is_some() && (podman_pause || catatonit_pause)
    }

    /// Waits (bounded) until no process of the test is left (conmon ends
    /// after its container, Podman's cleanup after conmon).
    pub fn wait_no_processes(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let remaining = || -> Vec<i32> {
            let mut pids = self.processes();
            pids.retain(|&p| !self.is_pause_process(p));
            pids
        };
        let mut left = remaining();
        while !left.is_empty() {
            let described: Vec<String> = left
                .iter()
                .map(|p| {
                    let c = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p}: {}", String::from_utf8_lossy(&c).replace('\0', " "))
                })
                .collect();
            assert!(Instant::now() < deadline, "processes left: {described:#?}");
            std::thread::sleep(Duration::from_millis(100));
            left = remaining();
        }
    }

    /// Mount points under the test's directory, deepest first.
    pub fn mounts(&self) -> Vec<String> {
        let base = self.base.display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| *p == base || p.starts_with(&format!("{base}/")))
            .map(str::to_string)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points
    }

    /// Every container Podman created here, from its event log (file).
    pub fn created_ids(&self) -> Vec<String> {
        let log = match &self.user {
            Some(_) => self.path("xdg/libpod/tmp/events/events.log"),
            None => self.path("tmpdir/events/events.log"),
        };
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["Type"] == "container" && e["Status"] == "create")
            .filter_map(|e| e["ID"].as_str().map(str::to_string))
            .collect()
    }

    /// The runtime's state directory for container `id` (the default root:
    /// /run/myshim for root, $XDG_RUNTIME_DIR/myshim for rootless Podman).
    pub fn runtime_state(&self, id: &str) -> PathBuf {
        match &self.user {
            Some(_) => self.path("xdg/myshim").join(id),
            None => Path::new("/run/myshim").join(id),
        }
    }
}

/// Whether any process, even a zombie, runs as the user or one of its subordinate uids.
fn has_any_process(u: &ThrowawayUser) -> bool {
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let range = subuid.lines().find_map(|l| {
        let mut f = l.strip_prefix(&format!("{}:", u.name))?.split(':');
        let first: u32 = f.next()?.parse().ok()?;
        Some(first..first + f.next()?.parse::<u32>().ok()?)
    });
    let ours = |uid: u32| uid == u.uid || range.as_ref().is_some_and(|r| r.contains(&uid));
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok())
            .is_some_and(ours)
    })
}

fn is_zombie(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses.
    stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z'))
}

/// The pids in cgroup `dir` and below.
fn cgroup_procs(dir: &Path, out: &mut Vec<i32>) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            cgroup_procs(&sub.path(), out);
        }
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    out.extend(procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()));
}

/// Removes a cgroup the test made and those below it, deepest first,
/// killing whatever a failed test left in them.
fn remove_cgroup_tree(dir: &Path) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&sub.path());
        }
    }
    // A frozen process takes no signal.
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
        // SAFETY: plain kill of a process in a cgroup of the test's.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // No panic here: a failed test is unwinding through this drop.
        let _ = run_within(self.cmd(&["rm", "--all", "--force", "--time", "0"]), &self.scratch());
        for pid in self.processes() {
            // SAFETY: plain kill of a process of the test's (it names the
            // test's directory or belongs to its throwaway user).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(cg) = &self.cgroup_parent {
            for e in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                let dir = e.path().join(cg.trim_start_matches('/'));
                if dir.exists() {
                    remove_cgroup_tree(&dir);
                }
            }
        }
        for point in self.mounts() {
            let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(u) = &self.user {
            // userdel refuses a user with a process left, zombies included:
            // wait (bounded) until the killed ones are reaped.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                u.kill_all();
                if !has_any_process(u) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(format!("/dev/shm/libpod_rootless_lock_{}", u.uid));
        }
        live_leave();
    }
}
