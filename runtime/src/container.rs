//! The lifecycle from the runtime's side: create, start, kill, delete, and
//! the state they read. `create` is the whole path to a waiting init.

use crate::cgroups::Cgroup;
use crate::init::{self, InitArgs, StartGate};
use crate::namespaces::{self, Plan};
use crate::spec::{NamespaceType, Spec};
use crate::state::{self, ContainerDir, Saved, Status};
use crate::sync::{self, Msg};
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// runc's text for an operation on a container that is not running; engines
/// (containerd's runc shim, Podman) match on it.
pub const NOT_RUNNING: &str = "container not running";

pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground keeps the pty master instead of sending it.
    pub keep_console: bool,
    /// Make the init a child of our parent (CLONE_PARENT): a shim's fork
    /// helper uses it so that the shim itself reaps the container.
    pub clone_parent: bool,
}

/// A container whose init waits for `start`.
pub struct Created {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master when the caller kept it (`run` with a terminal).
    pub console: Option<OwnedFd>,
}

/// Kills the half-made container and removes its directory unless disarmed.
struct CreateGuard {
    dir: Option<ContainerDir>,
    pidfd: Option<OwnedFd>,
    /// The cgroup and the directories this create made of it.
    cgroup: Option<(Cgroup, crate::cgroups::Made)>,
    /// Without a mount namespace: the rootfs and the mounts below it that
    /// were there before, so that only the ones made since are undone.
    host_mounts: Option<(PathBuf, Vec<PathBuf>)>,
}

