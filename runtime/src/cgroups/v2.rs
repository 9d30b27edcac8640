//! cgroup v2 files for linux.resources.

use super::{read, write};
use crate::resources::Resources;
use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Enables the controllers in the subtree_control of each ancestor of the
/// new cgroup that lacks them, so that it gets every controller the root
/// has (or, below a delegated subtree, every one delegated). Walks up from
/// the parent only to the first level that enables all of the root's for
/// its children, as every level above it must, then writes on the way
/// down where something is missing. A level we may not write (above a
/// delegation point) is fine when it already enables everything it has:
/// only then is its cgroup.controllers read.
pub(super) fn enable_controllers(dir: &Path) -> Result<()> {
    enable_controllers_below(Path::new(super::CGROUP_ROOT), dir)
}

fn enable_controllers_below(root: &Path, dir: &Path) -> Result<()> {
    let words = |text: String| text.split_whitespace().map(String::from).collect::<Vec<_>>();
    let mut available = words(read(root, "cgroup.controllers")?);
    let mut incomplete = vec![];
    for level in dir.ancestors().skip(1).take_while(|p| p.starts_with(root)) {
        let enabled = words(read(level, "cgroup.subtree_control")?);
        if available.iter().all(|c| enabled.contains(c)) {
            break;
        }
        incomplete.push((level, enabled));
    }
    // Top down, each level offers its children what its parent offered it.
    for (level, enabled) in incomplete.into_iter().rev() {
        let missing: Vec<String> = available
            .iter()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        let Err(e) = write(level, "cgroup.subtree_control", &missing.join(" ")) else {
            continue;
        };
        let denied = e
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error())
            .is_some_and(|errno| errno == libc::EACCES || errno == libc::EPERM);
        let has = words(read(level, "cgroup.controllers")?);
        if !denied || !has.iter().all(|c| enabled.contains(c)) {
            return Err(e);
        }
        available = enabled;
    }
    Ok(())
}

