//! linux.cgroupsPath and linux.resources: one cgroup per container, on v1
//! (one directory per hierarchy; hybrid hosts count as v1) or v2 (one
//! directory in the unified tree). v1.rs and v2.rs turn resources into files.

mod devices_bpf;
mod oom;
mod stats;
mod v1;
mod v2;

pub use oom::OomWatch;
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, MemoryEvents, Pids, Stats, Throttling,
};

use crate::resources::Resources;
use crate::spec::Linux;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// True when /sys/fs/cgroup itself is cgroup2 (a v2-only host).
pub fn is_unified_host() -> bool {
    nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// A container's cgroup: the directories that hold it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    /// v2: one directory. v1: (controllers of the hierarchy, directory) each.
    dirs: Vec<(String, PathBuf)>,
    unified: bool,
}

/// Writes `value` to `dir/file`, naming both on failure.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The page sizes the kernel has, in the cgroup files' names ("2MB",
/// "1GB"), from `hugepages-2048kB` style directories.
fn kernel_hugepage_sizes(sysfs: &Path) -> Vec<String> {
    let mut kb: Vec<u64> = std::fs::read_dir(sysfs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kb.sort_unstable();
    kb.into_iter()
        .map(|k| match k {
            k if k % (1 << 20) == 0 => format!("{}GB", k >> 20),
            k if k % (1 << 10) == 0 => format!("{}MB", k >> 10),
            k => format!("{k}KB"),
        })
        .collect()
}

/// A hugepageLimits page size the kernel does not have names no file to
/// write: say which sizes there are.
fn check_hugepage_sizes(limits: &[crate::resources::HugepageLimit], sysfs: &Path) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let sizes = kernel_hugepage_sizes(sysfs);
    for l in limits {
        if !sizes.contains(&l.page_size) {
            bail!(
                "linux.resources.hugepageLimits: page size {:?} is not one this kernel has ({})",
                l.page_size,
                if sizes.is_empty() {
                    "none".to_string()
                } else {
                    sizes.join(", ")
                }
            );
        }
    }
    Ok(())
}

/// The relative cgroup path for a container: cgroupsPath, or /myshim/ID.
pub fn container_path(linux: &Linux, id: &str) -> Result<PathBuf> {
    match linux.cgroups_path.as_deref() {
        None | Some("") => Ok(PathBuf::from("/myshim").join(id)),
        Some(p) if !p.starts_with('/') && p.split(':').count() == 3 => bail!(
            "linux.cgroupsPath {p:?} is in the systemd form (slice:prefix:name), but the systemd cgroup driver \
             is not available here (no systemd reachable over D-Bus)"
        ),
        Some(p) if p.split('/').any(|c| c == "..") => bail!("linux.cgroupsPath {p:?}: '..' is not allowed"),
        // Relative paths hang below the runtime's own cgroup, as in runc.
        Some(p) if !p.starts_with('/') => Ok(PathBuf::from("@self").join(p)),
        Some(p) => Ok(PathBuf::from(p)),
    }
}

/// Each v1 hierarchy mounted under /sys/fs/cgroup: (controllers, mount point).
/// Besides those with controllers, the `name=systemd` one (as
/// "name=systemd") and a hybrid host's cgroup2 (as ""), so the container's
/// processes are placed there too, as runc does.
fn v1_hierarchies() -> Result<Vec<(String, PathBuf)>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut out: Vec<(String, PathBuf)> = vec![];
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        let fstype = r.next();
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        if fstype == Some("cgroup2") {
            if Path::new(mount_point).parent() == Some(Path::new(CGROUP_ROOT)) && !out.iter().any(|(c, _)| c.is_empty())
            {
                out.push((String::new(), PathBuf::from(mount_point)));
            }
            continue;
        }
        if fstype != Some("cgroup") {
            continue;
        }
        let options = r.nth(1).unwrap_or_default();
        let controllers: Vec<&str> = options
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime") && !o.starts_with("name=")
            })
            .collect();
        if !mount_point.starts_with(CGROUP_ROOT) {
            continue;
        }
        if !controllers.is_empty() {
            out.push((controllers.join(","), PathBuf::from(mount_point)));
        } else if options.split(',').any(|o| o == "name=systemd") && !out.iter().any(|(c, _)| c == "name=systemd") {
            out.push(("name=systemd".to_string(), PathBuf::from(mount_point)));
        }
    }
    Ok(out)
}

