//! `exec`: a new process inside a running container's namespaces.

use crate::init::{self, StartGate};
use crate::namespaces::Join;
use crate::spec::{NamespaceType, Process};
use crate::state::{self, ContainerDir, Status};
use crate::sync::{self, Msg};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// See `CreateOptions::clone_parent`.
    pub clone_parent: bool,
    /// Exec into a paused container too: the process is set up outside
    /// the frozen cgroup and placed in it at the end, so it starts frozen.
    pub ignore_paused: bool,
    /// Existing sub-cgroup(s) of the container's to run in (`--cgroup`,
    /// see [`crate::cgroups::Cgroup::sub`]).
    pub sub_cgroup: Vec<String>,
}

/// An exec'd process that is running.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: std::os::fd::OwnedFd,
    /// The pty master, when there is no console socket to send it to.
    pub console: Option<std::os::fd::OwnedFd>,
}

/// The container's own process, for `exec` to start from (runc does the same).
pub fn base_process(root: &Path, id: &str) -> Result<Process> {
    let dir = ContainerDir::open(root, id)?;
    dir.load()?.config.process().cloned()
}

/// Runs the process; returns its exit code, or 0 at once when detached.
pub fn exec(opts: &ExecOptions) -> Result<i32> {
    if opts.process.terminal && opts.detach && opts.console_socket.is_none() {
        bail!("exec -t with -d needs --console-socket");
    }
    let spawned = spawn(opts)?;
    if opts.detach {
        return Ok(0);
    }
    crate::terminal::foreground(spawned.pid, &spawned.pidfd, spawned.console)
}

/// Starts the process in the container and returns once it runs.
pub fn spawn(opts: &ExecOptions) -> Result<Spawned> {
    let process = &opts.process;
    process.validate()?;
    let (saved, joins, paused) = {
        // Hold the lock only while reading: the process may run for long.
        let dir = ContainerDir::open(&opts.root, &opts.id)?;
        let saved = dir.load()?;
        let paused = match saved.status(&dir.path) {
            Status::Created | Status::Running => false,
            Status::Paused if opts.ignore_paused => true,
            // runc's words.
            Status::Paused => bail!("cannot exec in a paused container (use --ignore-paused to override)"),
            other => bail!("cannot exec in container {:?}: it is {other}", opts.id),
        };
        let joins = init::exec_joins(&saved.config, saved.pid)?;
        // The namespace files are open: if the init is still the one we
        // started, they are the container's.
        if state::process_state(saved.pid, saved.pid_start_time).is_none() {
            bail!("cannot exec in container {:?}: its init exited", opts.id);
        }
        (saved, joins, paused)
    };
    let in_userns = joins.iter().any(|j| j.kind == NamespaceType::User);
    let (parent_end, child_end) = sync::pair()?;
    let pid_join = joins.iter().find(|j| j.kind == NamespaceType::Pid);
    // The pid namespace is entered (and left again) by clone_joined alone.
    let sub = match saved.cgroup() {
        Some(own) if !opts.sub_cgroup.is_empty() => Some(own.sub(&opts.sub_cgroup)?),
        None if !opts.sub_cgroup.is_empty() => bail!("--cgroup: container {:?} has no cgroup", opts.id),
        _ => None,
    };
    let cgroup = sub.as_ref().or(saved.cgroup());
    // Into a frozen cgroup the process goes last: placed there by us once
    // it is set up (it would freeze half-way otherwise).
    let late = paused && cgroup.is_some();
    let cgroup_fd = match late {
        true => None,
        false => cgroup.map(|c| c.v2_dir_fd()).transpose()?.flatten(),
    };
    let filter = crate::container::compile_seccomp(&saved.config)?;
    let root_of_init = match saved.config.linux().namespace(NamespaceType::Mount) {
        Some(_) => None,
        None => Some(
            crate::safe_path::open_dir(Path::new(&format!("/proc/{}/root", saved.pid)))
                .context("the root of the container's init")?,
        ),
    };
    // Without real privileges we could not come back from the container's
    // pid namespace: the process is cloned through a hop, which for an
    // ordinary user must first be in the container's user namespace.
    let hop_joins_userns = !crate::rootless::privileged() && pid_join.is_some() && in_userns;
    let user_join = joins.iter().find(|j| j.kind == NamespaceType::User);
    let enter: Vec<&Join> = user_join
        .filter(|_| hop_joins_userns)
        .into_iter()
        .chain(pid_join)
        .collect();
    let child = crate::namespaces::clone_joined(&enter, 0, opts.clone_parent, cgroup_fd.as_ref(), || {
        // SAFETY: the child's copy of the parent's end.
        unsafe { libc::close(parent_end.raw()) };
        let err = match exec_child(
            process,
            &JoinPlan {
                joins: &joins,
                in_userns,
                hop_joined_userns: hop_joins_userns,
                seccomp: filter.as_ref(),
                join_cgroup: cgroup.filter(|_| !hop_joins_userns && !late),
                root_of_init: root_of_init.as_ref(),
                placed_after_ready: late,
            },
            &child_end,
            opts.preserve_fds,
        ) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        let _ = child_end.send(&Msg::Error(format!("{err:#}")));
        1
    })?;
    drop(child_end);
    let placement = match (late, cgroup.filter(|_| hop_joins_userns)) {
        (true, _) => Placement::AfterReady(cgroup.expect("late only with a cgroup")),
        (false, Some(cg)) => Placement::Before(cg),
        (false, None) => Placement::None,
    };
    match follow_setup(opts, &saved, placement, &child, &parent_end) {
        Ok(console) => Ok(Spawned {
            pid: child.pid,
            pidfd: child.pidfd,
            console,
        }),
        Err(e) => {
            // Whatever failed on our side, the process must not run on untracked.
            let _ = crate::container::pidfd_kill(&child.pidfd, libc::SIGKILL);
            Err(e)
        }
    }
}