/// OCI cpu shares (2..262144) to cgroup v2 cpu.weight (1..10000), as runc.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// OCI blkio weight (10..1000) to v2 io.weight (1..10000), as runc.
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub(super) fn apply(dir: &Path, r: &Resources) -> Result<()> {
    if let Some(m) = &r.memory {
        if let Some(limit) = m.limit {
            write(dir, "memory.max", &max_or(limit))?;
        }
        if let Some(reservation) = m.reservation {
            write(dir, "memory.low", &max_or(reservation))?;
        }
        if let Some(swap) = m.swap {
            // OCI swap is memory+swap; v2 counts swap alone.
            let value = match (swap, m.limit) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l > 0 => s.saturating_sub(l).to_string(),
                (s, _) => s.to_string(),
            };
            write(dir, "memory.swap.max", &value)?;
        }
        if m.kernel_tcp.is_some() {
            bail!("linux.resources.memory.kernelTCP: cgroup v2 has no TCP memory limit");
        }
        if m.swappiness.is_some() {
            bail!("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness");
        }
        if m.disable_oom_killer == Some(true) {
            bail!("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer");
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(shares) = c.shares {
            write(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
        }
        if c.quota.is_some() || c.period.is_some() {
            let quota = c
                .quota
                .filter(|q| *q > 0)
                .map(|q| q.to_string())
                .unwrap_or_else(|| "max".into());
            write(dir, "cpu.max", &format!("{quota} {}", c.period.unwrap_or(100_000)))?;
        }
        if let Some(burst) = c.burst {
            write(dir, "cpu.max.burst", &burst.to_string())?;
        }
        if let Some(idle) = c.idle {
            write(dir, "cpu.idle", &idle.to_string())?;
        }
        if c.realtime_runtime.is_some() || c.realtime_period.is_some() {
            bail!("linux.resources.cpu.realtime*: cgroup v2 has no realtime cpu controller");
        }
        if let Some(cpus) = &c.cpus {
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = &c.mems {
            write(dir, "cpuset.mems", mems)?;
        }
    }
    if let Some(p) = &r.pids {
        write(dir, "pids.max", &super::v1::pids_max(p.limit))?;
    }
    if let Some(b) = &r.block_io {
        // BFQ takes the OCI weight as it is; io.weight (io.cost) its own scale.
        let bfq = dir.join("io.bfq.weight").exists();
        let (file, scale): (&str, fn(u16) -> u64) = if bfq {
            ("io.bfq.weight", u64::from)
        } else {
            ("io.weight", blkio_weight_to_io)
        };
        if let Some(w) = b.weight {
            write(dir, file, &format!("default {}", scale(w)))?;
        }
        for d in &b.weight_device {
            if let Some(w) = d.weight {
                write(dir, file, &format!("{}:{} {}", d.major, d.minor, scale(w)))?;
            }
        }
        let throttles = [
            ("rbps", &b.throttle_read_bps_device),
            ("wbps", &b.throttle_write_bps_device),
            ("riops", &b.throttle_read_iops_device),
            ("wiops", &b.throttle_write_iops_device),
        ];
        for (key, list) in throttles {
            for d in list {
                write(dir, "io.max", &format!("{}:{} {key}={}", d.major, d.minor, d.rate))?;
            }
        }
    }
    for h in &r.hugepage_limits {
        write(dir, &format!("hugetlb.{}.max", h.page_size), &h.limit.to_string())?;
    }
    if r.network.is_some() {
        bail!("linux.resources.network: classID and priorities need cgroup v1 (net_cls, net_prio)");
    }
    for (device, limits) in &r.rdma {
        write(dir, "rdma.max", &limits.max_line(device))?;
    }
    for (key, value) in &r.unified {
        if key.contains('/') || key.starts_with('.') {
            bail!("linux.resources.unified {key:?}: not a cgroup file name");
        }
        write(dir, key, value)?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_frozen(dir) != frozen {
        if Instant::now() > deadline {
            bail!(
                "cgroup {} did not {}",
                dir.display(),
                if frozen { "freeze" } else { "thaw" }
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    read(dir, "cgroup.events").is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
}

/// SIGKILLs the whole subtree through cgroup.kill; false when the kernel
/// has no such file (before 5.14), for the caller to kill pid by pid.
pub(super) fn kill(dir: &Path) -> Result<bool> {
    if !dir.join("cgroup.kill").exists() {
        log::debug!("{}: no cgroup.kill, killing the listed pids", dir.display());
        return Ok(false);
    }
    write(dir, "cgroup.kill", "1")?;
    log::debug!("{}: killed what was left through cgroup.kill", dir.display());
    Ok(true)
}

/// Waits (bounded) until no process is left in the cgroup or below it.
pub(super) fn wait_unpopulated(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(dir, "cgroup.events")?.lines().any(|l| l.trim() == "populated 1") {
        if Instant::now() > deadline {
            bail!("processes are left in cgroup {} after cgroup.kill", dir.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain files stand in for the cgroup ones: a write replaces the text.
    #[test]
    fn controllers_enabled_below_the_first_level_that_has_them_all() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let level = |rel: &str, subtree: Option<&str>| {
            let d = root.join(rel);
            std::fs::create_dir_all(&d).unwrap();
            if let Some(text) = subtree {
                std::fs::write(d.join("cgroup.subtree_control"), text).unwrap();
            }
            d
        };
        std::fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        // No subtree_control at the root: reading it would fail the call.
        let a = level("a", Some("cpu io memory pids\n"));
        let b = level("a/b", Some("cpu\n"));
        let c = level("a/b/c", Some("\n"));
        enable_controllers_below(root, &c.join("container")).unwrap();
        let read = |d: &Path| std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap();
        assert_eq!(
            read(&a),
            "cpu io memory pids\n",
            "a level that had them all was written"
        );
        assert_eq!(read(&b), "+io +memory +pids");
        assert_eq!(read(&c), "+cpu +io +memory +pids");
        // The parent has them all already: nothing above it is read.
        std::fs::write(c.join("cgroup.subtree_control"), "cpu io memory pids").unwrap();
        std::fs::remove_file(b.join("cgroup.subtree_control")).unwrap();
        enable_controllers_below(root, &c.join("container")).unwrap();
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10000);
    }
}
