//! OOM kills in a container's cgroup, for the shim's TaskOOM events: a
//! pollable fd that turns readable when something may have changed, and a
//! non-blocking count of the kills since the last look.
//!
//! v1: an eventfd registered through cgroup.event_control on
//! memory.oom_control (the kernel signals each OOM episode, just before its
//! kill), with memory.oom_control's `oom_kill` counter (Linux >= 4.13) to
//! count kills. v2: inotify on memory.events, whose `oom_kill` counter
//! covers the cgroup and everything below it.

use super::Cgroup;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Watches one container's cgroup for OOM kills.
///
/// Poll [`OomWatch::as_fd`] for readability (POLLIN/EPOLLIN; it is
/// non-blocking and close-on-exec), then call [`OomWatch::new_kills`], which
/// drains the fd and returns how many processes of the container were
/// OOM-killed since the previous call (or since the watch was made). It may
/// return 0 on a wake-up: the kernel also signals OOM episodes that killed
/// nothing, and counter updates that were already counted.
///
/// On v1 the kernel signals each OOM episode just before its kill is
/// counted, so a call after an episode returns at least 1 even when the
/// counter does not show the kill yet; later counter increases are set
/// against what was reported, so a kill is not counted twice, but an
/// episode that killed nothing new (its victim still dying) can count one.
/// On both versions the counter is raised before the victim is signalled,
/// so a call made after reaping an OOM-killed process sees its kill.
///
/// Once the cgroup is removed `new_kills` fails naming the file; drop the
/// watch when deleting the container. On v1 the removal also makes the fd
/// readable a last time; v2 gives no such wake-up (the open file keeps its
/// inode, so inotify sees no deletion).
pub struct OomWatch {
    /// v1: the eventfd; v2: the inotify fd.
    fd: OwnedFd,
    /// memory.oom_control (v1) or memory.events (v2), kept open so that a
    /// new cgroup at the same path is never read by mistake.
    counter: File,
    counter_path: PathBuf,
    v2: bool,
    /// The `oom_kill` counter when the watch was made (v1: None when the
    /// kernel has no such counter).
    base: Option<u64>,
    /// Kills reported so far.
    reported: u64,
}

impl OomWatch {
    /// Starts watching `cgroup`, which must have a memory controller.
    pub fn new(cgroup: &Cgroup) -> Result<OomWatch> {
        let dir = cgroup
            .dir("memory")
            .context("no memory cgroup to watch for OOM kills")?;
        let mut watch = if cgroup.is_v2() {
            Self::new_v2(dir)?
        } else {
            Self::new_v1(dir)?
        };
        // The fd is armed first, so no kill falls between it and the base.
        watch.base = watch.read_oom_kill()?;
        log::debug!("watching {} for OOM kills", watch.counter_path.display());
        Ok(watch)
    }

    fn new_v1(dir: &Path) -> Result<OomWatch> {
        let (counter, counter_path) = open(dir, "memory.oom_control")?;
        // SAFETY: eventfd with flags only; the fd is owned at once.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        let fd = owned(efd).context("eventfd for OOM notifications")?;
        let line = format!("{} {}", fd.as_raw_fd(), counter.as_raw_fd());
        super::write(dir, "cgroup.event_control", &line)?;
        Ok(Self::with(fd, counter, counter_path, false))
    }

    fn new_v2(dir: &Path) -> Result<OomWatch> {
        let (counter, counter_path) = open(dir, "memory.events")?;
        // SAFETY: inotify_init1 with flags only; the fd is owned at once.
        let ifd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        let fd = owned(ifd).context("inotify for OOM notifications")?;
        inotify_watch(&fd, &counter_path, libc::IN_MODIFY)?;
        Ok(Self::with(fd, counter, counter_path, true))
    }

    fn with(fd: OwnedFd, counter: File, counter_path: PathBuf, v2: bool) -> OomWatch {
        OomWatch {
            fd,
            counter,
            counter_path,
            v2,
            base: None,
            reported: 0,
        }
    }

