//! Whether the runtime has real privileges. Root of the initial user
//! namespace has them; an ordinary user has not, and neither has uid 0 of
//! a user namespace, which is what containerd and its shim are inside
//! rootlesskit. Without them the kernel refuses what only the host's root
//! may do (make cgroups in the host's hierarchies, mknod, load BPF device
//! programs, mount a cgroup2 that belongs to the host's cgroup namespace),
//! and the runtime does what a rootless one does instead.

use std::sync::OnceLock;

/// The uid_map of the initial user namespace: every id to itself.
const INITIAL_UID_MAP: [u64; 3] = [0, 0, 4_294_967_295];

/// True when this process is not in the initial user namespace. Read once
/// (before any clone), so a child that has entered another one still
/// answers for the runtime.
pub fn in_user_namespace() -> bool {
    static IN_USERNS: OnceLock<bool> = OnceLock::new();
    *IN_USERNS.get_or_init(|| {
        let map = match std::fs::read_to_string("/proc/self/uid_map") {
            Ok(map) => map,
            Err(e) => {
                log::debug!("reading /proc/self/uid_map: {e}: taken as the initial user namespace");
                return false;
            }
        };
        !is_initial_uid_map(&map)
    })
}

fn is_initial_uid_map(map: &str) -> bool {
    let mut lines = map.lines();
    let first: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    first == INITIAL_UID_MAP && lines.next().is_none()
}

/// Root of the initial user namespace: the host's root.
pub fn privileged() -> bool {
    nix::unistd::geteuid().is_root() && !in_user_namespace()
}

/// uid 0 of a user namespace that some unprivileged user made (rootlesskit,
/// rootless Podman), by runc's rule: unless `USER` says root.
pub fn root_of_users_namespace() -> bool {
    nix::unistd::geteuid().is_root() && in_user_namespace() && user_is_not_root(std::env::var_os("USER"))
}

/// runc honours XDG_RUNTIME_DIR for uid 0 in a user namespace when `USER`
/// is unset or names someone other than root (Podman may pass no `USER`).
fn user_is_not_root(user: Option<std::ffi::OsString>) -> bool {
    user.is_none_or(|u| u != "root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_root_or_not() {
        assert!(user_is_not_root(None));
        assert!(user_is_not_root(Some("alice".into())));
        assert!(user_is_not_root(Some("".into())));
        assert!(!user_is_not_root(Some("root".into())));
    }

    #[test]
    fn the_initial_map_and_others() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map("0 1000 1\n1 100000 65536\n"));
        assert!(!is_initial_uid_map(""));
    }

    /// The map of a real user namespace, as `unshare -Ur` makes one.
    #[test]
    fn a_user_namespace_is_recognised() {
        let out = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "cat", "/proc/self/uid_map"])
            .output();
        let Some(out) = out.ok().filter(|o| o.status.success()) else {
            eprintln!("skipped: no unprivileged user namespaces here");
            return;
        };
        assert!(!is_initial_uid_map(&String::from_utf8_lossy(&out.stdout)));
    }
}
