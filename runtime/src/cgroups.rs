//! cgroups: host detection. Creating cgroups and applying linux.resources is
//! the cgroups work still to come; until then containers run in the caller's.

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// True when /sys/fs/cgroup itself is cgroup2 (a v2-only host).
pub fn is_unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}