/// Our own cgroup in the hierarchy with `controllers` (v2: "").
fn own_cgroup(controllers: &str) -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let matches = if controllers.is_empty() {
            list.is_empty()
        } else {
            list.split(',').any(|c| controllers.split(',').any(|x| x == c))
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

fn resolve(mount: &Path, controllers: &str, path: &Path) -> PathBuf {
    let relative = match path.strip_prefix("@self") {
        Ok(rest) => own_cgroup(controllers).join(rest),
        Err(_) => path.to_path_buf(),
    };
    mount.join(relative.strip_prefix("/").unwrap_or(&relative))
}

impl Cgroup {
    /// Where the container's cgroup is (nothing is created yet).
    pub fn for_container(linux: &Linux, id: &str) -> Result<Cgroup> {
        let path = container_path(linux, id)?;
        if is_unified_host() {
            return Ok(Cgroup {
                dirs: vec![(String::new(), resolve(Path::new(CGROUP_ROOT), "", &path))],
                unified: true,
            });
        }
        let dirs = v1_hierarchies()?
            .into_iter()
            .map(|(controllers, mount)| {
                let dir = resolve(&mount, &controllers, &path);
                (controllers, dir)
            })
            .collect();
        Ok(Cgroup { dirs, unified: false })
    }

    pub fn is_v2(&self) -> bool {
        self.unified
    }

    /// The directory of the hierarchy that has `controller` (v2: the one).
    pub(crate) fn dir(&self, controller: &str) -> Option<&Path> {
        if self.unified {
            return self.dirs.first().map(|(_, d)| d.as_path());
        }
        self.dirs
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == controller))
            .map(|(_, d)| d.as_path())
    }

    /// The existing sub-cgroup(s) `exec --cgroup` names, in runc's form:
    /// one `PATH` for every hierarchy, or `CONTROLLER[,CONTROLLER]:PATH`
    /// per hierarchy (v1; a hierarchy not named stays the container's).
    pub fn sub(&self, specs: &[String]) -> Result<Cgroup> {
        let mut by_controller: Vec<(&str, &str)> = vec![];
        for spec in specs {
            match spec.split_once(':') {
                Some((controllers, path)) => {
                    for c in controllers.split(',') {
                        if c.is_empty() {
                            bail!("invalid --cgroup argument: {spec} (empty <controller> prefix)");
                        }
                        if by_controller.iter().any(|(x, _)| *x == c) {
                            bail!("invalid --cgroup argument(s): controller {c} specified multiple times");
                        }
                        by_controller.push((c, path));
                    }
                }
                None if specs.len() == 1 => by_controller.push(("", spec)),
                None => bail!("invalid --cgroup argument: {spec} (missing <controller>: prefix)"),
            }
        }
        let mut dirs = self.dirs.clone();
        for (controller, path) in by_controller {
            let rel = Path::new(path.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                bail!("--cgroup {path:?}: a sub-cgroup path has no '..' or '.'");
            }
            let mut matched = false;
            for (controllers, dir) in dirs.iter_mut() {
                let hit = controller.is_empty()
                    || self.unified
                    || controllers
                        .split(',')
                        .any(|c| c == controller || c == format!("name={controller}"));
                if hit {
                    matched = true;
                    *dir = dir.join(rel);
                    if !dir.is_dir() {
                        bail!("--cgroup {path:?}: {} does not exist", dir.display());
                    }
                }
            }
            if !matched {
                bail!("--cgroup {controller}:{path}: the container has no {controller} hierarchy");
            }
        }
        Ok(Cgroup {
            dirs,
            unified: self.unified,
        })
    }

    pub fn exists(&self) -> bool {
        self.dirs.first().is_some_and(|(_, d)| d.is_dir())
    }

    /// Makes the directories, recording in `made` each one that did not
    /// exist; v2 enables the controllers on the way down.
    pub fn create(&self, made: &mut Made) -> Result<()> {
        for (_, dir) in &self.dirs {
            made.mkdir_all(dir)?;
        }
        if self.unified {
            v2::enable_controllers(&self.dirs[0].1)?;
        } else if let Some(cpuset) = self.dir("cpuset") {
            v1::inherit_cpuset(cpuset)?;
        }
        Ok(())
    }

    pub fn apply(&self, resources: &Resources) -> Result<()> {
        check_hugepage_sizes(&resources.hugepage_limits, Path::new("/sys/kernel/mm/hugepages"))?;
        if self.unified {
            v2::apply(&self.dirs[0].1, resources)?;
            if resources.devices.is_empty() {
                return Ok(());
            }
            if !crate::rootless::privileged() {
                log::debug!("device rules need a BPF program, which only the host's root may load: not applied");
                return Ok(());
            }
            let rules = crate::resources::effective_device_rules(&resources.devices);
            devices_bpf::attach(&self.dirs[0].1, &rules)
        } else {
            v1::apply(self, resources)
        }
    }

    /// New limits for a live container. On v2 the device rules are a BPF
    /// program fixed at create: another would stack on it, so they stay.
    pub fn update(&self, resources: &Resources) -> Result<()> {
        let mut applied = resources.clone();
        if self.unified {
            applied.devices.clear();
        }
        self.apply(&applied)
    }

    /// Moves the calling process, which must have one thread, into its v1
    /// hierarchies. A process moving itself through `tasks` (pid 0) skips
    /// the kernel's global threadgroup lock, whose write side waits for an
    /// RCU grace period (6-20 ms here when containers start seconds apart);
    /// writing a pid to cgroup.procs, as [`Cgroup::add_pid`] does, takes it.
    /// cgroup2 (v2, or a hybrid host's unified hierarchy, which has no
    /// `tasks`) needs neither: clone3 places the child (CLONE_INTO_CGROUP
    /// with [`Cgroup::v2_dir_fd`]).
    pub fn join_self(&self) -> Result<()> {
        if self.unified {
            return Ok(());
        }
        for (_, dir) in self.dirs.iter().filter(|(controllers, _)| !controllers.is_empty()) {
            write(dir, "tasks", "0")?;
        }
        Ok(())
    }

    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.dirs {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// An fd of the cgroup2 directory (v2's, or a hybrid host's unified
    /// one), for clone3's CLONE_INTO_CGROUP.
    pub fn v2_dir_fd(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        let cgroup2 = if self.unified {
            self.dirs.first()
        } else {
            self.dirs.iter().find(|(controllers, _)| controllers.is_empty())
        };
        let Some((_, dir)) = cgroup2 else {
            return Ok(None);
        };
        let f = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        Ok(Some(f.into()))
    }

    /// Every process in the cgroup and in the cgroups below it.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.procs_dir() else {
            return Ok(vec![]);
        };
        let mut pids = tree_pids(dir)?;
        pids.sort();
        Ok(pids)
    }

    /// The directory whose tree lists the container's processes: v2's one;
    /// on v1 the pids hierarchy's, else the first.
    fn procs_dir(&self) -> Option<&Path> {
        self.dir(if self.unified { "" } else { "pids" })
            .or(self.dirs.first().map(|(_, d)| d.as_path()))
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if self.unified {
            v2::freeze(&self.dirs[0].1, frozen)
        } else {
            v1::freeze(self.dir("freezer").context("no freezer hierarchy is mounted")?, frozen)
        }
    }

    pub fn is_frozen(&self) -> bool {
        if self.unified {
            v2::is_frozen(&self.dirs[0].1)
        } else {
            self.dir("freezer").is_some_and(v1::is_frozen)
        }
    }

    /// Kills what is left in the cgroup and below it, and removes its
    /// directories with the cgroups made inside (by a workload with a
    /// delegated cgroup namespace, say), deepest first.
    /// Takes back a create that failed later on: a cgroup whose every
    /// directory this create made holds only what the create started (a
    /// hook of the init, say), so it is destroyed; one that existed before
    /// may hold anyone's processes, so only what was made goes, while empty.
    pub fn undo_create(&self, made: &Made) {
        if self.dirs.iter().all(|(_, dir)| made.contains(dir)) {
            let _ = self.destroy();
        } else {
            made.remove_empty();
        }
    }

    pub fn destroy(&self) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        let _ = self.freeze(false);
        self.kill_all()?;
        for (_, dir) in &self.dirs {
            for cgroup in subtree(dir)? {
                remove_dir_retrying(&cgroup)?;
            }
            remove_shared_parent(dir);
        }
        Ok(())
    }

    /// SIGKILL to every process in the cgroup, returning once it is empty:
    /// on v2 through cgroup.kill (Linux >= 5.14), else pid by pid.
    fn kill_all(&self) -> Result<()> {
        if self.unified && v2::kill(&self.dirs[0].1)? {
            return v2::wait_unpopulated(&self.dirs[0].1);
        }
        self.procs_dir().map_or(Ok(()), kill_listed)
    }
}

