//! A process's stdio as containerd hands it over: fifo paths, `file://` or
//! `binary://` URIs. stdout and stderr fifos go to the process directly, with
//! no copy in the shim; stdin goes through a pipe so CloseIO can end it; a
//! terminal's pty master is copied to and from the fifos. Every copy is a
//! task on the shim's one thread, over non-blocking fds: no fifo open or read
//! ever blocks the shim.

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// The paths containerd gave for one process.
#[derive(Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// A task on the event loop that ends when its owner is dropped.
pub struct Background(tokio::task::AbortHandle);

impl Background {
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Background {
        Background(tokio::spawn(task).abort_handle())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Paths {
    pub fn new(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Paths {
        Paths {
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            terminal,
        }
    }
}

pub struct ProcessIo {
    pub paths: Paths,
    /// What the process gets as fds 0, 1 and 2, until it is handed over.
    stdio: Option<[OwnedFd; 3]>,
    /// CloseIO: ends the stdin copy once what is buffered in the fifo is passed on.
    close_stdin: Arc<Notify>,
    /// The stdin copy: it would wait on the fifo for as long as the client
    /// keeps it open, so it goes with the process. Output copies end by
    /// themselves once the process and its pty are gone.
    stdin_copy: Option<Background>,
    console: Option<OwnedFd>,
}

/// A pipe's capacity for the process's output fifos: fewer wakeups of the
/// writer and the reader (Linux's default is 64 KiB; 1 MiB is the default
/// ceiling for unprivileged pipes).
const OUTPUT_PIPE_SIZE: libc::c_int = 1 << 20;

fn dev_null() -> Result<OwnedFd> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?
        .into())
}

/// Opens an output fifo without blocking: O_RDWR never waits for a reader.
fn open_output(path: &str) -> Result<OwnedFd> {
    if path.is_empty() {
        return dev_null();
    }
    if let Some(file) = path.strip_prefix("file://") {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .with_context(|| format!("opening {file}"))?;
        return Ok(f.into());
    }
    if path.contains("://") {
        bail!("unsupported IO {path:?}: fifo paths, file:// and binary:// are supported");
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening fifo {path}"))?;
    // Best effort: a pipe that cannot grow still works.
    // SAFETY: fcntl on an fd we own.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETPIPE_SZ, OUTPUT_PIPE_SIZE) };
    Ok(f.into())
}

/// Opens the stdin fifo for reading without waiting for its writer.
fn open_input(path: &str) -> Result<AsyncFd<OwnedFd>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening stdin fifo {path}"))?;
    register(OwnedFd::from(f))
}

fn nonblocking(fd: OwnedFd) -> Result<AsyncFd<OwnedFd>> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_GETFL).context("F_GETFL")?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_SETFL(flags)).context("F_SETFL O_NONBLOCK")?;
    register(fd)
}

