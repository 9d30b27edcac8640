//! The container's init (and an exec'd process) from clone3 to execve,
//! top to bottom. Runs in the child of a single-threaded runtime process.
//! Every failure goes back to the parent as one message and the child exits.

use crate::namespaces::Plan;
use crate::process::{self, ExecArgs};
use crate::rootfs::{self, Console, RootfsPlan};
use crate::safe_path::{open_dir, open_in_root};
use crate::spec::{NamespaceType, Process, Spec};
use crate::sync::{Channel, Msg};
use anyhow::{Context, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// What releases the process into its execve.
pub enum StartGate {
    /// `start` opens the exec fifo in this state directory (O_PATH fd).
    ExecFifo(OwnedFd),
    /// Exec'd processes run as soon as they are ready.
    Immediate,
    /// Once ready, wait for the parent to have placed us in our cgroup.
    Placed,
}

pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub namespaces: &'a Plan,
    /// linux.seccomp, compiled by the parent.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    pub channel: &'a Channel,
    pub gate: StartGate,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// The container's own cgroup v2 directory, if it has one.
    pub cgroup_dir: Option<&'a Path>,
    /// The v1 cgroup the init moves itself into (when the parent does not).
    pub join_cgroup: Option<&'a crate::cgroups::Cgroup>,
}

/// The container init: never returns on success (it is the user's program).
pub fn container_init(args: InitArgs) -> i32 {
    let err = match init_steps(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = args.channel.send(&Msg::Error(format!("{err:#}")));
    1
}

fn init_steps(a: &InitArgs) -> Result<std::convert::Infallible> {
    reset_signals();
    let process = a.spec.process()?;
    let in_userns = a.namespaces.new_userns || a.namespaces.joins_userns();

    // 1. Namespaces, once the parent has put us in our cgroup and written
    //    the id maps of a new user namespace.
    a.channel.expect(Msg::Proceed)?;
    if let Some(cgroup) = a.join_cgroup {
        cgroup.join_self()?;
    }
    a.namespaces.enter_in_child()?;
    if in_userns {
        become_root_in_userns()?;
    }
    // From here nothing may ptrace or read our memory until execve.
    set_dumpable(false)?;
    nix::unistd::setsid().context("setsid")?;

    // 2. The filesystem: mounts, devices, pty, sysctl, masked/readonly paths.
    let plan = RootfsPlan {
        spec: a.spec,
        bundle: a.bundle,
        rootfs: a.rootfs.to_path_buf(),
        in_userns,
        unprivileged: a.namespaces.unprivileged(),
        own_cgroup: a.cgroup_dir.map(Path::to_path_buf),
        own_mount_ns: a.spec.linux().namespace(NamespaceType::Mount).is_some(),
    };
    let console = plan.prepare(process.terminal)?;

    // 3. Runtime hooks run in the parent; createContainer ones here, before pivot_root.
    let hooks = a.spec.hooks();
    let state_json = if hook_state_needed(a.spec) {
        a.channel.send(&Msg::RunRuntimeHooks)?;
        match a.channel.recv_ok()?.0 {
            Msg::Continue(state) => state,
            other => anyhow::bail!("sync: expected Continue, got {other:?}"),
        }
    } else {
        String::new()
    };
    crate::hooks::run("createContainer", &hooks.create_container, state_json.as_bytes())?;

    // 4. Identity: hostname, domainname, then the rootfs becomes /.
    if let Some(name) = &a.spec.hostname {
        nix::unistd::sethostname(name).with_context(|| format!("sethostname {name:?}"))?;
    }
    if let Some(name) = &a.spec.domainname {
        set_domainname(name)?;
    }
    if let Some(adj) = process.oom_score_adj {
        process::set_oom_score_adj(adj)?;
    }
    rootfs::enter_rootfs(a.rootfs, a.no_pivot, plan.own_mount_ns)?;
    rootfs::apply_root_propagation(a.spec)?;
    if a.spec.root.as_ref().is_some_and(|r| r.readonly) {
        rootfs::make_root_readonly()?;
    }

    // 5. The process itself.
    let launch = Launch {
        process,
        seccomp: a.seccomp,
        channel: a.channel,
        gate: &a.gate,
        preserve_fds: a.preserve_fds,
        in_userns,
        start_hooks: &hooks.start_container,
        state_json: &state_json,
    };
    exec_process(&launch, console)
}

/// How a process (the init or an exec'd one) is finished and started.
pub struct Launch<'a> {
    pub process: &'a Process,
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    pub channel: &'a Channel,
    pub gate: &'a StartGate,
    pub preserve_fds: u32,
    pub in_userns: bool,
    pub start_hooks: &'a [crate::spec::Hook],
    pub state_json: &'a str,
}

/// The part shared by the init and exec'd processes: stdio, limits, user,
/// capabilities, seccomp, cwd, then waiting for the gate and execve.
pub fn exec_process(l: &Launch, console: Option<Console>) -> Result<std::convert::Infallible> {
    let process = l.process;
    if let Some(console) = console {
        attach_console(console, process, l.channel)?;
    }
    process::set_rlimits(&process.rlimits)?;
    crate::lsm::set_exec_labels(process)?;
    let root = open_dir(Path::new("/"))?;
    let exe = process::find_executable(&root, process)?;
    let exec_args = ExecArgs::new(&root, &exe, process)?;
    // The cwd is entered and checked before any filter is loaded: a profile
    // may deny getcwd, or notify on it with nobody listening yet. Only a cwd
    // that the user may enter but we may not waits until after setuid.
    let cwd_entered = enter_cwd(&process.cwd, true)?;
    // Without noNewPrivileges only a privileged process may load a filter:
    // load it before the capabilities go; with it, as late as possible.
    if !process.no_new_privileges {
        load_seccomp(l)?;
    }
    process::become_user(process, l.in_userns)?;
    if !cwd_entered {
        enter_cwd(&process.cwd, false)?;
    }
    if process.no_new_privileges {
        process::set_no_new_privileges()?;
        load_seccomp(l)?;
    }
    process::cloexec_fds_from(3 + l.preserve_fds)?;
    l.channel.send(&Msg::Ready)?;
    match l.gate {
        StartGate::ExecFifo(state_dir) => wait_for_start(state_dir)?,
        StartGate::Placed => l.channel.expect(Msg::Proceed)?,
        StartGate::Immediate => {}
    }
    if !l.start_hooks.is_empty() {
        let hooks = crate::hooks::with_default_env(l.start_hooks, &process.env);
        crate::hooks::run("startContainer", &hooks, l.state_json.as_bytes())?;
    }
    Err(exec_args.exec())
}

