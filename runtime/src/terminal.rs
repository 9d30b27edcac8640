//! process.terminal: the pty master's way out (console socket or the caller's
//! own terminal), window sizes, and the foreground loop that forwards
//! signals and copies terminal IO until the container's process exits.

use anyhow::{Context, Result};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error()).context("setting the terminal size");
    }
    Ok(())
}

/// Gives the pty the size of the caller's terminal, if stdin is one.
fn copy_size_from_stdin(master: &OwnedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes into a winsize we own.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        let _ = set_size(master, ws.ws_row, ws.ws_col);
    }
}

/// Sends the pty master over `--console-socket` with SCM_RIGHTS, as runc does.
pub fn send_to_console_socket(path: &Path, master: &OwnedFd) -> Result<()> {
    crate::sync::send_fd_to(path, b"/dev/ptmx", master.as_raw_fd(), "console socket")
}

/// Where a pty master goes: over the console socket when there is one
/// (nothing is kept), else back to the caller.
pub fn route_pty(master: OwnedFd, console_socket: Option<&Path>) -> Result<Option<OwnedFd>> {
    match console_socket {
        Some(path) => send_to_console_socket(path, &master).map(|_| None),
        None => Ok(Some(master)),
    }
}

/// The caller's terminal in raw mode while the container owns it.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            let _ = nix::sys::termios::tcsetattr(stdin, nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Signals the foreground loop takes over (all that can be caught).
fn forwarded_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::all();
    set.remove(nix::sys::signal::Signal::SIGKILL);
    set.remove(nix::sys::signal::Signal::SIGSTOP);
    set
}

/// Blocks the forwarded signals; call before the container starts so none is lost.
pub fn block_signals() -> Result<()> {
    forwarded_signals().thread_block().context("blocking signals")
}

/// Exit code in the shell's convention: the status, or 128+N for signal N.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> i32 {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    }
}

/// Forwards signals to `pid` and copies the pty (if any) to and from the
/// caller's stdio until `pid` exits; returns its exit code. `pid` must be
/// our child and the forwarded signals blocked.
pub fn foreground(pid: i32, pidfd: &OwnedFd, master: Option<OwnedFd>) -> Result<i32> {
    let sigfd =
        nix::sys::signalfd::SignalFd::with_flags(&forwarded_signals(), nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
            .context("signalfd")?;
    let _raw = master.as_ref().map(|m| {
        copy_size_from_stdin(m);
        RawMode::enter()
    });
    let master_fd = master.as_ref().map(|m| m.as_raw_fd()).unwrap_or(-1);
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds = [
            pollfd(sigfd.as_raw_fd(), true),
            pollfd(pidfd.as_raw_fd(), true),
            pollfd(0, stdin_open),
            pollfd(master_fd, master_open),
        ];
        // SAFETY: fds is a live array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(std::io::Error::last_os_error()).context("poll");
        }
        if fds[0].revents != 0 {
            if let Ok(Some(info)) = sigfd.read_signal() {
                forward(pid, info.ssi_signo as i32, master.as_ref());
            }
        }
        if fds[2].revents != 0 && !copy(0, master_fd) {
            stdin_open = false;
        }
        if fds[3].revents != 0 && !copy(master_fd, 1) {
            master_open = false;
        }
        if fds[1].revents != 0 {
            let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).context("waitpid")?;
            if master_open {
                drain(master_fd);
            }
            return Ok(exit_code(status));
        }
    }
}

fn pollfd(fd: RawFd, on: bool) -> libc::pollfd {
    libc::pollfd {
        fd: if on { fd } else { -1 },
        events: libc::POLLIN,
        revents: 0,
    }
}

fn forward(pid: i32, signo: i32, master: Option<&OwnedFd>) {
    match signo {
        libc::SIGWINCH => {
            if let Some(m) = master {
                copy_size_from_stdin(m);
            }
        }
        libc::SIGCHLD => {}
        sig => {
            // SAFETY: kill with a pid we own (our child, not yet reaped).
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Copies one read's worth; false on EOF or error.
fn copy(from: RawFd, to: RawFd) -> bool {
    let mut buf = [0u8; 16384];
    // SAFETY: reads into a live buffer.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut out = unsafe { std::fs::File::from_raw_fd(to) };
    let ok = std::io::Write::write_all(&mut out, &buf[..n as usize]).is_ok();
    std::mem::forget(out);
    ok
}

/// After the process exits: whatever it wrote last is still in the pty.
fn drain(master: RawFd) {
    // SAFETY: fcntl on an fd we hold.
    unsafe {
        libc::fcntl(
            master,
            libc::F_SETFL,
            libc::fcntl(master, libc::F_GETFL) | libc::O_NONBLOCK,
        )
    };
    while copy(master, 1) {}
}
