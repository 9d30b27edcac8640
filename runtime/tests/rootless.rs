//! Rootless: an ordinary user with subordinate id ranges, created for each
//! test and removed after it, runs containers with no help from root.

mod common;
#[path = "common/user.rs"]
mod user;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use user::ThrowawayUser;

/// A throwaway user (see common/user.rs) with a copy of myshim.
struct User {
    account: ThrowawayUser,
    myshim: PathBuf,
}

impl std::ops::Deref for User {
    type Target = ThrowawayUser;
    fn deref(&self) -> &ThrowawayUser {
        &self.account
    }
}

impl User {
    fn new() -> User {
        let account = ThrowawayUser::new();
        // The user may not reach the build tree: run a copy of the binary.
        let myshim = account.path("myshim");
        std::fs::copy(MYSHIM, &myshim).unwrap();
        account.chown(&myshim);
        User { account, myshim }
    }

    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    /// A bundle made by the user with `myshim spec --rootless`, running `args`.
    fn bundle(&self, name: &str, args: &[&str]) -> PathBuf {
        let b = self.dir.path().join(name);
        make_rootfs(&b.join("rootfs"));
        self.chown(&b);
        let out = self.myshim(&["spec", "--rootless", "-b", b.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let path = b.join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        std::fs::write(&path, c.to_string()).unwrap();
        b
    }

    fn edit(&self, bundle: &Path, f: impl FnOnce(&mut Value)) {
        let path = bundle.join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&path, c.to_string()).unwrap();
    }

    /// `myshim ARGS` as the user, with its XDG_RUNTIME_DIR.
    fn command(&self, args: &[&str]) -> Command {
        std::fs::create_dir_all(self.xdg()).unwrap();
        self.chown(&self.xdg());
        let mut c = self.account.command(&self.myshim);
        c.args(args).env("XDG_RUNTIME_DIR", self.xdg());
        c
    }

    fn myshim(&self, args: &[&str]) -> Output {
        output_via_files(&mut self.command(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.myshim(args);
        assert!(
            out.status.success(),
            "myshim {args:?} as {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.myshim(args);
        assert!(!out.status.success(), "myshim {args:?} should fail");
        common::error_message(&String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let root = self.xdg().join("myshim");
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.myshim(&["delete", "--force", &id]);
        }
    }
}

fn ready() -> bool {
    is_root() && Path::new("/usr/bin/newuidmap").exists()
}

#[test]
fn spec_rootless_and_run_as_a_user() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle(
        "b1",
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup-ro",
        ],
    );
    let out = u.ok(&["run", "-b", b.to_str().unwrap(), "r1"]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "0", &u.uid.to_string(), "1", "cgroup-ro"], "{out}");
    // The default root is $XDG_RUNTIME_DIR/myshim, private to the user.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(u.xdg().join("myshim")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), u.uid);
    assert_no_leftovers(&b);
}

/// `myshim check` as an ordinary user: its subordinate ranges, user
/// namespaces allowed, and whether its cgroup is delegated.
#[test]
fn check_as_a_user() {
    if !ready() {
        return;
    }
    let u = User::new();
    let out = u.myshim(&["check", "--format", "json"]);
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap();
    let ids = by_name("subordinate ids");
    assert_eq!(ids["level"], "ok", "{ids}");
    assert!(
        ids["found"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}: uids ", u.name)),
        "{ids}"
    );
    assert_eq!(by_name("user namespaces")["level"], "ok");
    let delegation = by_name("cgroup delegation");
    assert_ne!(
        delegation["found"], "not needed: running with real privileges",
        "{delegation}"
    );
}

/// The init of a created container is not dumpable yet, so a rootless
/// runtime cannot read its namespaces: `delete --force` must still kill it
/// and remove the container.
#[test]
fn delete_force_of_a_created_container() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle("bc", &["sleep", "1000"]);
    u.ok(&["create", "-b", b.to_str().unwrap(), "c1"]);
    let state: Value = serde_json::from_str(&u.ok(&["state", "c1"])).unwrap();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().unwrap() as i32;
    u.ok(&["delete", "--force", "c1"]);
    let e = u.fails(&["state", "c1"]);
    assert!(e.contains("does not exist"), "{e}");
    let alive = Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"));
    assert!(!alive, "the init {pid} of the deleted container still runs");
    assert_no_leftovers(&b);
}

