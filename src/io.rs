//! A process's stdio as containerd hands it over: fifo paths, `file://` or
//! `binary://` URIs. stdout and stderr fifos go to the process directly, with
//! no copy in the shim; stdin goes through a pipe so CloseIO can end it; a
//! terminal's pty master is copied to and from the fifos by two threads; a
//! `binary://` logger reads the process's output from fds 3 and 4.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

/// The paths containerd gave for one process.
#[derive(Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

pub struct ProcessIo {
    pub paths: Paths,
    /// What the process gets as fds 0, 1 and 2, until it is handed over.
    stdio: Option<[OwnedFd; 3]>,
    /// Where stdin data goes; taken (closed) by CloseIO.
    stdin_sink: Arc<Mutex<Option<File>>>,
    console: Option<OwnedFd>,
}

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
        bail!("unsupported IO {path:?}: fifo paths and file:// are supported");
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening fifo {path}"))?;
    Ok(f.into())
}

impl ProcessIo {
    pub fn open(paths: Paths) -> Result<ProcessIo> {
        let stdin_sink = Arc::new(Mutex::new(None));
        if paths.terminal {
            return Ok(ProcessIo {
                stdio: Some([dev_null()?, dev_null()?, dev_null()?]),
                paths,
                stdin_sink,
                console: None,
            });
        }
        let (stdout, stderr) = match paths.stdout.strip_prefix("binary://") {
            Some(uri) => start_logger(uri)?,
            None => (open_output(&paths.stdout)?, open_output(&paths.stderr)?),
        };
        let stdin = if paths.stdin.is_empty() {
            dev_null()?
        } else {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe for stdin")?;
            *stdin_sink.lock().unwrap() = Some(File::from(write));
            copy_stdin(paths.stdin.clone(), stdin_sink.clone());
            read
        };
        Ok(ProcessIo {
            stdio: Some([stdin, stdout, stderr]),
            paths,
            stdin_sink,
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
            let out = File::from(open_output(&self.paths.stdout)?);
            let from = File::from(master.try_clone()?);
            std::thread::spawn(move || pump(from, out));
        }
        if !self.paths.stdin.is_empty() {
            *self.stdin_sink.lock().unwrap() = Some(File::from(master.try_clone()?));
            copy_stdin(self.paths.stdin.clone(), self.stdin_sink.clone());
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

    /// Where stdin goes; CloseIO takes it away, and the process reads EOF
    /// once what was written is consumed.
    pub fn stdin_handle(&self) -> Arc<Mutex<Option<File>>> {
        self.stdin_sink.clone()
    }
}

const LOGGER_READY_TIMEOUT_MS: i32 = 10_000;

/// Starts a `binary://PATH?k=v` logging program as containerd specifies:
/// args `k v`..., the process's stdout and stderr on its fds 3 and 4, and
/// fd 5 closed once it is ready. Returns the write ends for the process.
fn start_logger(uri: &str) -> Result<(OwnedFd, OwnedFd)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut args = vec![];
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(k.to_string());
        if !v.is_empty() {
            args.push(v.to_string());
        }
    }
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (out_r, out_w) = nix::unistd::pipe2(cloexec).context("pipe for the logger")?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec).context("pipe for the logger")?;
    let (ready_r, ready_w) = nix::unistd::pipe2(cloexec).context("pipe for the logger")?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(&args).stdin(std::process::Stdio::null());
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 between fork and exec is async-signal-safe; dup2 clears
    // close-on-exec on the targets 3, 4 and 5.
    unsafe {
        cmd.pre_exec(move || {
            let moved: Vec<RawFd> = fds
                .iter()
                .map(|fd| libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10))
                .collect();
            for (i, fd) in moved.iter().enumerate() {
                if *fd < 0 || libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("starting logger {path}"))?;
    drop((out_r, err_r, ready_w));
    // Wait for the logger: it closes fd 5 (or exits) when it is ready. A
    // logger that never does must not hang the shim.
    let mut pfd = libc::pollfd {
        fd: ready_r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    if unsafe { libc::poll(&mut pfd, 1, LOGGER_READY_TIMEOUT_MS) } <= 0 {
        bail!("logger {path} did not close fd 5 within {LOGGER_READY_TIMEOUT_MS} ms");
    }
    Ok((out_w, err_w))
}

/// Copies the stdin fifo into `sink` until EOF or CloseIO.
fn copy_stdin(path: String, sink: Arc<Mutex<Option<File>>>) {
    std::thread::spawn(move || {
        // Blocks until the client opens its end: this is its own thread.
        let Ok(mut fifo) = OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC).open(&path) else {
            return;
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match fifo.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Write through a clone, not under the lock: a full pipe must not
            // block CloseIO (which takes the shared end away).
            let out = sink.lock().unwrap().as_ref().and_then(|f| f.try_clone().ok());
            let Some(mut out) = out else { return };
            if out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        sink.lock().unwrap().take();
    });
}

fn pump(mut from: File, mut to: File) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}
