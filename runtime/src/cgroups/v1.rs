//! cgroup v1 files for linux.resources.

use super::{read, write, Cgroup};
use crate::resources::{effective_device_rules, DeviceRule, Resources, ThrottleDevice};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// A new cpuset cgroup starts with empty cpus and mems, and takes no task
/// until they are set: copy them from the nearest parent that has them.
pub(super) fn inherit_cpuset(dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if !read(dir, file)?.trim().is_empty() {
            continue;
        }
        let mut ancestors: Vec<&Path> = dir.ancestors().skip(1).take_while(|p| p.join(file).exists()).collect();
        let value = ancestors
            .iter()
            .map(|p| read(p, file).unwrap_or_default())
            .find(|v| !v.trim().is_empty());
        let Some(value) = value else { continue };
        // Fill every empty level from the top down.
        ancestors.reverse();
        for level in ancestors.iter().copied().chain(std::iter::once(dir)) {
            if read(level, file)?.trim().is_empty() {
                write(level, file, value.trim())?;
            }
        }
    }
    Ok(())
}

/// The kernel refuses a memory limit above the memory+swap limit and a
/// memory+swap limit below the memory limit, so the order of the two writes
/// depends on whether the limits go up or down (an update from 64M/128M to
/// 256M/512M must write memsw first, the way back memory first).
fn apply_memory_and_swap(dir: &Path, limit: Option<i64>, swap: Option<i64>) -> Result<()> {
    let memsw = "memory.memsw.limit_in_bytes";
    // As runc: lifting the memory limit lifts the swap limit with it.
    let swap = match (limit, swap) {
        (Some(-1), None) if dir.join(memsw).exists() => Some(-1),
        _ => swap,
    };
    let swap_first = match (limit, swap) {
        (Some(_), Some(-1)) => true,
        (Some(_), Some(swap)) => {
            let current = read(dir, "memory.limit_in_bytes")?;
            let current: u64 = current
                .trim()
                .parse()
                .with_context(|| format!("parsing {}/memory.limit_in_bytes {current:?}", dir.display()))?;
            u64::try_from(swap).is_ok_and(|swap| current < swap)
        }
        _ => false,
    };
    let write_limit = || match limit {
        Some(limit) => write_memory_limit(dir, limit),
        None => Ok(()),
    };
    let write_swap = || match swap {
        Some(swap) => write(dir, memsw, &swap.to_string()),
        None => Ok(()),
    };
    if swap_first {
        write_swap()?;
        write_limit()
    } else {
        write_limit()?;
        write_swap()
    }
}

/// A limit below what the cgroup already uses fails with EBUSY: say so.
fn write_memory_limit(dir: &Path, limit: i64) -> Result<()> {
    let file = "memory.limit_in_bytes";
    write(dir, file, &limit.to_string()).map_err(|e| {
        let busy = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EBUSY));
        if !busy {
            return e;
        }
        let usage = read(dir, "memory.usage_in_bytes").unwrap_or_default();
        let peak = read(dir, "memory.max_usage_in_bytes").unwrap_or_default();
        e.context(format!(
            "unable to set memory limit to {limit} (current usage: {}, peak usage: {})",
            usage.trim(),
            peak.trim()
        ))
    })
}

