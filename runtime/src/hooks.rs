//! hooks: each runs with the container state as JSON on stdin, its own env
//! and args, and is killed when its timeout passes.

use crate::spec::Hook;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` in order; the first failure stops them and is the error.
pub fn run(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, state_json).with_context(|| format!("{kind} hook #{i} ({})", hook.path))?;
    }
    Ok(())
}

/// Runs every one of `hooks`, a failure only warned about: the spec's rule
/// for poststart and poststop, whose failures must not stop the lifecycle.
pub fn run_warning(kind: &str, hooks: &[Hook], state_json: &[u8]) {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(hook, state_json) {
            log::warn!("{kind} hook #{i} ({}): {e:#}", hook.path);
        }
    }
}

/// `hooks`, each without an `env` of its own given `env`: runc runs
/// startContainer hooks in the container with the process's environment.
pub fn with_default_env(hooks: &[Hook], env: &[String]) -> Vec<Hook> {
    hooks
        .iter()
        .map(|h| Hook {
            env: if h.env.is_empty() { env.to_vec() } else { h.env.clone() },
            ..h.clone()
        })
        .collect()
}

fn run_one(hook: &Hook, state_json: &[u8]) -> Result<()> {
    let mut cmd = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for e in &hook.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    // stderr goes to a memory file, not a pipe: a chatty hook cannot fill
    // it and hang, and no reader thread is needed (the runtime must stay
    // single-threaded: it clones containers afterwards).
    let mut stderr = memfd("hook-stderr")?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone()?);
    let mut child = cmd.spawn().context("starting")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores its stdin may close it early: not an error.
        let _ = stdin.write_all(state_json);
    }
    let status = match hook.timeout {
        None => child.wait().context("waiting")?,
        Some(secs) => {
            let deadline = Instant::now() + Duration::from_secs(secs as u64);
            loop {
                if let Some(status) = child.try_wait().context("waiting")? {
                    break status;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("timed out after {secs}s");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    if !status.success() {
        let stderr = tail(&mut stderr, STDERR_SHOWN);
        let stderr = stderr.trim();
        bail!("{status}{}{stderr}", if stderr.is_empty() { "" } else { ": " });
    }
    Ok(())
}

/// How much of a failed hook's stderr its error shows (the end of it).
const STDERR_SHOWN: u64 = 4096;

fn memfd(name: &str) -> Result<std::fs::File> {
    let name = std::ffi::CString::new(name)?;
    // SAFETY: a valid C string and flags; the fd is owned at once.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for a hook's stderr");
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The last `max` bytes of `file`, as text.
fn tail(file: &mut std::fs::File, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let mut text = String::new();
    if file.seek(SeekFrom::Start(len.saturating_sub(max))).is_ok() {
        let mut bytes = vec![];
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["X=1".into()],
            timeout,
        }
    }

    #[test]
    fn state_on_stdin_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = sh(
            &format!("cat > {} && echo $X >> {}", out.display(), out.display()),
            None,
        );
        run("prestart", &[hook], b"{\"id\":\"c\"}").unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"id\":\"c\"}1\n");
    }

    #[test]
    fn chatty_hook_does_not_hang() {
        let hook = sh("head -c 300000 /dev/zero >&2; exit 0", Some(20));
        run("poststop", &[hook], b"{}").unwrap();
    }

    #[test]
    fn failure_and_timeout_are_errors() {
        let e = format!(
            "{:#}",
            run("poststart", &[sh("echo nope >&2; exit 3", None)], b"{}").unwrap_err()
        );
        assert!(e.contains("poststart hook #0") && e.contains("nope"), "{e}");
        let e = format!("{:#}", run("prestart", &[sh("sleep 5", Some(1))], b"{}").unwrap_err());
        assert!(e.contains("timed out"), "{e}");
    }
}