/// The mounts at or below `rootfs` that are not in `before`.
fn mounts_since(rootfs: &Path, before: &[PathBuf]) -> Vec<PathBuf> {
    let mut now = crate::rootfs::mounts_under(rootfs).unwrap_or_default();
    for old in before {
        if let Some(at) = now.iter().position(|m| m == old) {
            now.remove(at);
        }
    }
    now
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(pidfd) = self.pidfd.take() {
            let _ = pidfd_kill(&pidfd, libc::SIGKILL);
            wait_exit(&pidfd);
        }
        if let Some((rootfs, before)) = self.host_mounts.take() {
            crate::rootfs::unmount_all(&mounts_since(&rootfs, &before));
        }
        if let Some((cgroup, made)) = self.cgroup.take() {
            cgroup.undo_create(&made);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

pub fn create(opts: &CreateOptions) -> Result<Created> {
    // 1. The bundle and its config, checked before anything is made.
    let bundle = std::fs::canonicalize(&opts.bundle).with_context(|| format!("bundle {}", opts.bundle.display()))?;
    let spec = Spec::load(&bundle)?;
    let process = spec.process()?;
    let rootfs = spec.rootfs(&bundle);
    let rootfs = std::fs::canonicalize(&rootfs).with_context(|| format!("rootfs {} (root.path)", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("rootfs {} (root.path) is not a directory", rootfs.display());
    }
    check_namespaces(&spec)?;
    if process.terminal && opts.console_socket.is_none() && !opts.keep_console {
        bail!("process.terminal is true: --console-socket is required when detached");
    }
    let plan = Plan::new(spec.linux())?;
    let seccomp = compile_seccomp(&spec)?;

    // 2. The state directory: taking it is what makes the id ours.
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    // Without a mount namespace the init mounts in ours: what it adds below
    // the rootfs is ours to undo (if this create fails) or to record.
    let own_mount_ns = spec.linux().namespace(NamespaceType::Mount).is_some();
    let host_mounts = match own_mount_ns {
        true => None,
        false => Some((rootfs.clone(), crate::rootfs::mounts_under(&rootfs)?)),
    };
    let mut guard = CreateGuard {
        dir: Some(dir),
        pidfd: None,
        cgroup: None,
        host_mounts,
    };
    let dir = guard.dir.as_ref().unwrap();
    nix::unistd::mkfifo(&dir.fifo_path(), nix::sys::stat::Mode::from_bits_truncate(0o622))
        .context("creating the exec fifo")?;
    std::fs::set_permissions(dir.fifo_path(), std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .context("chmod exec fifo")?;
    let state_dir_fd = crate::safe_path::open_dir(&dir.path)?;

    // 3. The cgroup, with its limits set before anything runs in it.
    let (cgroup, made) = setup_cgroup(&spec, &opts.id)?.unzip();
    guard.cgroup = cgroup.clone().zip(made);
    let cgroup_fd = cgroup.as_ref().map(|c| c.v2_dir_fd()).transpose()?.flatten();

    // 4. The init, in its new namespaces.
    let (parent_end, child_end) = sync::pair()?;
    let pid_join: Vec<_> = plan.pid_join().into_iter().collect();
    let child = namespaces::clone_joined(
        &pid_join,
        plan.clone3_flags(),
        opts.clone_parent,
        cgroup_fd.as_ref(),
        || {
            // SAFETY: closing the child's copies of the parent's sync end (so
            // the init sees EOF if the parent dies) and of the state lock.
            unsafe {
                libc::close(parent_end.raw());
                libc::close(dir.lock_fd());
            }
            init::container_init(InitArgs {
                spec: &spec,
                bundle: &bundle,
                rootfs: &rootfs,
                namespaces: &plan,
                seccomp: seccomp.as_ref(),
                channel: &child_end,
                gate: StartGate::ExecFifo(state_dir_fd.try_clone().expect("dup state dir fd")),
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                cgroup_dir: cgroup.as_ref().filter(|c| c.is_v2()).and_then(|c| c.dir("")),
                join_cgroup: cgroup.as_ref().filter(|_| !plan.new_userns),
            })
        },
    )?;
    drop(child_end);
    guard.pidfd = Some(child.pidfd.try_clone().context("dup pidfd")?);
    let saved = Saved {
        id: opts.id.clone(),
        pid: child.pid,
        pid_start_time: state::start_time(child.pid).context("the container init died at once")?,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: state::now_rfc3339(),
        owner: state::user_name(nix::unistd::geteuid().as_raw()),
        config: spec.clone(),
        cgroup: cgroup.clone(),
        host_mounts: vec![],
    };

    // 5. Ids mapped, and into its v1 cgroup if it cannot move itself from
    //    its new user namespace; then follow its setup until it waits for
    //    start.
    let placed = cgroup
        .as_ref()
        .filter(|c| !c.is_v2() && plan.new_userns)
        .map_or(Ok(()), |c| c.add_pid(child.pid))
        .and_then(|_| match plan.new_userns {
            true => namespaces::write_id_maps(child.pid, spec.linux()),
            false => Ok(()),
        });
    if let Err(e) = placed {
        let _ = parent_end.send(&Msg::Error(format!("{e:#}")));
        return Err(e);
    }
    parent_end.send(&Msg::Proceed)?;
    let mut console = None;
    loop {
        let (msg, fd) = parent_end.recv_ok().context("container init")?;
        match msg {
            Msg::RunRuntimeHooks => {
                dir.save(&saved)?;
                let state_json = serde_json::to_string(&saved.oci_state(Status::Creating))?;
                let hooks = spec.hooks();
                let result = crate::hooks::run("prestart", &hooks.prestart, state_json.as_bytes())
                    .and_then(|_| crate::hooks::run("createRuntime", &hooks.create_runtime, state_json.as_bytes()));
                if let Err(e) = result {
                    let _ = parent_end.send(&Msg::Error(format!("{e:#}")));
                    return Err(e);
                }
                parent_end.send(&Msg::Continue(state_json))?;
            }
            Msg::Console => {
                let master = fd.context("pty message without an fd")?;
                let socket = opts.console_socket.as_deref().filter(|_| !opts.keep_console);
                console = crate::terminal::route_pty(master, socket)?;
            }
            Msg::Seccomp => {
                let fd = fd.context("seccomp message without an fd")?;
                crate::seccomp::send_to_listener(&saved, &fd, Status::Creating)?;
            }
            Msg::Ready => break,
            other => bail!("container init sent {other:?} during setup"),
        }
    }

    log::debug!("container {:?}: init {} is waiting for start", opts.id, child.pid);

    // 6. Record it: state.json, then the pid file.
    let mut saved = saved;
    if let Some((rootfs, before)) = &guard.host_mounts {
        saved.host_mounts = mounts_since(rootfs, before);
    }
    dir.save(&saved)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, child.pid)?;
    }
    guard.pidfd = None;
    guard.dir = None;
    guard.cgroup = None;
    guard.host_mounts = None;
    Ok(Created {
        pid: child.pid,
        pidfd: child.pidfd,
        console,
    })
}

/// linux.seccomp compiled once, before the fork; the init only loads it.
pub(crate) fn compile_seccomp(spec: &Spec) -> Result<Option<crate::seccomp::Filter>> {
    let linux = spec.linux();
    linux
        .seccomp
        .as_ref()
        .map(|s| crate::seccomp::compile(s).context("linux.seccomp"))
        .transpose()
}

/// Creates the container's cgroup and applies linux.resources. Without real
/// privileges (an ordinary user, or root of a user namespace as under
/// rootlesskit) and without a cgroup it may write to, such as a delegated
/// subtree, the container runs in ours.
fn setup_cgroup(spec: &Spec, id: &str) -> Result<Option<(Cgroup, crate::cgroups::Made)>> {
    let linux = spec.linux();
    let cgroup = Cgroup::for_container(linux, id)?;
    // On failure only the directories this attempt made go, and only while
    // empty: never destroy(), which kills what is in the cgroup, and a
    // cgroupsPath that already existed may hold another container.
    let mut made = crate::cgroups::Made::default();
    if let Err(e) = cgroup.create(&mut made) {
        made.remove_empty();
        if crate::rootless::privileged() {
            return Err(e);
        }
        log::debug!("container {id:?} runs without its own cgroup (none writable or delegated here): {e:#}");
        return Ok(None);
    }
    let resources = linux.resources.clone().unwrap_or_default();
    if let Err(e) = cgroup.apply(&resources) {
        made.remove_empty();
        return Err(e.context("linux.resources"));
    }
    Ok(Some((cgroup, made)))
}

fn check_namespaces(spec: &Spec) -> Result<()> {
    let linux = spec.linux();
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && linux.namespace(NamespaceType::Uts).is_none() {
        bail!("hostname is set but linux.namespaces has no uts namespace");
    }
    Ok(())
}

/// Writes the pid where a supervisor (systemd's PIDFile) reads it, atomically.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    state::write_atomic(path, pid.to_string().as_bytes()).context("--pid-file")
}

/// Lets a created container's init go on to execve.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    match saved.status(&dir.path) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start container {id:?}: cannot start a container that has stopped"),
        other => bail!("cannot start container {id:?}: cannot start an already running container (it is {other})"),
    }
    release_init(&dir, &saved)?;
    log::debug!("container {id:?}: started");
    let state_json = serde_json::to_string(&saved.oci_state(Status::Running))?;
    crate::hooks::run_warning("poststart", &saved.config.hooks().poststart, state_json.as_bytes());
    Ok(())
}

