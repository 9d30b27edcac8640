//! A process's stdio as containerd hands it over: fifo paths (or `file://`).
//! stdout and stderr fifos go to the process directly, with no copy in the
//! shim; stdin goes through a pipe so CloseIO can end it; a terminal's pty
//! master is copied to and from the fifos by two threads.

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
    /// What the process gets as fds 0, 1 and 2.
    stdio: [OwnedFd; 3],
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
                stdio: [dev_null()?, dev_null()?, dev_null()?],
                paths,
                stdin_sink,
                console: None,
            });
        }
        let stdin = if paths.stdin.is_empty() {
            dev_null()?
        } else {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe for stdin")?;
            *stdin_sink.lock().unwrap() = Some(File::from(write));
            copy_stdin(paths.stdin.clone(), stdin_sink.clone());
            read
        };
        Ok(ProcessIo {
            stdio: [stdin, open_output(&paths.stdout)?, open_output(&paths.stderr)?],
            paths,
            stdin_sink,
            console: None,
        })
    }

    pub fn stdio(&self) -> [RawFd; 3] {
        [
            self.stdio[0].as_raw_fd(),
            self.stdio[1].as_raw_fd(),
            self.stdio[2].as_raw_fd(),
        ]
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

    /// CloseIO: the process reads EOF once what was written is consumed.
    pub fn close_stdin(&self) {
        self.stdin_sink.lock().unwrap().take();
    }

    /// After the process is started the shim keeps no copy of its stdio.
    pub fn release_stdio(&mut self) {
        if let (Ok(a), Ok(b), Ok(c)) = (dev_null(), dev_null(), dev_null()) {
            self.stdio = [a, b, c];
        }
    }
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
            let mut guard = sink.lock().unwrap();
            let Some(out) = guard.as_mut() else { return };
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
