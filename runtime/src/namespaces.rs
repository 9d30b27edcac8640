//! linux.namespaces and the id mappings: which namespaces the init gets new
//! (clone3 flags), which it joins by path (setns), and the uid/gid maps.

use crate::spec::{IdMapping, Linux, NamespaceType};
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, OwnedFd};

pub fn clone_flag(kind: NamespaceType) -> u64 {
    (match kind {
        NamespaceType::Pid => libc::CLONE_NEWPID,
        NamespaceType::Network => libc::CLONE_NEWNET,
        NamespaceType::Mount => libc::CLONE_NEWNS,
        NamespaceType::Ipc => libc::CLONE_NEWIPC,
        NamespaceType::Uts => libc::CLONE_NEWUTS,
        NamespaceType::User => libc::CLONE_NEWUSER,
        NamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        NamespaceType::Time => libc::CLONE_NEWTIME,
    }) as u32 as u64
}

/// The name of the namespace under /proc/PID/ns.
pub fn proc_name(kind: NamespaceType) -> &'static str {
    match kind {
        NamespaceType::Pid => "pid",
        NamespaceType::Network => "net",
        NamespaceType::Mount => "mnt",
        NamespaceType::Ipc => "ipc",
        NamespaceType::Uts => "uts",
        NamespaceType::User => "user",
        NamespaceType::Cgroup => "cgroup",
        NamespaceType::Time => "time",
    }
}

/// A namespace file to setns into, opened before anything changes.
pub struct Join {
    pub kind: NamespaceType,
    fd: OwnedFd,
}

impl Join {
    pub fn open(kind: NamespaceType, path: &str) -> Result<Join> {
        let fd =
            std::fs::File::open(path).with_context(|| format!("opening {:?} namespace {path}", proc_name(kind)))?;
        Ok(Join { kind, fd: fd.into() })
    }

    /// The calling thread's own namespace of `kind`: for pid and time, the
    /// one its children are born in, which is what setns changes.
    pub fn own(kind: NamespaceType) -> Result<Join> {
        let name = match kind {
            NamespaceType::Pid => "pid_for_children",
            NamespaceType::Time => "time_for_children",
            other => proc_name(other),
        };
        Join::open(kind, &format!("/proc/thread-self/ns/{name}"))
    }

    pub fn enter(&self) -> Result<()> {
        // SAFETY: setns on a namespace fd we own.
        if unsafe { libc::setns(self.fd.as_raw_fd(), clone_flag(self.kind) as i32) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("setns into the {} namespace", proc_name(self.kind)));
        }
        Ok(())
    }
}

/// How the init's namespaces come to be.
pub struct Plan {
    /// New namespaces, created by clone3 itself.
    pub clone_flags: u64,
    /// Namespaces to join; the pid one is entered by the parent (it applies
    /// to children only), the others by the init, user first.
    pub joins: Vec<Join>,
    pub new_userns: bool,
    /// The runtime itself is the host's root (see [`crate::rootless`]),
    /// decided here in the parent, before any namespace changes.
    pub runtime_privileged: bool,
}

impl Plan {
    pub fn new(linux: &Linux) -> Result<Plan> {
        let mut clone_flags = 0;
        let mut joins = vec![];
        for ns in &linux.namespaces {
            match &ns.path {
                Some(path) if !path.is_empty() => joins.push(Join::open(ns.kind, path)?),
                _ => clone_flags |= clone_flag(ns.kind),
            }
        }
        joins.sort_by_key(|j| j.kind != NamespaceType::User);
        if joins.iter().any(|j| j.kind == NamespaceType::User) && clone_flags != 0 {
            // New namespaces must belong to the joined user namespace: the
            // init unshares them after joining it.
            log::debug!("joining a user namespace: new namespaces are unshared after setns");
        }
        Ok(Plan {
            clone_flags,
            new_userns: clone_flags & clone_flag(NamespaceType::User) != 0,
            joins,
            runtime_privileged: crate::rootless::privileged(),
        })
    }

    /// The init has no real privileges: it is in a user namespace of its
    /// own or joined, or the runtime already was in one.
    pub fn unprivileged(&self) -> bool {
        self.new_userns || self.joins_userns() || !self.runtime_privileged
    }

    pub fn joins_userns(&self) -> bool {
        self.joins.iter().any(|j| j.kind == NamespaceType::User)
    }