/// Rootless Podman runs the runtime as uid 0 of its user namespace with no
/// `--root` and no `USER`: the default root is then $XDG_RUNTIME_DIR/myshim
/// (runc's rule), not /run/myshim, which that uid 0 may not write.
#[test]
fn root_of_a_user_namespace_defaults_to_xdg_runtime_dir() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle("b5", &["id", "-u"]);
    // The container's ids map onto the namespace's own uid 0.
    u.edit(&b, |c| {
        for m in ["uidMappings", "gidMappings"] {
            c["linux"][m][0]["hostID"] = json!(0);
        }
    });
    std::fs::create_dir_all(u.xdg()).unwrap();
    u.chown(&u.xdg());
    let mut cmd = u.account.command("/usr/bin/unshare");
    cmd.args(["--user", "--map-root-user", "--"])
        .arg(&u.myshim)
        .args(["run", "-b", b.to_str().unwrap(), "r5"])
        .env_remove("USER")
        .env("XDG_RUNTIME_DIR", u.xdg());
    let out = output_via_files(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    assert!(u.xdg().join("myshim").is_dir(), "the state went elsewhere");
    assert!(!u.xdg().join("myshim/r5").exists(), "run left its state");
    assert_no_leftovers(&b);
}

#[test]
fn lifecycle_with_id_ranges_through_newuidmap() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle("b2", &["sleep", "100"]);
    let start = u.subid_start("/etc/subuid");
    let gid_start = u.subid_start("/etc/subgid");
    u.edit(&b, |c| {
        c["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": u.uid, "size": 1}, {"containerID": 1, "hostID": start, "size": 65536}]);
        c["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": u.gid, "size": 1}, {"containerID": 1, "hostID": gid_start, "size": 65536}]);
    });
    let bs = b.to_str().unwrap();
    u.ok(&["create", "-b", bs, "c2"]);
    assert!(u.ok(&["list"]).contains("created"));
    u.ok(&["start", "c2"]);
    let out = u.ok(&[
        "exec",
        "-u",
        "1000:1000",
        "c2",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["1000", "0", &u.uid.to_string(), "1", "1", &start.to_string(), "65536"],
        "{out}"
    );
    let pids: Vec<i32> = serde_json::from_str(&u.ok(&["ps", "-f", "json", "c2"])).unwrap();
    assert_eq!(pids.len(), 1);
    let owner = std::fs::metadata(format!("/proc/{}", pids[0]))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(owner, u.uid, "container root is the user on the host");
    u.ok(&["kill", "c2", "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !u.ok(&["list"]).contains("stopped") {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    u.ok(&["delete", "c2"]);
    assert!(!u.xdg().join("myshim/c2").exists());
    assert_no_leftovers(&b);
}

#[test]
fn mapping_the_user_may_not_use_is_refused() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle("b3", &["true"]);
    // Host uid 0 is not the user's to map.
    u.edit(&b, |c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    });
    let e = u.fails(&["create", "-b", b.to_str().unwrap(), "c3"]);
    assert!(e.contains("newuidmap") || e.contains("uid_map"), "{e}");
    assert!(!u.xdg().join("myshim/c3").exists());
    assert_no_leftovers(&b);
}

#[test]
fn missing_newuidmap_is_named() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle("b4", &["true"]);
    u.edit(&b, |c| {
        c["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": u.uid, "size": 1}, {"containerID": 1, "hostID": 300000, "size": 10}]);
    });
    let out = u
        .command(&["create", "-b", b.to_str().unwrap(), "c4"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("newuidmap not found") && e.contains("uidmap"), "{e}");
    assert!(!u.xdg().join("myshim/c4").exists());
    assert_no_leftovers(&b);
}

#[test]
fn unwritable_root_is_named() {
    if !ready() {
        return;
    }
    let u = User::new();
    let b = u.bundle("b5", &["true"]);
    let e = u.fails(&["--root", "/root/not-yours", "create", "-b", b.to_str().unwrap(), "c5"]);
    assert!(e.contains("/root/not-yours"), "{e}");
    assert_no_leftovers(&b);
}

/// A cgroup on the host that belongs to the user (as a delegated subtree
/// would), in the pids hierarchy on v1; removed on drop.
struct UserCgroup {
    /// The path below /sys/fs/cgroup, as the container sees it too.
    rel: PathBuf,
}