/// The cgroup directories one [`Cgroup::create`] made, in the order made:
/// what a create that failed may take back. A directory that existed
/// before (a cgroupsPath shared with others, a delegated subtree) is not in
/// it.
#[derive(Debug, Default)]
pub struct Made(Vec<PathBuf>);

impl Made {
    /// `create_dir_all`, one level at a time, remembering the levels made.
    fn mkdir_all(&mut self, dir: &Path) -> Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.is_dir()).collect();
        for level in missing.into_iter().rev() {
            match std::fs::create_dir(level) {
                Ok(()) => self.0.push(level.to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating cgroup {}", level.display())),
            }
        }
        Ok(())
    }

    fn contains(&self, dir: &Path) -> bool {
        self.0.iter().any(|d| d == dir)
    }

    /// Removes what was made, deepest first, where it is still empty (no
    /// process, no child cgroup), killing nothing: the clean-up after a
    /// create that failed, where a process in the cgroup may be anyone's.
    pub fn remove_empty(&self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The shared /myshim parent goes with its last container.
fn remove_shared_parent(dir: &Path) {
    if let Some(parent) = dir.parent().filter(|p| p.file_name().is_some_and(|n| n == "myshim")) {
        let _ = std::fs::remove_dir(parent);
    }
}

/// `dir` and every cgroup below it, deepest first: the order to remove
/// them in. Nothing when `dir` is gone.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading cgroup {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("reading cgroup {}", dir.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out)?;
            }
        }
        out.push(dir.to_path_buf());
        Ok(())
    }
    let mut out = vec![];
    walk(dir, &mut out)?;
    Ok(out)
}