    /// Flags for clone3: with a joined user namespace, only a new pid
    /// namespace (which cannot be unshared for the caller itself) goes here.
    /// Never the cgroup namespace: see [`Plan::unshare_flags`].
    pub fn clone3_flags(&self) -> u64 {
        let flags = if self.joins_userns() {
            self.clone_flags & clone_flag(NamespaceType::Pid)
        } else {
            self.clone_flags
        };
        flags & !clone_flag(NamespaceType::Cgroup)
    }

    /// Flags the init unshares after joining: what must be new inside a
    /// joined user namespace, and a new cgroup namespace, made once the init
    /// is in its cgroups (v1 joins after the clone) so that its root is the
    /// container's cgroup, as runc makes it.
    pub fn unshare_flags(&self) -> u64 {
        let in_joined_userns = if self.joins_userns() {
            self.clone_flags & !clone_flag(NamespaceType::Pid)
        } else {
            0
        };
        in_joined_userns | (self.clone_flags & clone_flag(NamespaceType::Cgroup))
    }

    pub fn pid_join(&self) -> Option<&Join> {
        self.joins.iter().find(|j| j.kind == NamespaceType::Pid)
    }

    /// In the init, once in its cgroups: joins the namespaces given by path
    /// (pid excepted), then unshares [`Plan::unshare_flags`].
    pub fn enter_in_child(&self) -> Result<()> {
        for join in self.joins.iter().filter(|j| j.kind != NamespaceType::Pid) {
            join.enter()?;
        }
        let flags = self.unshare_flags();
        if flags != 0 {
            nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(flags as i32))
                .with_context(|| format!("unshare({flags:#x}) in the init"))?;
        }
        Ok(())
    }
}

/// The kernel's uid_map text for a list of mappings.
pub fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Writes uid_map and gid_map of `pid`. Root writes them directly; an
/// unprivileged caller can map only itself directly (after denying
/// setgroups) and needs newuidmap/newgidmap for anything more.
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    let privileged = nix::unistd::geteuid().is_root();
    let single_self = |maps: &[IdMapping], own: u32| maps.len() == 1 && maps[0].host_id == own && maps[0].size == 1;
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let direct = privileged || (single_self(&linux.uid_mappings, uid) && single_self(&linux.gid_mappings, gid));
    if direct {
        if !privileged {
            write_proc(pid, "setgroups", "deny")?;
        }
        write_proc(pid, "uid_map", &map_text(&linux.uid_mappings))?;
        write_proc(pid, "gid_map", &map_text(&linux.gid_mappings))?;
        return Ok(());
    }
    run_id_helper("newuidmap", pid, &linux.uid_mappings)?;
    run_id_helper("newgidmap", pid, &linux.gid_mappings)
}

fn write_proc(pid: i32, file: &str, text: &str) -> Result<()> {
    crate::safe_path::write_host_procfs(&format!("/proc/{pid}/{file}"), text)
}

fn run_id_helper(helper: &str, pid: i32, maps: &[IdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id.to_string(), m.host_id.to_string(), m.size.to_string()]);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{helper} not found: several id ranges need it (install the uidmap package)")
        }
        Err(e) => return Err(e).with_context(|| format!("running {helper}")),
    };
    if !out.status.success() {
        bail!(
            "{helper} {pid} failed: {} (check /etc/sub{}id for this user)",
            String::from_utf8_lossy(&out.stderr).trim(),
            if helper == "newuidmap" { "u" } else { "g" }
        );
    }
    Ok(())
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The result of clone3 in the parent.
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// fork()-like clone3 with namespace flags: runs `child` in the new process,
/// which exits with its return value; returns the child's pid and pidfd.
/// The caller must be single-threaded (the child runs ordinary Rust code).
pub fn clone_with(flags: u64, cgroup: Option<&OwnedFd>, child: impl FnOnce() -> i32) -> Result<Child> {
    let mut pidfd: i32 = -1;
    // CLONE_INTO_CGROUP: the child starts life in its cgroup (v2).
    let (flags, cgroup_fd) = match cgroup {
        Some(fd) => (flags | CLONE_INTO_CGROUP, fd.as_raw_fd() as u64),
        None => (flags, 0),
    };
    let args = CloneArgs {
        cgroup: cgroup_fd,
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut i32 as u64,
        // With CLONE_PARENT the kernel takes our own exit signal (and
        // insists on 0 here); otherwise our parent-to-be gets SIGCHLD.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    // SAFETY: clone3 without a new stack behaves like fork: the child gets a
    // copy of this single-threaded process and never returns from this call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("clone3 with flags {flags:#x}"));
    }
    if rc == 0 {
        let code = child();
        // SAFETY: leave without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    Ok(Child {
        pid: rc as i32,
        // SAFETY: the kernel wrote a fresh pidfd for the child.
        pidfd: unsafe { std::os::fd::FromRawFd::from_raw_fd(pidfd) },
    })
}

