//! `myshim check`: can this host run containers, and how. Each check says
//! ok, warn or fail, what it found, and for warn and fail the one thing to
//! do about it. Checks look, and try only what leaves nothing behind (a
//! user namespace in a child that exits, syscalls with arguments that make
//! them fail early).

use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub found: String,
    /// What to do, for warn and fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(name: &'static str, found: impl Into<String>) -> Check {
    Check {
        name,
        level: Level::Ok,
        found: found.into(),
        fix: None,
    }
}

fn not_ok(name: &'static str, level: Level, found: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        level,
        found: found.into(),
        fix: Some(fix.into()),
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Every check, in the order `check` prints them.
pub fn run() -> Vec<Check> {
    let uid = nix::unistd::geteuid().as_raw();
    vec![
        cgroup_mode(),
        cgroup_controllers(),
        cgroup_delegation(uid),
        systemd(),
        user_namespaces(),
        subordinate_ids(uid),
        newidmap(),
        seccomp(),
        syscalls(),
        lsm(),
        criu(),
    ]
}

fn cgroup_mode() -> Check {
    let name = "cgroup mode";
    if crate::cgroups::is_unified_host() {
        return ok(name, "v2 (unified)");
    }
    let hybrid = nix::sys::statfs::statfs("/sys/fs/cgroup/unified").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270);
    match Path::new("/sys/fs/cgroup/memory").is_dir() || Path::new("/sys/fs/cgroup/pids").is_dir() {
        true if hybrid => ok(
            name,
            "v1 hybrid (v1 controllers, a cgroup2 mount at /sys/fs/cgroup/unified)",
        ),
        true => ok(name, "v1"),
        false => not_ok(
            name,
            Level::Fail,
            "no cgroup filesystem at /sys/fs/cgroup",
            "mount cgroup2 at /sys/fs/cgroup (or boot with systemd, which does)",
        ),
    }
}

fn cgroup_controllers() -> Check {
    let name = "cgroup controllers";
    let present: Vec<String> = if crate::cgroups::is_unified_host() {
        read_trim("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    } else {
        // /proc/cgroups: name, hierarchy, count, enabled.
        read_trim("/proc/cgroups")
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 4 && f[1] != "0" && f[3] == "1").then(|| f[0].to_string())
            })
            .collect()
    };
    let wanted = ["cpu", "memory", "pids"];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !present.iter().any(|p| p == w))
        .collect();
    match missing.is_empty() {
        true => ok(name, present.join(" ")),
        false => not_ok(
            name,
            Level::Warn,
            format!("{} (no {})", present.join(" "), missing.join(", ")),
            format!(
                "limits of linux.resources.{} are refused until the kernel has those controllers",
                missing.join("/")
            ),
        ),
    }
}

fn cgroup_delegation(uid: u32) -> Check {
    let name = "cgroup delegation";
    if crate::rootless::privileged() {
        return ok(name, "not needed: running with real privileges");
    }
    if !crate::cgroups::is_unified_host() {
        return not_ok(
            name,
            Level::Warn,
            "cgroup v1: no delegation to an unprivileged user",
            "containers run without a cgroup of their own (no limits); use cgroup v2 for rootless limits",
        );
    }
    let own = read_trim("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(String::from))
        .unwrap_or_default();
    let dir = Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'));
    let writable = nix::unistd::access(&dir.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
        && nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok();
    match writable {
        true => ok(name, format!("{} is delegated to uid {uid}", dir.display())),
        false => not_ok(
            name,
            Level::Warn,
            format!("{} is not writable by uid {uid}", dir.display()),
            "run under a delegated cgroup (systemd-run --user --scope -p Delegate=yes) to get limits",
        ),
    }
}

fn systemd() -> Check {
    let name = "systemd cgroup driver";
    let running = Path::new("/run/systemd/system").is_dir();
    let bus = Path::new("/run/dbus/system_bus_socket").exists();
    match (running, bus) {
        (false, _) => ok(name, "systemd is not PID 1: cgroupfs driver (the only one myshim has)"),
        (true, _) => not_ok(
            name,
            Level::Warn,
            format!(
                "systemd runs (D-Bus socket {})",
                if bus { "present" } else { "missing" }
            ),
            "use the cgroupfs driver (SystemdCgroup = false, no --systemd-cgroup): myshim has no systemd driver yet",
        ),
    }
}

/// Tries a user namespace in a child (unshare), which then exits.
fn try_user_namespace() -> Result<(), String> {
    // SAFETY: fork of this single-threaded command; the child only calls
    // unshare and _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            // SAFETY: leave the child at once.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(nix::sys::wait::WaitStatus::Exited(_, errno)) => Err(nix::errno::Errno::from_raw(errno).desc().into()),
            other => Err(format!("{other:?}")),
        },
        Err(e) => Err(format!("fork: {e}")),
    }
}