/// chdir to process.cwd and check it lies inside the container. With
/// `may_wait`, a permission error is no error but `false`: runc tries again
/// as the process's user.
fn enter_cwd(cwd: &str, may_wait: bool) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => check_cwd_inside(cwd).map(|_| true),
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) if may_wait => Ok(false),
        Err(e) => Err(e).with_context(|| format!("chdir to process.cwd {cwd}")),
    }
}

/// A cwd reached through a magic link (/proc/self/fd/N of a host fd, as in
/// CVE-2024-21626) lies outside our root: getcwd then fails or reports it
/// "(unreachable)".
fn check_cwd_inside(requested: &str) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(cwd) if cwd.is_absolute() => Ok(()),
        _ => anyhow::bail!("process.cwd {requested:?} resolves outside the container"),
    }
}

/// Loads linux.seccomp; a notification fd goes to the parent, which hands
/// it to the listener.
fn load_seccomp(l: &Launch) -> Result<()> {
    let Some(filter) = l.seccomp else { return Ok(()) };
    if let Some(fd) = filter.load()? {
        l.channel.send_with_fd(&Msg::Seccomp, Some(fd.as_raw_fd()))?;
    }
    Ok(())
}

/// Blocks until `start` opens the fifo for reading, then tells it we go.
fn wait_for_start(state_dir: &OwnedFd) -> Result<()> {
    let name = std::ffi::CString::new(crate::state::EXEC_FIFO).unwrap();
    // SAFETY: openat relative to a directory fd we hold; blocks until a reader.
    let fd = unsafe { libc::openat(state_dir.as_raw_fd(), name.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("opening the exec fifo");
    }
    // SAFETY: fd is ours; one byte from a live buffer.
    let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    unsafe { libc::close(fd) };
    if n != 1 {
        return Err(std::io::Error::last_os_error()).context("writing the exec fifo");
    }
    Ok(())
}

/// True when some hook needs the state JSON (or the parent must run hooks).
fn hook_state_needed(spec: &Spec) -> bool {
    spec.hooks.as_ref().is_some_and(|h| {
        !(h.prestart.is_empty()
            && h.create_runtime.is_empty()
            && h.create_container.is_empty()
            && h.start_container.is_empty())
    })
}

/// Hands the pty master to the parent and makes the slave our terminal.
fn attach_console(console: Console, process: &Process, channel: &Channel) -> Result<()> {
    if let Some(size) = process.console_size {
        crate::terminal::set_size(&console.master, size.height, size.width)?;
    }
    channel.send_with_fd(&Msg::Console, Some(console.master.as_raw_fd()))?;
    drop(console.master);
    let slave = console.slave.as_raw_fd();
    // SAFETY: plain ioctl/dup2 on fds we own.
    if unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("TIOCSCTTY on the pty");
    }
    for target in 0..3 {
        if unsafe { libc::dup2(slave, target) } < 0 {
            return Err(std::io::Error::last_os_error()).context("dup2 of the pty onto stdio");
        }
    }
    Ok(())
}

/// Opens a pty from the devpts the process sees as /dev/pts (for exec).
pub fn open_pty_in_container() -> Result<Console> {
    let root = open_dir(Path::new("/"))?;
    let master = open_in_root(&root, Path::new("/dev/pts/ptmx"), libc::O_RDWR | libc::O_NOCTTY)
        .or_else(|_| open_in_root(&root, Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY))
        .context("opening the container's /dev/pts/ptmx")?;
    rootfs::pty_pair(master)
}

/// The spec's namespaces that a user namespace owns are entered; now take
/// root's ids inside it.
fn become_root_in_userns() -> Result<()> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .context("setresgid 0 in the user namespace (is gid 0 mapped?)")?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .context("setresuid 0 in the user namespace (is uid 0 mapped?)")?;
    Ok(())
}

pub fn set_dumpable(on: bool) -> Result<()> {
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_DUMPABLE)");
    }
    Ok(())
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: pointer and length of a live buffer.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setdomainname {name:?}"));
    }
    Ok(())
}

/// The runtime ignores SIGPIPE and may block signals; the container's
/// program must start with default dispositions and an empty mask.
pub fn reset_signals() {
    // SAFETY: resetting dispositions and the mask of this process only.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Namespaces an exec'd process joins: those the container's config lists,
/// through the init's /proc/PID/ns files; user first.
pub fn exec_joins(spec: &Spec, init_pid: i32) -> Result<Vec<crate::namespaces::Join>> {
    let mut joins = vec![];
    for ns in &spec.linux().namespaces {
        let path = format!("/proc/{init_pid}/ns/{}", crate::namespaces::proc_name(ns.kind));
        joins.push(crate::namespaces::Join::open(ns.kind, &path)?);
    }
    joins.sort_by_key(|j| j.kind != NamespaceType::User);
    Ok(joins)
}
