//! process: user and groups, capabilities, rlimits, noNewPrivileges,
//! oomScoreAdj, umask, cwd, env, and finding and executing args[0].

use crate::capabilities::CapSets;
use crate::safe_path::open_in_root;
use crate::spec::{Process, Rlimit};
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn rlimit_resource(name: &str) -> Result<libc::__rlimit_resource_t> {
    Ok(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        other => bail!("unknown rlimit type {other:?}"),
    })
}

pub fn set_rlimits(rlimits: &[Rlimit]) -> Result<()> {
    for r in rlimits {
        let limit = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: limit is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(rlimit_resource(&r.kind)?, &limit) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("setrlimit {} soft={} hard={}", r.kind, r.soft, r.hard));
        }
    }
    Ok(())
}

/// Writes process.oomScoreAdj for the calling process.
/// Sets `KEY=VALUE` in `env`: it replaces every entry of the same key, as
/// `runc exec --env` overrides a variable of the spec (last one wins).
pub fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = entry.split_once('=').map_or(entry, |(k, _)| k);
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(entry.to_string());
}

pub fn set_oom_score_adj(value: i32) -> Result<()> {
    crate::safe_path::write_host_procfs("/proc/self/oom_score_adj", &value.to_string()).context("process.oomScoreAdj")
}

/// Finds args[0] inside the root the way execvp would: a path with a `/`
/// as is, otherwise each directory of the process's PATH. The errors carry
/// runc's words, which engines match to choose the exit code (Docker and
/// Podman: "executable file not found" or "no such file or directory" is
/// 127, "permission denied" 126).
pub fn find_executable(root: &OwnedFd, process: &Process) -> Result<PathBuf> {
    let name = &process.args[0];
    let executable = |candidate: &Path| -> std::io::Result<bool> {
        let fd = open_in_root(root, candidate, libc::O_PATH).map_err(|e| {
            e.downcast::<std::io::Error>()
                .unwrap_or_else(|_| std::io::Error::from_raw_os_error(libc::ENOENT))
        })?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0)
    };
    if name.contains('/') {
        let candidate = Path::new(&process.cwd).join(name);
        return match executable(&candidate) {
            Ok(true) => Ok(candidate),
            Ok(false) => bail!("exec: {name:?}: permission denied (process.args[0] is not an executable file)"),
            Err(e) => bail!("exec: {name:?}: stat {name}: {} (process.args[0])", io_text(&e)),
        };
    }
    let path = process
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|candidate| executable(candidate).unwrap_or(false));
    match found {
        Some(candidate) => Ok(candidate),
        None => bail!("exec: {name:?}: executable file not found in $PATH (process.args[0], PATH={path})"),
    }
}

/// An errno's text without Rust's " (os error N)" suffix, as Go prints it.
fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => nix::errno::Errno::from_raw(errno).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Becomes the configured user with the configured capabilities. The
/// bounding set is dropped first: that needs CAP_SETPCAP, which setuid loses.
pub fn become_user(process: &Process, in_userns: bool) -> Result<()> {
    // No capabilities in the config means none at all, as in runc.
    let none = crate::spec::Capabilities::default();
    let caps = CapSets::new(process.capabilities.as_ref().unwrap_or(&none))?;
    caps.drop_bounding()?;
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let user = &process.user;
    let groups: Vec<nix::unistd::Gid> = user
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    if let Err(e) = nix::unistd::setgroups(&groups) {
        // In a user namespace with setgroups denied, only an empty list is
        // possible and it is already so.
        if !(in_userns && groups.is_empty()) {
            return Err(e).with_context(|| format!("setgroups {:?}", user.additional_gids));
        }
    }
    let gid = nix::unistd::Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("setresgid {}", user.gid))?;
    let uid = nix::unistd::Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("setresuid {}", user.uid))?;
    caps.apply()?;
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(mask) = user.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

pub fn set_no_new_privileges() -> Result<()> {
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_NO_NEW_PRIVS)");
    }
    Ok(())
}

/// argv and envp, ready for execve.
pub struct ExecArgs {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// The home directory of `uid` in the /etc/passwd of `root`, or "/" (runc's
/// default) when there is no such file or line.
fn home_of(root: &OwnedFd, uid: u32) -> String {
    let passwd = open_in_root(root, Path::new("/etc/passwd"), libc::O_RDONLY)
        .ok()
        .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
        .unwrap_or_default();
    home_in_passwd(&passwd, uid).unwrap_or("/").to_string()
}

fn home_in_passwd(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[2].parse() == Ok(uid) && !fields[5].is_empty()).then(|| fields[5])
    })
}

impl ExecArgs {
    /// args and env for execve; without a HOME in the env, the user's home
    /// from the container's /etc/passwd, as runc sets it.
    pub fn new(root: &OwnedFd, path: &Path, process: &Process) -> Result<ExecArgs> {
        let c = |s: &str| CString::new(s).with_context(|| format!("{s:?} contains a NUL byte"));
        let mut env: Vec<String> = process.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", home_of(root, process.user.uid)));
        }
        Ok(ExecArgs {
            path: c(path.to_str().context("executable path is not UTF-8")?)?,
            argv: process.args.iter().map(|a| c(a)).collect::<Result<_>>()?,
            envp: env.iter().map(|e| c(e)).collect::<Result<_>>()?,
        })
    }

    /// Replaces the process; returns only on failure.
    pub fn exec(&self) -> anyhow::Error {
        let err = nix::unistd::execve(&self.path, &self.argv, &self.envp).unwrap_err();
        anyhow::Error::new(err).context(format!("exec {:?}", self.path))
    }
}

/// Marks every fd from `first` on close-on-exec: no host fd other than
/// stdio and the preserved ones may reach the container process.
pub fn cloexec_fds_from(first: u32) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags here.
    if unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) } == 0 {
        return Ok(());
    }
    // Older kernels (< 5.11) or a filter without close_range: one fd at a time.
    let entries = std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")?;
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd >= first as i32) {
        // SAFETY: setting FD_CLOEXEC on an fd of ours.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_the_users_passwd_line() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbad line\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:5:5:::\n";
        assert_eq!(home_in_passwd(passwd, 0), Some("/root"));
        assert_eq!(home_in_passwd(passwd, 1000), Some("/home/app"));
        assert_eq!(home_in_passwd(passwd, 5), None);
        assert_eq!(home_in_passwd(passwd, 42), None);
    }

    #[test]
    fn set_env_overrides_by_key() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".into(), "AB=2".into()];
        set_env(&mut env, "A=3");
        set_env(&mut env, "NEW=x");
        set_env(&mut env, "A=4");
        assert_eq!(env, ["PATH=/bin", "AB=2", "NEW=x", "A=4"]);
    }
}