/// Puts the new process in `cgroup` (where it cannot move itself), lets it
/// go on, and follows it until it is ready; returns its pty master unless
/// that went to a console socket.
/// Where the parent puts the new process into its cgroup.
enum Placement<'a> {
    /// The process joins by itself (or clone3 placed it).
    None,
    /// Before it goes on (v1, where it cannot move itself).
    Before(&'a crate::cgroups::Cgroup),
    /// Once it is set up, into a frozen cgroup; then it may execve.
    AfterReady(&'a crate::cgroups::Cgroup),
}

fn follow_setup(
    opts: &ExecOptions,
    saved: &crate::state::Saved,
    placement: Placement,
    child: &crate::namespaces::Child,
    parent_end: &sync::Channel,
) -> Result<Option<std::os::fd::OwnedFd>> {
    if let Placement::Before(cg) = placement {
        if !cg.is_v2() {
            cg.add_pid(child.pid)?;
        }
    }
    parent_end.send(&Msg::Proceed)?;
    let mut console = None;
    loop {
        let (msg, fd) = parent_end
            .recv_ok()
            .with_context(|| format!("exec in container {:?}", saved.id))?;
        match msg {
            Msg::Console => {
                let master = fd.context("pty message without an fd")?;
                console = crate::terminal::route_pty(master, opts.console_socket.as_deref())?;
            }
            Msg::Seccomp => {
                let fd = fd.context("seccomp message without an fd")?;
                crate::seccomp::send_to_listener(saved, &fd, Status::Running)?;
            }
            Msg::Ready => break,
            other => bail!("exec: unexpected {other:?}"),
        }
    }
    if let Placement::AfterReady(cg) = placement {
        cg.add_pid(child.pid)?;
        parent_end.send(&Msg::Proceed)?;
    }
    if let Some(pid_file) = &opts.pid_file {
        crate::container::write_pid_file(pid_file, child.pid)?;
    }
    Ok(console)
}

/// What the exec'd child needs to know about the namespaces to join.
struct JoinPlan<'a> {
    joins: &'a [Join],
    in_userns: bool,
    /// The hop that cloned us already joined the container's user namespace.
    hop_joined_userns: bool,
    /// The container's filter applies to exec'd processes too.
    seccomp: Option<&'a crate::seccomp::Filter>,
    /// The v1 cgroup the process moves itself into (when the parent does not).
    join_cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// Without a mount namespace to join: the init's root (/proc/PID/root)
    /// to chroot into.
    root_of_init: Option<&'a std::os::fd::OwnedFd>,
    /// Placed in its (frozen) cgroup by the parent after Ready: wait for it.
    placed_after_ready: bool,
}

fn exec_child(
    process: &Process,
    plan: &JoinPlan,
    channel: &sync::Channel,
    preserve_fds: u32,
) -> Result<std::convert::Infallible> {
    let (joins, in_userns, hop_joined_userns) = (plan.joins, plan.in_userns, plan.hop_joined_userns);
    // Born in the container's pid namespace holding our fds: out of ptrace's
    // reach before anything else.
    init::set_dumpable(false)?;
    init::reset_signals();
    channel.expect(Msg::Proceed)?;
    if let Some(cgroup) = plan.join_cgroup {
        cgroup.join_self()?;
    }
    // As for the init, through the host's /proc: the container's could be
    // a bind over it.
    if let Some(adj) = process.oom_score_adj {
        crate::process::set_oom_score_adj(adj)?;
    }
    let skip = |kind| kind == NamespaceType::Pid || (kind == NamespaceType::User && hop_joined_userns);
    for join in joins.iter().filter(|j| !skip(j.kind)) {
        join.enter()?;
    }
    if let Some(root) = plan.root_of_init {
        nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(root)).context("fchdir to the container's root")?;
        nix::unistd::chroot(".").context("chroot into the container's root")?;
        nix::unistd::chdir("/").context("chdir /")?;
    }
    nix::unistd::setsid().context("setsid")?;
    let console = if process.terminal {
        Some(init::open_pty_in_container()?)
    } else {
        None
    };
    let launch = init::Launch {
        process,
        seccomp: plan.seccomp,
        channel,
        gate: if plan.placed_after_ready {
            &StartGate::Placed
        } else {
            &StartGate::Immediate
        },
        preserve_fds,
        in_userns,
        start_hooks: &[],
        state_json: "",
    };
    init::exec_process(&launch, console)
}