fn user_namespaces() -> Check {
    let name = "user namespaces";
    let max = read_trim("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    match try_user_namespace() {
        Ok(()) => ok(name, format!("allowed (max_user_namespaces {max})")),
        Err(e) => {
            let mut why = vec![format!("unshare(CLONE_NEWUSER): {e}")];
            for (sysctl, bad) in [
                ("/proc/sys/user/max_user_namespaces", "0"),
                ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
                ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
            ] {
                if read_trim(sysctl).as_deref() == Some(bad) {
                    why.push(format!(
                        "{} = {bad}",
                        sysctl.trim_start_matches("/proc/sys/").replace('/', ".")
                    ));
                }
            }
            not_ok(
                name,
                Level::Fail,
                why.join("; "),
                "allow them (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone = 1, or an AppArmor profile for myshim)",
            )
        }
    }
}

/// The ranges `/etc/subuid`-style `text` gives the user `name` or `uid`.
fn ranges_for(text: &str, name: &str, uid: u32) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            (who == name || who == uid.to_string()).then(|| format!("{start}+{count}"))
        })
        .collect()
}

fn subordinate_ids(uid: u32) -> Check {
    let name = "subordinate ids";
    if uid == 0 {
        return ok(name, "not needed for root");
    }
    let user = crate::state::user_name(uid);
    let uids = ranges_for(&std::fs::read_to_string("/etc/subuid").unwrap_or_default(), &user, uid);
    let gids = ranges_for(&std::fs::read_to_string("/etc/subgid").unwrap_or_default(), &user, uid);
    match (uids.is_empty(), gids.is_empty()) {
        (false, false) => ok(name, format!("{user}: uids {}, gids {}", uids.join(" "), gids.join(" "))),
        _ => not_ok(
            name,
            Level::Warn,
            format!("{user}: {} in /etc/subuid, {} in /etc/subgid", uids.len(), gids.len()),
            format!("give {user} ranges (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}); without them only one id maps"),
        ),
    }
}

fn newidmap() -> Check {
    let name = "newuidmap/newgidmap";
    let mut missing = vec![];
    for tool in ["newuidmap", "newgidmap"] {
        let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists());
        let usable = found.as_ref().is_some_and(|p| {
            let meta = std::fs::metadata(p).ok();
            // setuid root, or file capabilities (security.capability xattr).
            meta.is_some_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o4000 != 0)
                || xattr_present(p, "security.capability")
        });
        if !usable {
            missing.push(tool);
        }
    }
    match missing.is_empty() {
        true => ok(name, "present, setuid or with file capabilities"),
        false => not_ok(
            name,
            Level::Warn,
            format!("{} missing or without privileges", missing.join(", ")),
            "apt-get install uidmap (needed for more than one id in a rootless container)",
        ),
    }
}