    /// How many processes of the container were OOM-killed since the last
    /// call (see the type's notes); never blocks.
    pub fn new_kills(&mut self) -> Result<u64> {
        let signals = self.drain()?;
        let total = match (self.read_oom_kill()?, self.base) {
            (Some(now), Some(base)) => Some(now.saturating_sub(base)),
            _ => None,
        };
        let new = match total {
            // v1: an episode signalled before its kill is counted still counts.
            Some(total) if !self.v2 && signals > 0 => total.saturating_sub(self.reported).max(1),
            Some(total) => total.saturating_sub(self.reported),
            // No counter (v1 before 4.13): one kill per episode.
            None => signals,
        };
        self.reported += new;
        if new > 0 {
            log::debug!("{}: {new} new OOM kill(s)", self.counter_path.display());
        }
        Ok(new)
    }

    /// Empties the fd: the eventfd's count of episodes (v1), or 1 when any
    /// inotify event was waiting (v2).
    fn drain(&self) -> Result<u64> {
        let mut buf = [0u8; 4096];
        let mut signals = 0;
        loop {
            // SAFETY: reading into a live buffer of the given length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    return Ok(signals);
                }
                return Err(e)
                    .with_context(|| format!("reading the OOM notifications of {}", self.counter_path.display()));
            }
            signals += match self.v2 {
                false if n == 8 => u64::from_ne_bytes(buf[..8].try_into().unwrap_or_default()),
                _ => 1,
            };
        }
    }

    /// The `oom_kill` line of the open counter file, read from the start.
    fn read_oom_kill(&mut self) -> Result<Option<u64>> {
        let mut text = String::new();
        self.counter
            .rewind()
            .and_then(|_| self.counter.read_to_string(&mut text))
            .with_context(|| format!("reading {}", self.counter_path.display()))?;
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .map(|v| v.trim().parse::<u64>())
            .transpose()
            .with_context(|| format!("{}: oom_kill is not a number", self.counter_path.display()))?;
        if value.is_none() && self.v2 {
            anyhow::bail!("{} has no oom_kill line", self.counter_path.display());
        }
        Ok(value)
    }
}

fn open(dir: &Path, file: &str) -> Result<(File, PathBuf)> {
    let path = dir.join(file);
    let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    Ok((f, path))
}

fn inotify_watch(fd: &OwnedFd, path: &Path, mask: u32) -> Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{} has a NUL byte", path.display()))?;
    // SAFETY: a valid C string and an inotify fd we own.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_path.as_ptr(), mask) } < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("inotify watch on {}", path.display()));
    }
    Ok(())
}

/// A new fd from a syscall's return value, or its errno.
fn owned(fd: RawFd) -> std::io::Result<OwnedFd> {
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for OomWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2-shaped watch over a plain file: counting follows the counter.
    #[test]
    fn counts_follow_the_oom_kill_counter() {
        let tmp = tempfile::tempdir().unwrap();
        let events = tmp.path().join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").unwrap();
        let cgroup = Cgroup {
            dirs: vec![(String::new(), tmp.path().to_path_buf())],
            unified: true,
        };
        let mut watch = OomWatch::new(&cgroup).unwrap();
        assert_eq!(watch.new_kills().unwrap(), 0, "kills before the watch do not count");
        std::fs::write(&events, "low 0\nhigh 0\nmax 9\noom 4\noom_kill 5\n").unwrap();
        let mut pfd = libc::pollfd {
            fd: watch.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; 0 ms: the event is already queued.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 1);
        assert_eq!(watch.new_kills().unwrap(), 3);
        assert_eq!(watch.new_kills().unwrap(), 0);
        std::fs::write(&events, "low 0\n").unwrap();
        let e = format!("{:#}", watch.new_kills().unwrap_err());
        assert!(e.contains("memory.events"), "{e}");
    }
}
