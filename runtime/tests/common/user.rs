//! A throwaway user for rootless tests: made with useradd, given
//! subordinate uid/gid ranges and a temp dir of its own, and removed with
//! its ranges on drop. Shared by the runtime's rootless tests and the
//! shim's rootless containerd test (included by path).
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The size of the subordinate range each user gets.
pub const SUBID_RANGE: u32 = 65_536;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// useradd/userdel and our edits of /etc/subuid and /etc/subgid, one at a
/// time: tests run in parallel threads (and test binaries side by side),
/// and the files are rewritten whole. An flock on /etc/subuid covers both.
struct Accounts(std::fs::File);

impl Accounts {
    fn lock() -> Accounts {
        let f = std::fs::File::open("/etc/subuid")
            .or_else(|_| std::fs::File::create("/etc/subuid"))
            .expect("/etc/subuid");
        // SAFETY: flock on an fd we own; released when it is closed.
        assert_eq!(
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) },
            0,
            "flock /etc/subuid"
        );
        Accounts(f)
    }
}

pub struct ThrowawayUser {
    pub name: String,
    pub uid: u32,
    /// Its primary group (useradd makes none of its own without login.defs).
    pub gid: u32,
    /// Where the user's files go (0755, the user's).
    pub dir: tempfile::TempDir,
}

impl ThrowawayUser {
    pub fn new() -> ThrowawayUser {
        let name = format!("msrl{}x{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
        let accounts = Accounts::lock();
        let out = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        // Ranges that useradd may not have added: take a block by uid.
        let start = 300_000 + (uid % 1000) * SUBID_RANGE;
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if !text.lines().any(|l| l.starts_with(&format!("{name}:"))) {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(file)
                    .unwrap();
                std::io::Write::write_all(&mut f, format!("{name}:{start}:{SUBID_RANGE}\n").as_bytes()).unwrap();
            }
        }
        drop(accounts);
        let dir = tempfile::Builder::new().prefix("myshim-rootless").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let user = ThrowawayUser { name, uid, gid, dir };
        user.chown(user.dir.path());
        user
    }

    /// Gives `path` (recursively) to the user.
    pub fn chown(&self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A file or directory in the user's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `program` as the user (by path: a test may give the user a PATH
    /// without it), in the user's dir, stdin from /dev/null.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
            "--",
        ])
        .arg(program)
        .current_dir(self.dir.path())
        .stdin(Stdio::null());
        c
    }

    /// The first id of the user's range in `file` (/etc/subuid, /etc/subgid).
    pub fn subid_start(&self, file: &str) -> u32 {
        let subids = std::fs::read_to_string(file).unwrap();
        subids
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}:", self.name)))
            .and_then(|rest| rest.split(':').next())
            .and_then(|start| start.parse().ok())
            .unwrap_or_else(|| panic!("no range for the user in {file}"))
    }

    /// The user's own uid and its subordinate ranges, as (first, count).
    fn uid_ranges(&self) -> Vec<(u32, u32)> {
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        let ranges = subuid.lines().filter_map(|l| {
            let mut f = l.strip_prefix(&format!("{}:", self.name))?.split(':');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        });
        std::iter::once((self.uid, 1)).chain(ranges).collect()
    }

    /// Every live process of the user or of its subordinate uids (they are
    /// ours: the user was made for the test).
    pub fn processes(&self) -> Vec<i32> {
        self.processes_incl_zombies(false)
    }

    /// The user's processes (its own uid or one of its ranges); zombies
    /// too when `zombies` (userdel refuses while any is there).
    fn processes_incl_zombies(&self, zombies: bool) -> Vec<i32> {
        let ranges = self.uid_ranges();
        let mut pids = vec![];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let uid = field("Uid:")
                .split_whitespace()
                .next()
                .and_then(|u| u.parse::<u32>().ok());
            let ours = uid.is_some_and(|u| ranges.iter().any(|(first, n)| (*first..first + n).contains(&u)));
            if ours && (zombies || !field("State:").starts_with('Z')) {
                pids.push(pid);
            }
        }
        pids
    }

    /// SIGKILL to every process of the user, by pid.
    pub fn kill_all(&self) {
        for pid in self.processes() {
            // SAFETY: plain kill of a process of the test's own user.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        self.kill_all();
        // Killed processes take a moment to go (and their parents to reap
        // them): userdel refuses a user who still has any.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.processes_incl_zombies(true).is_empty() && std::time::Instant::now() < deadline {
            self.kill_all();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _accounts = Accounts::lock();
        let removed = Command::new("userdel")
            .arg(&self.name)
            .output()
            .is_ok_and(|o| o.status.success());
        if !removed {
            let _ = Command::new("userdel").args(["-f", &self.name]).output();
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = std::fs::read_to_string(file) {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{}:", self.name)))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(file, kept);
            }
        }
    }
}
