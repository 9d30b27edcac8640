//! cgroups: host detection. Creating cgroups and applying linux.resources is
//! the cgroups work still to come; until then containers run in the caller's.

use anyhow::{Context, Result};
use std::path::PathBuf;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// True when /sys/fs/cgroup itself is cgroup2 (a v2-only host).
pub fn is_unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The v1 hierarchy mount points under /sys/fs/cgroup (not the unified one).
pub fn v1_hierarchies() -> Result<Vec<PathBuf>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            (fstype == "cgroup" && mount_point.starts_with("/sys/fs/cgroup/")).then(|| PathBuf::from(mount_point))
        })
        .collect())
}