/// Opens the exec fifo for reading, takes the init's byte, removes the fifo.
fn release_init(dir: &ContainerDir, saved: &Saved) -> Result<()> {
    let path = dir.fifo_path();
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    use std::os::unix::fs::OpenOptionsExt;
    loop {
        let mut pfd = libc::pollfd {
            fd: fifo.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        let mut byte = [0u8; 1];
        // SAFETY: reading one byte into a live buffer.
        let n = unsafe { libc::read(fifo.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
        if n == 1 {
            break;
        }
        if state::process_state(saved.pid, saved.pid_start_time).is_none() {
            bail!("container {:?}: its init exited before start", saved.id);
        }
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))
}

/// Parses a signal as runc does: `KILL`, `SIGKILL`, `sigkill` or `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal number {n}");
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    if saved.status(&dir.path) == Status::Stopped {
        // An init that shared its pid namespace can leave processes behind
        // in its cgroup: containerd's Go shim kills them with `kill --all`
        // once the init has exited, as runc does.
        if all {
            if let Some(cgroup) = saved.cgroup() {
                signal_all(cgroup, signal)?;
            }
            return Ok(());
        }
        // runc's words: engines take "container not running" as "already exited".
        bail!("cannot kill container {id:?}: {NOT_RUNNING}");
    }
    if all {
        for pid in container_pids(&saved)? {
            if pid != saved.pid {
                // SAFETY: plain kill; these pids were just read from /proc.
                unsafe { libc::kill(pid, signal) };
            }
        }
    }
    let pidfd = open_init(&saved)?;
    pidfd_kill(&pidfd, signal).with_context(|| format!("signalling container {id:?}"))
}

/// After the init has exited: kills what it left in the container's cgroup
/// when it had no pid namespace of its own (a pid namespace dies with its
/// init), as containerd's Go shim does before it reports the exit.
pub fn kill_leftovers(root: &Path, id: &str) -> Result<()> {
    let saved = ContainerDir::open(root, id)?.load()?;
    let own_pid_ns = saved
        .config
        .linux()
        .namespace(NamespaceType::Pid)
        .is_some_and(|n| n.path.is_none());
    match saved.cgroup() {
        Some(cgroup) if !own_pid_ns => signal_all(cgroup, libc::SIGKILL),
        _ => Ok(()),
    }
}

/// Signals every process of a cgroup; a frozen one is thawed after a
/// SIGKILL, which a frozen v1 task would not act on.
fn signal_all(cgroup: &crate::cgroups::Cgroup, signal: i32) -> Result<()> {
    for pid in cgroup.pids()? {
        // SAFETY: plain kill of pids just read from the container's cgroup.
        unsafe { libc::kill(pid, signal) };
    }
    if signal == libc::SIGKILL && cgroup.is_frozen() {
        cgroup
            .freeze(false)
            .context("thawing the paused container to let it die")?;
    }
    Ok(())
}

/// A pidfd for the init, checked to still be the process we started.
fn open_init(saved: &Saved) -> Result<OwnedFd> {
    // SAFETY: pidfd_open with a pid; the fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, saved.pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("pidfd_open {}", saved.pid));
    }
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // The pidfd pins the process: if the start time still matches now, it is ours.
    if state::process_state(saved.pid, saved.pid_start_time).is_none() {
        bail!("container {:?}: {NOT_RUNNING} (pid {} exited)", saved.id, saved.pid);
    }
    Ok(fd)
}