/// The pids in cgroup.procs of `dir` and of every cgroup below it.
fn tree_pids(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = vec![];
    for cgroup in subtree(dir)? {
        match std::fs::read_to_string(cgroup.join("cgroup.procs")) {
            Ok(text) => pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
            // Removed since the walk.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", cgroup.join("cgroup.procs").display())),
        }
    }
    Ok(pids)
}

/// SIGKILLs each pid listed in `dir`'s tree until none is left; the way to
/// empty a v1 cgroup, or a v2 one on kernels without cgroup.kill.
fn kill_listed(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = tree_pids(dir)?;
        if pids.is_empty() {
            return Ok(());
        }
        for pid in &pids {
            // SAFETY: plain kill of processes in the container's cgroup.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        if Instant::now() > deadline {
            bail!("processes {pids:?} are left in cgroup {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// rmdir of a cgroup can fail with EBUSY while the kernel finishes with the
/// last exited task.
fn remove_dir_retrying(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugepage_sizes_are_the_kernels() {
        let sysfs = tempfile::tempdir().unwrap();
        for d in ["hugepages-2048kB", "hugepages-1048576kB", "hugepages-64kB"] {
            std::fs::create_dir(sysfs.path().join(d)).unwrap();
        }
        assert_eq!(kernel_hugepage_sizes(sysfs.path()), ["64KB", "2MB", "1GB"]);
        let limit = |size: &str| crate::resources::HugepageLimit {
            page_size: size.into(),
            limit: 0,
        };
        check_hugepage_sizes(&[limit("2MB"), limit("1GB")], sysfs.path()).unwrap();
        let e = check_hugepage_sizes(&[limit("3MB")], sysfs.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"3MB\"") && e.contains("64KB, 2MB, 1GB"), "{e}");
    }

    fn linux(path: Option<&str>) -> Linux {
        Linux {
            cgroups_path: path.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn default_absolute_relative_and_systemd_paths() {
        assert_eq!(container_path(&linux(None), "c1").unwrap(), PathBuf::from("/myshim/c1"));
        assert_eq!(
            container_path(&linux(Some("/a/b")), "c1").unwrap(),
            PathBuf::from("/a/b")
        );
        assert_eq!(
            container_path(&linux(Some("a/b")), "c1").unwrap(),
            PathBuf::from("@self/a/b")
        );
        let e = container_path(&linux(Some("system.slice:myshim:c1")), "c1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("systemd"), "{e}");
        assert!(container_path(&linux(Some("/a/../../etc")), "c1").is_err());
    }

    /// A cgroup of this test's own with a `sleep` in it (root only; v1: in
    /// the pids hierarchy).
    fn cgroup_with_sleeper(name: &str) -> Option<(PathBuf, std::process::Child)> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        let base = if is_unified_host() {
            PathBuf::from(CGROUP_ROOT)
        } else {
            Path::new(CGROUP_ROOT).join("pids")
        };
        let dir = base.join(format!("myshim-unit-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let child = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
        write(&dir, "cgroup.procs", &child.id().to_string()).unwrap();
        Some((dir, child))
    }

    /// `kill` empties a cgroup with a sleeper in it: the sleeper dies by
    /// SIGKILL (and is gone even when `kill` fails).
    fn assert_kill_empties(name: &str, kill: impl FnOnce(&Path) -> Result<()>) {
        let Some((dir, mut child)) = cgroup_with_sleeper(name) else {
            return;
        };
        let result = kill(&dir);
        if result.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let _ = std::fs::remove_dir(&dir);
        result.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }

    /// The fallback for v2 kernels without cgroup.kill is the v1 way.
    #[test]
    fn listed_pids_are_killed_until_the_cgroup_is_empty() {
        assert_kill_empties("listed", kill_listed);
    }

    #[test]
    fn cgroup_kill_empties_a_v2_cgroup() {
        if !is_unified_host() {
            eprintln!("skipped: cgroup.kill is cgroup v2 (this host is v1)");
            return;
        }
        assert_kill_empties("kill", |dir| {
            let used = v2::kill(dir)?;
            assert!(used, "no cgroup.kill on this kernel");
            v2::wait_unpopulated(dir)
        });
    }

    #[test]
    fn relative_paths_resolve_under_our_cgroup() {
        let own = own_cgroup("");
        let dir = resolve(Path::new("/sys/fs/cgroup/unified"), "", Path::new("@self/x"));
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/unified")
                .join(own.strip_prefix("/").unwrap())
                .join("x")
        );
    }
}