impl UserCgroup {
    fn new(u: &User) -> UserCgroup {
        let name = format!("myshim-rootless-{}", u.name);
        let rel = if myshim_runtime::cgroups::is_unified_host() {
            PathBuf::from(name)
        } else {
            Path::new("pids").join(name)
        };
        let cg = UserCgroup { rel };
        std::fs::create_dir(cg.host()).unwrap();
        u.chown(&cg.host());
        cg
    }

    fn host(&self) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(&self.rel)
    }
}

impl Drop for UserCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.host().join("escape"));
        let _ = std::fs::remove_dir(self.host());
    }
}

type ConfigEdit = fn(&mut Value);

/// CVE-2023-25809: a rootless container that has no cgroup of its own must
/// not write to the cgroups its user owns on the host, whether the config
/// asks for /sys/fs/cgroup read-write or leaves it to the recursive bind of
/// /sys.
#[test]
fn host_cgroups_stay_read_only_in_a_rootless_container() {
    if !ready() || myshim_runtime::cgroups::is_unified_host() {
        return;
    }
    let u = User::new();
    let cg = UserCgroup::new(&u);
    let limit = std::fs::read_to_string(cg.host().join("pids.max")).unwrap();
    let inside = Path::new("/sys/fs/cgroup").join(&cg.rel);
    let script = format!(
        "mkdir {0}/escape && echo made-a-cgroup; echo 1 > {0}/pids.max && echo wrote-a-limit; true",
        inside.display()
    );
    let variants: [(&str, ConfigEdit); 2] = [
        ("cgrw", |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            let cgroup = mounts.iter_mut().find(|m| m["type"] == "cgroup").unwrap();
            cgroup["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
        }),
        ("cgnone", |c| {
            c["mounts"].as_array_mut().unwrap().retain(|m| m["type"] != "cgroup")
        }),
    ];
    for (id, edit) in variants {
        let b = u.bundle(id, &["sh", "-c", &script]);
        u.edit(&b, edit);
        let out = u.ok(&["run", "-b", b.to_str().unwrap(), id]);
        assert!(
            !out.contains("made-a-cgroup") && !out.contains("wrote-a-limit"),
            "{id}: {out}"
        );
        assert!(
            !cg.host().join("escape").exists(),
            "{id}: a cgroup was made on the host"
        );
        let now = std::fs::read_to_string(cg.host().join("pids.max")).unwrap();
        assert_eq!(now, limit, "{id}: the host cgroup's limit changed");
        assert_no_leftovers(&b);
    }
}

/// A cgroup v2 directory of the test's own at the top of the host's tree,
/// with a leaf `leader` where the user's commands start. Delegated to a
/// user the way systemd delegates (the directory and its cgroup.procs,
/// cgroup.subtree_control and cgroup.threads are the user's, its limit
/// files stay root's), or left to root. Everything in it is killed and
/// removed on drop.
struct HostCgroup {
    dir: PathBuf,
}

const DELEGATED_FILES: [&str; 3] = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];

impl HostCgroup {
    fn new(name: &str, delegate_to: Option<&User>) -> HostCgroup {
        let cg = HostCgroup {
            dir: Path::new("/sys/fs/cgroup").join(name),
        };
        std::fs::create_dir(&cg.dir).unwrap();
        std::fs::create_dir(cg.dir.join("leader")).unwrap();
        if let Some(u) = delegate_to {
            let owner = Some(nix::unistd::Uid::from_raw(u.uid));
            let mut paths = vec![
                cg.dir.clone(),
                cg.dir.join("leader"),
                cg.dir.join("leader/cgroup.procs"),
            ];
            paths.extend(DELEGATED_FILES.iter().map(|f| cg.dir.join(f)));
            for p in paths {
                nix::unistd::chown(&p, owner, None).unwrap();
            }
        }
        cg
    }