pub(super) fn apply(cg: &Cgroup, r: &Resources) -> Result<()> {
    if let (Some(m), Some(dir)) = (&r.memory, cg.dir("memory")) {
        apply_memory_and_swap(dir, m.limit, m.swap)?;
        if let Some(reservation) = m.reservation {
            write(dir, "memory.soft_limit_in_bytes", &reservation.to_string())?;
        }
        if let Some(swappiness) = m.swappiness {
            write(dir, "memory.swappiness", &swappiness.to_string())?;
        }
        if m.disable_oom_killer == Some(true) {
            write(dir, "memory.oom_control", "1")?;
        }
        if let Some(tcp) = m.kernel_tcp {
            write(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(dir) = cg.dir("cpu") {
            let files = [
                ("cpu.shares", c.shares.map(|v| v.to_string())),
                ("cpu.cfs_period_us", c.period.map(|v| v.to_string())),
                ("cpu.cfs_quota_us", c.quota.map(|v| v.to_string())),
                ("cpu.cfs_burst_us", c.burst.map(|v| v.to_string())),
                ("cpu.idle", c.idle.map(|v| v.to_string())),
            ];
            for (file, value) in files {
                if let Some(value) = value {
                    write(dir, file, &value)?;
                }
            }
            apply_realtime(dir, c)?;
        }
        if let Some(dir) = cg.dir("cpuset") {
            if let Some(cpus) = &c.cpus {
                write(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = &c.mems {
                write(dir, "cpuset.mems", mems)?;
            }
        }
    }
    if let (Some(p), Some(dir)) = (&r.pids, cg.dir("pids")) {
        write(dir, "pids.max", &pids_max(p.limit))?;
    }
    if let (Some(b), Some(dir)) = (&r.block_io, cg.dir("blkio")) {
        // Kernels without CFQ have only BFQ's files.
        let prefix = if dir.join("blkio.weight").exists() {
            "blkio"
        } else {
            "blkio.bfq"
        };
        if let Some(w) = b.weight {
            write(dir, &format!("{prefix}.weight"), &w.to_string())?;
        }
        for d in &b.weight_device {
            if let Some(w) = d.weight {
                write(
                    dir,
                    &format!("{prefix}.weight_device"),
                    &format!("{}:{} {w}", d.major, d.minor),
                )?;
            }
        }
        let throttles: [(&str, &Vec<ThrottleDevice>); 4] = [
            ("blkio.throttle.read_bps_device", &b.throttle_read_bps_device),
            ("blkio.throttle.write_bps_device", &b.throttle_write_bps_device),
            ("blkio.throttle.read_iops_device", &b.throttle_read_iops_device),
            ("blkio.throttle.write_iops_device", &b.throttle_write_iops_device),
        ];
        for (file, list) in throttles {
            for d in list {
                write(dir, file, &format!("{}:{} {}", d.major, d.minor, d.rate))?;
            }
        }
    }
    match cg.dir("hugetlb") {
        Some(dir) => {
            for h in &r.hugepage_limits {
                write(
                    dir,
                    &format!("hugetlb.{}.limit_in_bytes", h.page_size),
                    &h.limit.to_string(),
                )?;
            }
        }
        None if !r.hugepage_limits.is_empty() => {
            bail!("linux.resources.hugepageLimits: no hugetlb hierarchy is mounted (cgroup v1)")
        }
        None => {}
    }
    if let Some(net) = &r.network {
        if let Some(id) = net.class_id {
            let dir = cg
                .dir("net_cls")
                .context("linux.resources.network.classID: no net_cls hierarchy is mounted")?;
            write(dir, "net_cls.classid", &id.to_string())?;
        }
        if !net.priorities.is_empty() {
            let dir = cg
                .dir("net_prio")
                .context("linux.resources.network.priorities: no net_prio hierarchy is mounted")?;
            for p in &net.priorities {
                write(dir, "net_prio.ifpriomap", &format!("{} {}", p.name, p.priority))?;
            }
        }
    }
    if !r.rdma.is_empty() {
        let dir = cg
            .dir("rdma")
            .context("linux.resources.rdma: no rdma hierarchy is mounted")?;
        for (device, limits) in &r.rdma {
            write(dir, "rdma.max", &limits.max_line(device))?;
        }
    }
    if !r.unified.is_empty() {
        anyhow::bail!("linux.resources.unified needs cgroup v2; this host has v1 controllers");
    }
    if let Some(dir) = cg.dir("devices") {
        apply_devices(dir, &r.devices)?;
    }
    Ok(())
}

/// cpu.rt_period_us, then cpu.rt_runtime_us: a group's realtime runtime
/// comes out of its parent's, which the kernel refuses to overdraw.
fn apply_realtime(dir: &Path, c: &crate::resources::Cpu) -> Result<()> {
    if let Some(period) = c.realtime_period {
        write(dir, "cpu.rt_period_us", &period.to_string())?;
    }
    let Some(runtime) = c.realtime_runtime else {
        return Ok(());
    };
    let result = write(dir, "cpu.rt_runtime_us", &runtime.to_string());
    let einval = result
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<std::io::Error>()?.raw_os_error());
    if einval == Some(libc::EINVAL) {
        let parent = dir.parent().unwrap_or(dir).join("cpu.rt_runtime_us");
        return result.with_context(|| format!("the parent's {} must leave enough for it", parent.display()));
    }
    result
}

pub(super) fn pids_max(limit: i64) -> String {
    if limit <= 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

fn apply_devices(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    for rule in effective_device_rules(rules) {
        let file = if rule.allow { "devices.allow" } else { "devices.deny" };
        write(dir, file, &rule.v1_line())?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    write(dir, "freezer.state", want)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(dir, "freezer.state")?.trim() != want {
        if Instant::now() > deadline {
            anyhow::bail!("freezer.state of {} never became {want}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(1));
        write(dir, "freezer.state", want).context("freezer")?;
    }
    Ok(())
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    read(dir, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_rdma_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |c: &str| {
            let d = tmp.path().join(c);
            std::fs::create_dir(&d).unwrap();
            (c.to_string(), d)
        };
        let cg = Cgroup {
            dirs: vec![dir("net_cls"), dir("net_prio"), dir("rdma")],
            unified: false,
        };
        let r: Resources = serde_json::from_value(serde_json::json!({
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3}}
        }))
        .unwrap();
        apply(&cg, &r).unwrap();
        let read = |c: &str, f: &str| std::fs::read_to_string(tmp.path().join(c).join(f)).unwrap();
        assert_eq!(read("net_cls", "net_cls.classid"), "1048577");
        assert_eq!(read("net_prio", "net_prio.ifpriomap"), "eth0 5");
        assert_eq!(read("rdma", "rdma.max"), "mlx5_1 hca_handle=3 hca_object=max");
        let missing = Cgroup {
            dirs: vec![],
            unified: false,
        };
        let e = apply(&missing, &r).unwrap_err().to_string();
        assert!(e.contains("net_cls"), "{e}");
    }
}
