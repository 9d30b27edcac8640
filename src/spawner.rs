//! The fork helper. The shim's event loop is one thread, but the
//! containerd-shim crate starts short-lived blocking-pool threads (socket
//! setup, reconnects), and cloning a process that has other threads and
//! running ordinary Rust code in the child can deadlock. So before the loop
//! starts the shim forks this helper, which stays single-threaded. For each
//! request it forks a worker, with CLONE_PARENT so that the worker and the
//! containers it clones (CLONE_PARENT again) are the shim's own children
//! and its reaper sees their exits. The worker runs the runtime's create,
//! exec, start or delete in process (no runtime binary is executed), hooks
//! included, replies on the request's own channel and exits: a slow hook
//! holds up its own request only, and the shim awaits every reply on its
//! event loop.

use anyhow::{bail, Context, Result};
use myshim_runtime::sync::{self, Channel};
use myshim_runtime::{container, exec, spec::Process};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Serialize, Deserialize)]
enum Request {
    Create {
        root: PathBuf,
        id: String,
        bundle: PathBuf,
    },
    Exec {
        root: PathBuf,
        id: String,
        process: Box<Process>,
    },
    Start {
        root: PathBuf,
        id: String,
    },
    Delete {
        root: PathBuf,
        id: String,
    },
}

#[derive(Serialize, Deserialize)]
enum Reply {
    /// A new process, whose pidfd (and pty master) come with the reply.
    Spawned {
        pid: i32,
    },
    Done,
    Err(String),
}

/// A process the helper started: the pid, a pidfd, and its pty master.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub console: Option<OwnedFd>,
}

static HELPER: OnceLock<Channel> = OnceLock::new();

/// The helper exited (it is killed with the shim, or died of a bug).
#[derive(Debug)]
struct HelperGone;

impl std::fmt::Display for HelperGone {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the spawn helper is gone")
    }
}

impl std::error::Error for HelperGone {}

/// Error text longer than this is cut (keeping its start) so that a reply
/// always fits in one packet.
const ERROR_MAX: usize = 16 * 1024;

/// Forks the helper. Call first in the serving shim's main, while it has
/// one thread; `start` and `delete` invocations need none.
pub fn fork_helper() -> Result<()> {
    let (shim_end, helper_end) = sync::pair()?;
    // SAFETY: nothing but this thread exists yet.
    match unsafe { nix::unistd::fork() }.context("forking the spawn helper")? {
        nix::unistd::ForkResult::Child => {
            drop(shim_end);
            // SAFETY: plain prctl; the helper must not outlive the shim.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            serve(helper_end);
            // SAFETY: leave without running the shim's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(helper_end);
            let _ = HELPER.set(shim_end);
            Ok(())
        }
    }
}

/// Creates a container whose stdio are `stdio` (stdin, stdout, stderr).
pub async fn create(root: PathBuf, id: &str, bundle: PathBuf, stdio: [RawFd; 3]) -> Result<Spawned> {
    let request = Request::Create {
        root,
        id: id.into(),
        bundle,
    };
    spawned(call(&request, &stdio).await?)
}

/// Starts `process` in container `id`.
pub async fn exec(root: PathBuf, id: &str, process: Process, stdio: [RawFd; 3]) -> Result<Spawned> {
    let request = Request::Exec {
        root,
        id: id.into(),
        process: Box::new(process),
    };
    spawned(call(&request, &stdio).await?)
}

/// Lets created container `id` run (its poststart hooks included).
pub async fn start(root: PathBuf, id: &str) -> Result<()> {
    call(&Request::Start { root, id: id.into() }, &[]).await.map(drop)
}

/// Deletes container `id`, killing what is left of it (as `delete --force`);
/// in the shim itself when the helper is gone, so that containerd can
/// always clean up.
pub async fn delete(root: PathBuf, id: &str) -> Result<()> {
    let request = Request::Delete {
        root: root.clone(),
        id: id.into(),
    };
    match call(&request, &[]).await {
        Err(e) if e.chain().any(|c| c.is::<HelperGone>()) => {
            log::warn!("deleting {id} in the shim: {e:#}");
            container::delete(&root, id, true)
        }
        other => other.map(drop),
    }
}

fn spawned(reply: Option<Spawned>) -> Result<Spawned> {
    reply.context("the spawn helper started no process")
}

/// Sends `request` (with `stdio`) to the helper with a channel of its own
/// for the reply, and awaits that on the event loop. A call given up (its
/// future dropped) drops its channel: the worker's reply goes nowhere, and
/// a process it started runs untracked, as its caller gave up on it.
async fn call(request: &Request, stdio: &[RawFd]) -> Result<Option<Spawned>> {
    let helper = HELPER.get().context("the spawn helper is not running")?;
    let (ours, workers) = sync::pair()?;
    let mut fds = vec![workers.raw()];
    fds.extend(stdio);
    if let Err(e) = helper.send_bytes(&serde_json::to_vec(request)?, &fds) {
        return Err(anyhow::Error::new(HelperGone).context(e));
    }
    drop(workers);
    let readable = crate::io::register(ours.as_fd().try_clone_to_owned()?)?;
    // One datagram: once readable, recv does not block.
    readable.readable().await?.clear_ready();
    let (bytes, mut fds) = ours.recv_bytes()?;
    if bytes.is_empty() {
        bail!("the spawn helper's worker died before it replied");
    }
    match serde_json::from_slice::<Reply>(&bytes).context("reply from the spawn helper")? {
        Reply::Err(e) => bail!("{e}"),
        Reply::Done => Ok(None),
        Reply::Spawned { pid } => {
            if fds.is_empty() {
                bail!("the spawn helper sent no pidfd");
            }
            let pidfd = fds.remove(0);
            Ok(Some(Spawned {
                pid,
                pidfd,
                console: fds.pop(),
            }))
        }
    }
}

