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
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().context("starting")?;
    // Read stderr while the hook runs: a chatty hook must not fill the pipe
    // and hang.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
            text
        })
    });
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
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        let stderr = stderr.trim();
        bail!("{status}{}{stderr}", if stderr.is_empty() { "" } else { ": " });
    }
    Ok(())
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