pub fn register(fd: OwnedFd) -> Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd`, so it stays open and the same until it is dropped.
    unsafe { AsyncFd::register(fd) }
        .map_err(|e| e.into_parts().1)
        .context("registering an fd with the event loop")
}

impl ProcessIo {
    /// No stdio at all (unit tests).
    #[cfg(test)]
    pub fn none() -> ProcessIo {
        ProcessIo {
            paths: Paths::default(),
            stdio: None,
            close_stdin: Arc::new(Notify::new()),
            stdin_copy: None,
            console: None,
        }
    }

    pub async fn open(paths: Paths) -> Result<ProcessIo> {
        let close_stdin = Arc::new(Notify::new());
        if paths.terminal {
            return Ok(ProcessIo {
                stdio: Some([dev_null()?, dev_null()?, dev_null()?]),
                paths,
                close_stdin,
                stdin_copy: None,
                console: None,
            });
        }
        let (stdout, stderr) = match paths.stdout.strip_prefix("binary://") {
            Some(uri) => start_logger(uri).await?,
            None => (open_output(&paths.stdout)?, open_output(&paths.stderr)?),
        };
        let (stdin, stdin_copy) = if paths.stdin.is_empty() {
            (dev_null()?, None)
        } else {
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe for stdin")?;
            let from = open_input(&paths.stdin)?;
            let copying = copy(from, nonblocking(write)?, Some(close_stdin.clone()));
            (read, Some(Background::spawn(copying)))
        };
        Ok(ProcessIo {
            stdio: Some([stdin, stdout, stderr]),
            paths,
            close_stdin,
            stdin_copy,
            console: None,
        })
    }

    /// The process's stdio, handed over once: the shim keeps no copy.
    pub fn take_stdio(&mut self) -> Result<[OwnedFd; 3]> {
        self.stdio.take().context("the process's stdio was handed over already")
    }

    /// Connects the pty master to the fifos.
    pub fn attach_console(&mut self, master: OwnedFd) -> Result<()> {
        if !self.paths.stdout.is_empty() {
            let to = nonblocking(open_output(&self.paths.stdout)?)?;
            tokio::spawn(copy(nonblocking(master.try_clone()?)?, to, None));
        }
        if !self.paths.stdin.is_empty() {
            let from = open_input(&self.paths.stdin)?;
            let copying = copy(from, nonblocking(master.try_clone()?)?, Some(self.close_stdin.clone()));
            self.stdin_copy = Some(Background::spawn(copying));
        }
        self.console = Some(master);
        Ok(())
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(master) = &self.console else {
            bail!("the process has no terminal")
        };
        myshim_runtime::terminal::set_size(master, height as u16, width as u16)
    }

    /// CloseIO: the process reads EOF once what was written is consumed.
    pub fn close_stdin(&self) {
        self.close_stdin.notify_one();
    }
}

enum Read {
    Data(usize),
    /// End of input: EOF, or EIO from a pty master whose slave is closed.
    End,
    /// Nothing buffered right now.
    Empty,
}

fn read_now(fd: RawFd, buf: &mut [u8]) -> std::io::Result<Read> {
    match nix::unistd::read(fd, buf) {
        Ok(0) | Err(nix::errno::Errno::EIO) => Ok(Read::End),
        Ok(n) => Ok(Read::Data(n)),
        Err(nix::errno::Errno::EAGAIN) => Ok(Read::Empty),
        Err(e) => Err(e.into()),
    }
}

async fn read(from: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<Read> {
    loop {
        let mut ready = from.readable().await?;
        match read_now(from.as_raw_fd(), buf)? {
            Read::Empty => ready.clear_ready(),
            other => return Ok(other),
        }
    }
}

async fn write_all(to: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut ready = to.writable().await?;
        match ready.try_io(|fd| nix::unistd::write(fd, data).map_err(std::io::Error::from)) {
            Ok(n) => data = &data[n?..],
            Err(_would_block) => continue,
        }
    }
    Ok(())
}

/// Copies `from` to `to` until EOF or a write error; `stop` (CloseIO) ends
/// it once `from` has nothing more buffered.
async fn copy(from: AsyncFd<OwnedFd>, to: AsyncFd<OwnedFd>, stop: Option<Arc<Notify>>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut stopping = false;
    loop {
        let next = if stopping {
            read_now(from.as_raw_fd(), &mut buf)
        } else {
            match &stop {
                Some(stop) => tokio::select! {
                    r = read(&from, &mut buf) => r,
                    _ = stop.notified() => { stopping = true; continue; }
                },
                None => read(&from, &mut buf).await,
            }
        };
        match next {
            Ok(Read::Data(n)) => {
                if write_all(&to, &buf[..n]).await.is_err() {
                    return;
                }
            }
            Ok(Read::End | Read::Empty) | Err(_) => return,
        }
    }
}

const LOGGER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a `binary://PATH?k=v` logging program as containerd specifies:
/// args `k v`..., the process's stdout and stderr on its fds 3 and 4, and
/// fd 5 closed once it is ready. Returns the write ends for the process.
async fn start_logger(uri: &str) -> Result<(OwnedFd, OwnedFd)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut args = vec![];
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(k.to_string());
        if !v.is_empty() {
            args.push(v.to_string());
        }
    }
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe for the logger")?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe for the logger")?;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe for the logger")?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(&args).stdin(std::process::Stdio::null());
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    use std::os::unix::process::CommandExt;
    // SAFETY: only fcntl and dup2 between fork and exec, no allocation: both
    // are async-signal-safe. The fds move above 10 first so that no dup2
    // onto 3, 4 or 5 closes one still to be moved; dup2 clears close-on-exec
    // on its target.
    unsafe {
        cmd.pre_exec(move || {
            let mut moved = [-1 as RawFd; 3];
            for (slot, fd) in moved.iter_mut().zip(fds) {
                *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            }
            for (target, fd) in (3..).zip(moved) {
                if fd < 0 || libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("starting logger {path}"))?;
    drop((out_r, err_r, ready_w));
    // The logger closes fd 5 (or exits) when it is ready; one that never
    // does must not hang the shim.
    let ready = nonblocking(ready_r)?;
    match tokio::time::timeout(LOGGER_READY_TIMEOUT, ready.readable()).await {
        Ok(Ok(_)) => Ok((out_w, err_w)),
        Ok(Err(e)) => Err(e).context("waiting for the logger"),
        Err(_) => bail!("logger {path} did not close fd 5 within {LOGGER_READY_TIMEOUT:?}"),
    }
}
