//! The state directory: one directory per container under `--root`, holding
//! state.json, the exec fifo, and serving as the container's lock.

use crate::spec::Spec;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const OCI_VERSION: &str = "1.2.0";
pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// The default `--root`: /run/myshim for root, $XDG_RUNTIME_DIR/myshim for
/// an ordinary user and for root of a user's namespace (rootlesskit).
pub fn default_root() -> PathBuf {
    if !nix::unistd::geteuid().is_root() || crate::rootless::root_of_users_namespace() {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("myshim");
        }
    }
    PathBuf::from("/run/myshim")
}

/// Container ids name a directory: no `/`, no `.`/`..`, nothing empty or odd.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || "._-+:@".contains(c));
    if id.is_empty() || id == "." || id == ".." || id.contains("..") || !ok_chars || id.len() > 1024 {
        bail!("invalid container id {id:?}: use letters, digits and . _ - + : @ (no '/' or '..')");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// What state.json keeps about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// /proc/PID/stat start time: a reused pid has another one.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub config: Spec,
    /// Where `create` put the container's cgroup: resolved once, there.
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// Without a mount namespace: what the container's setup mounted in
    /// the runtime's mount table, unmounted at delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_mounts: Vec<PathBuf>,
}

/// The OCI state, as `state` prints it and hooks read it on stdin.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

/// One container's directory, locked for as long as this value lives.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: OwnedFd,
}

impl ContainerDir {
    /// Makes the directory for a new container; fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        // Private to its owner, as runc's.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(root)
            .with_context(|| format!("creating state root {}", root.display()))?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!("container {id:?} already exists"),
            Err(e) => return Err(e).with_context(|| format!("creating state directory {}", path.display())),
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o711)).ok();
        Self::lock(id, path)
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.join(STATE_FILE).exists() {
            bail!("container {id:?} does not exist");
        }
        Self::lock(id, path)
    }

    fn lock(id: &str, path: PathBuf) -> Result<ContainerDir> {
        let fd = crate::safe_path::open_dir(&path)?;
        // O_PATH fds cannot be flocked: reopen the directory for reading.
        let dir = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("locking {}", path.display()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: dir.into(),
        })
    }

    /// The lock's fd number, for a forked child to close: a child holding a
    /// copy would keep the container locked.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    pub fn save(&self, saved: &Saved) -> Result<()> {
        write_atomic(&self.path.join(STATE_FILE), &serde_json::to_vec(saved)?)
    }

    pub fn load(&self) -> Result<Saved> {
        let path = self.path.join(STATE_FILE);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Removes the directory; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path).with_context(|| format!("removing {}", self.path.display()))
    }
}

impl Saved {
    pub fn status(&self, dir: &Path) -> Status {
        match process_state(self.pid, self.pid_start_time) {
            None => Status::Stopped,
            Some(_) if self.cgroup().is_some_and(|c| c.is_frozen()) => Status::Paused,
            Some(_) if dir.join(EXEC_FIFO).exists() => Status::Created,
            Some(_) => Status::Running,
        }
    }

    /// The container's cgroup, if it has one (still).
    pub fn cgroup(&self) -> Option<&crate::cgroups::Cgroup> {
        self.cgroup.as_ref().filter(|c| c.exists())
    }

    pub fn oci_state<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid: if status == Status::Stopped { 0 } else { self.pid },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.config.annotations,
        }
    }
}

/// The start time of a live process (field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|(_, t)| t)
}

/// The state letter of `pid` if it is alive and is the process that started
/// at `start_time`; None for a dead, zombie or reused pid.
pub fn process_state(pid: i32, start_time: u64) -> Option<char> {
    let (state, t) = stat_fields(pid)?;
    (t == start_time && state != 'Z' && state != 'X').then_some(state)
}

fn stat_fields(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Writes a file so that readers see the old or the new contents, never a
/// part: a temporary file beside it, renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Every container under `root`, by id, skipping half-made directories.
pub fn list(root: &Path) -> Result<Vec<(String, Saved)>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut out = vec![];
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        let Ok(text) = std::fs::read(entry.path().join(STATE_FILE)) else {
            continue;
        };
        if let Ok(saved) = serde_json::from_slice::<Saved>(&text) {
            out.push((id, saved));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The name of `uid` from /etc/passwd (read directly: the binary is static
/// and glibc's NSS does not work there), or the number.
pub fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Now as RFC 3339 with nanoseconds, UTC, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["abc", "a-b_c.d", "x1:2@3+4"] {
            validate_id(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a..b", "sp ace", "new\nline"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn duplicate_id_refused() {
        let root = tempfile::tempdir().unwrap();
        let first = ContainerDir::create(root.path(), "c1").unwrap();
        let e = ContainerDir::create(root.path(), "c1").err().unwrap();
        assert!(e.to_string().contains("already exists"));
        drop(first);
    }

    #[test]
    fn own_start_time_matches_and_other_does_not() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert!(process_state(me, t).is_some());
        assert!(process_state(me, t + 1).is_none());
        assert!(process_state(-1, 0).is_none());
    }

    #[test]
    fn root_is_named() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z') && s.as_bytes()[10] == b'T');
    }
}