fn xattr_present(path: &Path, name: &str) -> bool {
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: valid C strings; a zero-sized buffer only asks for the size.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

fn seccomp() -> Check {
    let name = "seccomp";
    let actions = read_trim("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    match (libseccomp::ScmpVersion::current(), actions.is_empty()) {
        (Ok(v), false) => ok(
            name,
            format!(
                "libseccomp {}.{}.{}; kernel actions: {actions}",
                v.major, v.minor, v.micro
            ),
        ),
        (Err(e), _) => not_ok(name, Level::Fail, format!("libseccomp: {e}"), "install libseccomp2"),
        (_, true) => not_ok(
            name,
            Level::Fail,
            "the kernel has no seccomp filter support",
            "a kernel built with CONFIG_SECCOMP_FILTER",
        ),
    }
}

/// Whether syscall `nr`, called with arguments that make it fail before it
/// does anything, exists (anything but ENOSYS).
fn syscall_exists(nr: libc::c_long, args: [libc::c_long; 5]) -> bool {
    // SAFETY: each probe passes invalid arguments (a bad fd, a null or
    // too-small struct) that the kernel refuses before acting.
    let rc = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
    !(rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

fn syscalls() -> Check {
    let name = "kernel interfaces";
    let probes: [(&str, libc::c_long, [libc::c_long; 5]); 5] = [
        // clone3 with a size below the smallest struct: EINVAL.
        ("clone3", libc::SYS_clone3, [0, 0, 0, 0, 0]),
        ("pidfd_open", libc::SYS_pidfd_open, [-1, 0, 0, 0, 0]),
        ("openat2", libc::SYS_openat2, [-1, 0, 0, 0, 0]),
        ("mount_setattr", libc::SYS_mount_setattr, [-1, 0, 0, 0, 0]),
        ("close_range", libc::SYS_close_range, [libc::c_long::MAX, 0, 0, 0, 0]),
    ];
    let missing: Vec<&str> = probes
        .iter()
        .filter(|(_, nr, args)| !syscall_exists(*nr, *args))
        .map(|(n, ..)| *n)
        .collect();
    match missing.is_empty() {
        true => ok(name, "clone3, pidfd_open, openat2, mount_setattr, close_range"),
        false => not_ok(
            name,
            Level::Fail,
            format!("missing: {}", missing.join(", ")),
            "a kernel of 5.12 or later (myshim needs these)",
        ),
    }
}

fn lsm() -> Check {
    let name = "LSM";
    let apparmor = read_trim("/sys/module/apparmor/parameters/enabled").as_deref() == Some("Y");
    let selinux = read_trim("/sys/fs/selinux/enforce");
    match selinux.as_deref() {
        Some("1") => not_ok(
            name,
            Level::Warn,
            "SELinux enforcing",
            "myshim refuses selinuxLabel and labels nothing: run with SELinux permissive or without labels",
        ),
        _ if apparmor => ok(name, "AppArmor (profiles are applied)"),
        _ => ok(name, "none (apparmorProfile is then an error)"),
    }
}

fn criu() -> Check {
    let name = "CRIU";
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("criu")).find(|c| c.exists()))
        .unwrap_or_default();
    match found {
        Some(path) => not_ok(
            name,
            Level::Warn,
            format!("{} found", path.display()),
            "checkpoint/restore is not in myshim yet: use runc for it",
        ),
        None => ok(name, "not installed (myshim has no checkpoint/restore yet)"),
    }
}

/// The checks as text: `LEVEL  name: found` and an indented fix.
pub fn text(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let level = match c.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{level}  {}: {}\n", c.name, c.found));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      -> {fix}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:65536\nbob:300000:10\n";
        assert_eq!(ranges_for(text, "alice", 1000), ["100000+65536"]);
        assert_eq!(ranges_for(text, "carol", 1001), ["200000+65536"]);
        assert!(ranges_for(text, "dave", 1002).is_empty());
    }

    #[test]
    fn this_kernel_has_what_myshim_uses() {
        let c = syscalls();
        assert_eq!(c.level, Level::Ok, "{c:?}");
    }

    #[test]
    fn text_shows_the_fix_under_a_warning() {
        let t = text(&[not_ok("x", Level::Warn, "found", "do this"), ok("y", "fine")]);
        assert_eq!(t, "warn  x: found\n      -> do this\nok    y: fine\n");
    }
}