    /// `cmd` starts in the leader cgroup (moved there before it execs).
    fn start_in_leader(&self, cmd: &mut Command) {
        use std::os::unix::{ffi::OsStringExt, process::CommandExt};
        let procs = std::ffi::CString::new(self.dir.join("leader/cgroup.procs").into_os_string().into_vec()).unwrap();
        // SAFETY: open/write/close between fork and exec are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

impl Drop for HostCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.push(self.dir.clone());
        for d in dirs {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::fs::remove_dir(&d).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

impl User {
    /// `myshim ARGS` as the user, started in `cg`'s leader cgroup.
    fn ok_in(&self, cg: &HostCgroup, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cg.start_in_leader(&mut cmd);
        let out = output_via_files(&mut cmd);
        assert!(
            out.status.success(),
            "myshim {args:?} as {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn cgroup_v2_ready() -> bool {
    let v2 = myshim_runtime::cgroups::is_unified_host();
    if !v2 {
        eprintln!("skipped: cgroup v2 only (contrib/test-vm.sh runs it in a VM)");
    }
    ready() && v2
}

/// A delegated cgroup v2 subtree: the user's container gets a cgroup in it
/// with its limits, read back on the host and from inside the container
/// (its cgroup namespace is rooted there), for the init and an exec'd
/// process; delete removes it.
#[test]
fn delegated_cgroup_v2_subtree_gets_the_limits() {
    if !cgroup_v2_ready() {
        return;
    }
    let u = User::new();
    let cg = HostCgroup::new(&format!("myshim-delegated-{}", u.name), Some(&u));
    let b = u.bundle("dg", &["sleep", "1000"]);
    let rel = format!("/{}/dg", cg.dir.file_name().unwrap().to_string_lossy());
    u.edit(&b, |c| {
        c["linux"]["cgroupsPath"] = json!(rel);
        c["linux"]["resources"] = json!({"pids": {"limit": 20}, "memory": {"limit": 67_108_864}});
    });
    u.ok_in(&cg, &["create", "-b", b.to_str().unwrap(), "dg"]);
    u.ok_in(&cg, &["start", "dg"]);
    assert_eq!(cg.read("dg/pids.max").trim(), "20");
    assert_eq!(cg.read("dg/memory.max").trim(), "67108864");
    let state: Value = serde_json::from_str(&u.ok(&["state", "dg"])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(host_view.trim(), format!("0::{rel}"));
    let script = "cat /proc/self/cgroup /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max";
    let out = u.ok_in(&cg, &["exec", "dg", "sh", "-c", script]);
    let inside = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        inside.split_whitespace().collect::<Vec<_>>(),
        ["0::/", "20", "67108864"],
        "{inside}"
    );
    u.ok_in(&cg, &["delete", "--force", "dg"]);
    assert!(!cg.dir.join("dg").exists(), "the container's cgroup is left");
    assert_no_leftovers(&b);
}

/// Without delegation (the user's commands run in a cgroup of root's), the
/// container runs in the caller's cgroup, says so once at debug level, and
/// sees the cgroup tree read-only: through cgroup2 in its own cgroup
/// namespace (the template), or through the host's tree bound read-only
/// when it has none (as containerd's default spec).
#[test]
fn without_delegation_a_rootless_container_runs_without_a_cgroup() {
    if !cgroup_v2_ready() {
        return;
    }
    let u = User::new();
    let cg = HostCgroup::new(&format!("myshim-undelegated-{}", u.name), None);
    let script = "cat /proc/self/cgroup; touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup-ro";
    let own_cgroupns = "0::/ cgroup-ro".to_string();
    let no_cgroupns = format!("0::/{}/leader cgroup-ro", cg.dir.file_name().unwrap().to_string_lossy());
    for (id, keep_cgroupns, expected) in [("ns", true, own_cgroupns), ("nons", false, no_cgroupns)] {
        let b = u.bundle(id, &["sh", "-c", script]);
        u.edit(&b, |c| {
            c["linux"]["resources"] = json!({"pids": {"limit": 20}});
            if !keep_cgroupns {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "cgroup");
            }
        });
        let out = u.ok_in(&cg, &["--debug", "run", "-b", b.to_str().unwrap(), id]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.split_whitespace().collect::<Vec<_>>().join(" "),
            expected,
            "{id}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr
            .lines()
            .filter(|l| l.contains("runs without its own cgroup"))
            .count();
        assert_eq!(said, 1, "{id}: {stderr}");
        assert!(!Path::new("/sys/fs/cgroup/myshim").join(id).exists(), "{id}");
        assert_no_leftovers(&b);
    }
}