/// Clones `child` into the namespaces of `joins` (a user namespace, then a
/// pid one; empty: ours). The host's root enters them and comes back; a
/// runtime without real privileges clones through a hop (see
/// [`clone_after_joining`]), and becomes a child subreaper itself unless
/// `clone_parent` hands the process to our parent.
pub fn clone_joined(
    joins: &[&Join],
    flags: u64,
    clone_parent: bool,
    cgroup: Option<&OwnedFd>,
    child: impl FnOnce() -> i32,
) -> Result<Child> {
    let parent_flag = if clone_parent { libc::CLONE_PARENT as u64 } else { 0 };
    if joins.is_empty() {
        return clone_with(flags | parent_flag, cgroup, child);
    }
    if crate::rootless::privileged() {
        return clone_and_come_back(joins, flags | parent_flag, cgroup, child);
    }
    if !clone_parent {
        // SAFETY: plain prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).context("prctl PR_SET_CHILD_SUBREAPER");
        }
    }
    clone_after_joining(joins, flags, cgroup, child)
}

/// clone_with after entering `joins` ourselves; back in our own namespaces
/// afterwards whatever failed, or the new process is killed: the calling
/// thread must never stay in the container's namespaces, nor a process it
/// cloned run on untracked.
fn clone_and_come_back(
    joins: &[&Join],
    flags: u64,
    cgroup: Option<&OwnedFd>,
    child: impl FnOnce() -> i32,
) -> Result<Child> {
    let own = joins.iter().map(|j| Join::own(j.kind)).collect::<Result<Vec<_>>>()?;
    let mut entered = 0;
    let cloned = joins
        .iter()
        .try_for_each(|j| {
            j.enter()?;
            entered += 1;
            Ok(())
        })
        .and_then(|()| clone_with(flags, cgroup, child));
    let back = own[..entered]
        .iter()
        .rev()
        .try_for_each(Join::enter)
        .context("returning to the runtime's own namespaces");
    match (cloned, back) {
        (Ok(child), Ok(())) => Ok(child),
        (Ok(child), Err(e)) => {
            let _ = crate::container::pidfd_kill(&child.pidfd, libc::SIGKILL);
            crate::container::wait_exit(&child.pidfd);
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(back)) => Err(back.context(format!("{e:#}"))),
    }
}

/// clone_with from a short-lived child (the hop) that first enters `joins`
/// in order (a user namespace before a pid one). For a runtime without
/// real privileges, which could not come back to its own pid namespace:
/// setns asks for CAP_SYS_ADMIN over that namespace's owner, the host's
/// initial user namespace. The new process is the hop's child; when the hop
/// exits it is reparented to the nearest child subreaper, which must be
/// the caller or an ancestor that should own it (the shim is one).
pub fn clone_after_joining(
    joins: &[&Join],
    flags: u64,
    cgroup: Option<&OwnedFd>,
    child: impl FnOnce() -> i32,
) -> Result<Child> {
    let (ours, hops) = crate::sync::pair()?;
    let hop = clone_with(0, None, || {
        // SAFETY: closing the hop's copy of our end.
        unsafe { libc::close(ours.raw()) };
        let cloned = joins.iter().try_for_each(|j| j.enter()).and_then(|_| {
            clone_with(flags, cgroup, || {
                // SAFETY: closing the new process's copy of the hop's end.
                unsafe { libc::close(hops.raw()) };
                child()
            })
        });
        let sent = match cloned {
            Ok(c) => hops.send_bytes(&c.pid.to_le_bytes(), &[c.pidfd.as_raw_fd()]),
            Err(e) => hops.send_bytes(format!("{e:#}").as_bytes(), &[]),
        };
        i32::from(sent.is_err())
    })?;
    drop(hops);
    let reply = ours.recv_bytes();
    waitid_pidfd(&hop.pidfd, 0);
    let (bytes, mut fds) = reply.context("the process that joins the container's namespaces")?;
    match (<[u8; 4]>::try_from(bytes.as_slice()), fds.pop()) {
        (Ok(pid), Some(pidfd)) => Ok(Child {
            pid: i32::from_le_bytes(pid),
            pidfd,
        }),
        _ if bytes.is_empty() => bail!("the process that joins the container's namespaces died"),
        _ => bail!("{}", String::from_utf8_lossy(&bytes)),
    }
}