/// Signals the process behind a pidfd (no pid-reuse race); one that is gone is not an error.
pub fn pidfd_kill(pidfd: &OwnedFd, signal: i32) -> Result<()> {
    // SAFETY: pidfd_send_signal on an fd we own.
    if unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<()>(),
            0,
        )
    } != 0
    {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e).context("pidfd_send_signal");
        }
    }
    Ok(())
}

/// Whether the process behind `pidfd` has exited, or does within
/// `timeout_ms` (0: just look).
pub fn pidfd_exited(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd; a pidfd polls readable once the process exits.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) > 0 }
}

/// Waits (up to 10 s) until the process behind `pidfd` has exited (it need
/// not be our child); false if it has not.
pub(crate) fn wait_exit(pidfd: &OwnedFd) -> bool {
    let exited = pidfd_exited(pidfd, 10_000);
    // Reap it if it was our child; harmless otherwise.
    namespaces::waitid_pidfd(pidfd, libc::WNOHANG);
    exited
}

/// Every process in the container: with its own pid namespace, all whose
/// /proc/PID/ns/pid is the init's; otherwise the init alone.
pub fn container_pids(saved: &Saved) -> Result<Vec<i32>> {
    if let Some(cgroup) = saved.cgroup() {
        return cgroup.pids();
    }
    if saved.config.linux().namespace(NamespaceType::Pid).is_none() {
        return Ok(vec![saved.pid]);
    }
    let init_ns = match std::fs::read_link(format!("/proc/{}/ns/pid", saved.pid)) {
        Ok(ns) => ns,
        // The init stays non-dumpable until its execve, and a rootless
        // runtime may not read a non-dumpable process's namespaces; until
        // then (created) it is the only process there is.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(vec![saved.pid]),
        Err(e) => return Err(e).with_context(|| format!("reading pid namespace of {}", saved.pid)),
    };
    let mut pids = vec![];
    for entry in std::fs::read_dir("/proc").context("reading /proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == init_ns) {
            pids.push(pid);
        }
    }
    pids.sort();
    Ok(pids)
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match ContainerDir::open(root, id) {
        Ok(dir) => dir,
        // runc: `delete --force` of a container that does not exist succeeds.
        Err(_) if force && state::validate_id(id).is_ok() && !root.join(id).exists() => return Ok(()),
        Err(e) => return Err(e),
    };
    let saved = dir.load()?;
    let status = saved.status(&dir.path);
    match status {
        Status::Stopped => {}
        Status::Created => stop_all(&saved)?,
        _ if force => stop_all(&saved)?,
        other => bail!("cannot delete container {id:?} that is not stopped: {other} (stop it first or use --force)"),
    }
    if let Some(cgroup) = &saved.cgroup {
        cgroup.destroy()?;
    }
    crate::rootfs::unmount_all(&saved.host_mounts);
    let state_json = serde_json::to_string(&saved.oci_state(Status::Stopped))?;
    crate::hooks::run_warning("poststop", &saved.config.hooks().poststop, state_json.as_bytes());
    dir.remove()
}