fn serve(channel: Channel) {
    // The runtime's own log lines go to containerd's log fifo, as the shim's do.
    let args: Vec<String> = std::env::args().collect();
    if let Ok(flags) = containerd_shim::parse(&args[1..]) {
        let _ = containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id);
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok();
    // The shim's stdout is the pipe on which `start` waits for EOF: let go of it.
    reset_stdio(null.as_ref());
    let mut failed_reads = 0;
    loop {
        let (bytes, mut fds) = match channel.recv_bytes() {
            Ok((bytes, _)) if bytes.is_empty() => return, // the shim is gone
            Ok(request) => request,
            // A channel that keeps failing is broken.
            Err(_) if failed_reads < 3 => {
                failed_reads += 1;
                continue;
            }
            Err(_) => return,
        };
        failed_reads = 0;
        if fds.is_empty() {
            continue; // no channel to reply on
        }
        let reply = Channel::from(fds.remove(0));
        // SAFETY: the helper is single-threaded; the worker's parent is the
        // shim (CLONE_PARENT), and it ends with _exit.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_PARENT as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            drop(channel);
            // SAFETY: plain prctl; the worker must not outlive the shim.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            let result = serde_json::from_slice::<Request>(&bytes)
                .context("request to the spawn helper")
                .and_then(|request| run(request, &fds));
            drop(fds);
            reset_stdio(null.as_ref());
            send_reply(&reply, result);
            // SAFETY: leave without running the shim's destructors.
            unsafe { libc::_exit(0) }
        }
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            send_reply(
                &reply,
                Err(anyhow::Error::new(e).context("forking a worker of the spawn helper")),
            );
        }
        // The worker has its copies of the reply channel and the stdio.
        drop(reply);
        drop(fds);
        crate::trim_heap();
    }
}

/// The caller waits for a reply whatever happened: a short one if the real
/// one could not go.
fn send_reply(channel: &Channel, result: Result<Option<Spawned>>) {
    let sent = match result {
        Ok(Some(spawned)) => {
            let mut out = vec![spawned.pidfd.as_raw_fd()];
            out.extend(spawned.console.as_ref().map(|c| c.as_raw_fd()));
            let reply = serde_json::to_vec(&Reply::Spawned { pid: spawned.pid }).unwrap_or_default();
            channel.send_bytes(&reply, &out)
        }
        Ok(None) => channel.send_bytes(&serde_json::to_vec(&Reply::Done).unwrap_or_default(), &[]),
        Err(e) => {
            let mut text = format!("{e:#}");
            if text.len() > ERROR_MAX {
                text.truncate(text.floor_char_boundary(ERROR_MAX));
                text.push_str(" [...]");
            }
            channel.send_bytes(&serde_json::to_vec(&Reply::Err(text)).unwrap_or_default(), &[])
        }
    };
    if let Err(e) = sent {
        let short = Reply::Err(format!("the spawn helper could not reply: {e:#}"));
        let _ = channel.send_bytes(&serde_json::to_vec(&short).unwrap_or_default(), &[]);
    }
}

fn reset_stdio(null: Option<&std::fs::File>) {
    if let Some(null) = null {
        for target in 0..3 {
            // SAFETY: dup2 of an fd we own onto our own stdio.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
}

/// Runs `f` with the three fds as this process's stdio, which the
/// container's process inherits.
fn with_stdio<T>(fds: &[OwnedFd], f: impl FnOnce() -> Result<T>) -> Result<T> {
    if fds.len() != 3 {
        bail!("expected 3 stdio fds, got {}", fds.len());
    }
    for (target, fd) in fds.iter().enumerate() {
        // SAFETY: dup2 of fds we own onto our stdio; the helper is single-threaded.
        if unsafe { libc::dup2(fd.as_raw_fd(), target as RawFd) } < 0 {
            return Err(std::io::Error::last_os_error()).context("dup2 of the container's stdio");
        }
    }
    f()
}

fn run(request: Request, stdio: &[OwnedFd]) -> Result<Option<Spawned>> {
    match request {
        Request::Create { root, id, bundle } => with_stdio(stdio, || {
            let created = container::create(&container::CreateOptions {
                root,
                id,
                bundle,
                console_socket: None,
                pid_file: None,
                no_pivot: false,
                preserve_fds: 0,
                keep_console: true,
                clone_parent: true,
            })?;
            Ok(Some(Spawned {
                pid: created.pid,
                pidfd: created.pidfd,
                console: created.console,
            }))
        }),
        Request::Exec { root, id, process } => with_stdio(stdio, || {
            let spawned = exec::spawn(&exec::ExecOptions {
                root,
                id,
                process: *process,
                console_socket: None,
                pid_file: None,
                detach: true,
                preserve_fds: 0,
                clone_parent: true,
                ignore_paused: false,
                sub_cgroup: vec![],
            })?;
            Ok(Some(Spawned {
                pid: spawned.pid,
                pidfd: spawned.pidfd,
                console: spawned.console,
            }))
        }),
        Request::Start { root, id } => container::start(&root, &id).map(|_| None),
        Request::Delete { root, id } => container::delete(&root, &id, true).map(|_| None),
    }
}