/// waitid(P_PIDFD, WEXITED | `flags`), retried on EINTR: reaps the process
/// if it is a child of ours that has exited, waiting for that unless
/// `flags` has WNOHANG; returns at once for a process that is not our child.
pub(crate) fn waitid_pidfd(pidfd: &OwnedFd, flags: i32) {
    // SAFETY: a zeroed siginfo_t is a valid out-buffer for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on a pidfd we own, into that buffer.
    while unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | flags,
        )
    } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Namespace;

    #[test]
    fn map_text_format() {
        let m = [
            IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1,
            },
            IdMapping {
                container_id: 1,
                host_id: 100000,
                size: 65536,
            },
        ];
        assert_eq!(map_text(&m), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn new_namespaces_become_clone_flags() {
        let linux = Linux {
            namespaces: vec![
                Namespace {
                    kind: NamespaceType::Pid,
                    path: None,
                },
                Namespace {
                    kind: NamespaceType::Mount,
                    path: None,
                },
            ],
            ..Default::default()
        };
        let plan = Plan::new(&linux).unwrap();
        assert_eq!(plan.clone3_flags(), (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64);
        assert_eq!(plan.unshare_flags(), 0);
        assert!(!plan.new_userns);
    }

    /// A pid namespace other than ours: that of `unshare --pid --fork`'s
    /// child, which dies with the unshare process (killed on drop).
    struct OtherPidNamespace {
        unshare: std::process::Child,
        join: Join,
    }

    impl OtherPidNamespace {
        fn new() -> OtherPidNamespace {
            let mut unshare = std::process::Command::new("unshare")
                .args(["--pid", "--kill-child", "sleep", "1000"])
                .spawn()
                .unwrap();
            // Readable once the namespace has its first process.
            let link = format!("/proc/{}/ns/pid_for_children", unshare.id());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::fs::read_link(&link).ok() == std::fs::read_link("/proc/self/ns/pid").ok() {
                if std::time::Instant::now() > deadline {
                    let _ = unshare.kill();
                    let _ = unshare.wait();
                    panic!("unshare --pid made no pid namespace");
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let join = Join::open(NamespaceType::Pid, &link);
            let join = join.unwrap_or_else(|e| {
                let _ = unshare.kill();
                let _ = unshare.wait();
                panic!("{e:#}")
            });
            OtherPidNamespace { unshare, join }
        }
    }

    impl Drop for OtherPidNamespace {
        fn drop(&mut self) {
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }

    #[test]
    fn privileged_clone_comes_back_to_our_pid_namespace_whatever_fails() {
        if !crate::rootless::privileged() {
            eprintln!("skipped: entering another pid namespace needs the host's root");
            return;
        }
        let other = OtherPidNamespace::new();
        let ours = || std::fs::read_link("/proc/thread-self/ns/pid_for_children").unwrap();
        let before = ours();
        // A join that fails after one that worked: setns(CLONE_NEWPID) of a
        // network namespace is EINVAL.
        let bad = Join::open(NamespaceType::Pid, "/proc/self/ns/net").unwrap();
        let e = clone_joined(&[&other.join, &bad], 0, false, None, || 0).err().unwrap();
        assert!(format!("{e:#}").contains("setns"), "{e:#}");
        assert_eq!(ours(), before, "left in the other pid namespace after a failed join");
        // A clone that fails: CLONE_SIGHAND without CLONE_VM is EINVAL.
        let e = clone_joined(&[&other.join], libc::CLONE_SIGHAND as u64, false, None, || 0)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("clone3"), "{e:#}");
        assert_eq!(ours(), before, "left in the other pid namespace after a failed clone");
        // One that works: the child is in the other namespace, we are not.
        let child = clone_joined(&[&other.join], 0, false, None, || 0).unwrap();
        assert_eq!(ours(), before);
        waitid_pidfd(&child.pidfd, 0);
    }

    #[test]
    fn joined_namespace_is_opened_and_missing_path_named() {
        let linux = Linux {
            namespaces: vec![Namespace {
                kind: NamespaceType::Network,
                path: Some("/proc/self/ns/net".into()),
            }],
            ..Default::default()
        };
        let plan = Plan::new(&linux).unwrap();
        assert_eq!(plan.joins.len(), 1);
        assert_eq!(plan.clone3_flags(), 0);
        let bad = Linux {
            namespaces: vec![Namespace {
                kind: NamespaceType::Ipc,
                path: Some("/nonexistent/ns".into()),
            }],
            ..Default::default()
        };
        let e = format!("{:#}", Plan::new(&bad).err().unwrap());
        assert!(e.contains("/nonexistent/ns"), "{e}");
    }
}