/// SIGKILL to every process of the container, then wait for the init.
/// A paused container is thawed after the signals are sent (as runc does):
/// on cgroup v1 a frozen task does not act on SIGKILL until it is thawed,
/// and with the signal already pending none of them runs user code again.
fn stop_all(saved: &Saved) -> Result<()> {
    let Ok(pidfd) = open_init(saved) else { return Ok(()) };
    for pid in container_pids(saved)? {
        // SAFETY: plain kill of pids in the container's pid namespace.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    pidfd_kill(&pidfd, libc::SIGKILL)?;
    if let Some(cgroup) = saved.cgroup().filter(|c| c.is_frozen()) {
        cgroup
            .freeze(false)
            .context("thawing the paused container to let it die")?;
    }
    if !wait_exit(&pidfd) {
        log::warn!(
            "container {:?}: its init {} did not exit within 10 s of SIGKILL",
            saved.id,
            saved.pid
        );
    }
    Ok(())
}

/// The container's cgroup, refusing when it has none.
fn cgroup_of(saved: &Saved) -> Result<&Cgroup> {
    saved
        .cgroup()
        .with_context(|| format!("container {:?} has no cgroup", saved.id))
}

/// Freezes every process of a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    match saved.status(&dir.path) {
        Status::Running | Status::Created => cgroup_of(&saved)?.freeze(true),
        other => bail!("cannot pause container {id:?}: {NOT_RUNNING} (it is {other})"),
    }
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    match saved.status(&dir.path) {
        Status::Paused => cgroup_of(&saved)?.freeze(false),
        other => bail!("cannot resume container {id:?}: container not paused (it is {other})"),
    }
}

/// Applies new limits to a live container and records them.
pub fn update(root: &Path, id: &str, resources: &crate::resources::Resources) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let mut saved = dir.load()?;
    if saved.status(&dir.path) == Status::Stopped {
        bail!("cannot update container {id:?}: {NOT_RUNNING}");
    }
    cgroup_of(&saved)?.update(resources)?;
    if let Some(linux) = saved.config.linux.as_mut() {
        linux.resources = Some(resources.clone());
    }
    dir.save(&saved)
}

/// The container's cgroup usage.
pub fn stats(root: &Path, id: &str) -> Result<crate::cgroups::Stats> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    Ok(cgroup_of(&saved)?.stats())
}

/// Watches the container's cgroup for OOM kills of any of its processes:
/// poll the watch's fd for readability, then ask it for the new kills
/// (see [`crate::cgroups::OomWatch`]). Fails when the container has no cgroup.
pub fn oom_watch(root: &Path, id: &str) -> Result<crate::cgroups::OomWatch> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    crate::cgroups::OomWatch::new(cgroup_of(&saved)?).with_context(|| format!("container {id:?}"))
}

/// The state of one container, as `state` prints it.
pub fn state(root: &Path, id: &str) -> Result<String> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    let status = saved.status(&dir.path);
    Ok(serde_json::to_string_pretty(&saved.oci_state(status))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }
}
