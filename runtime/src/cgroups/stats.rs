//! Reading a cgroup's usage back: what `events --stats` prints and what the
//! shim turns into containerd's metrics.

use super::{read, Cgroup};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub pids_current: u64,
    /// 0: no limit.
    pub pids_limit: u64,
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    pub cpu_periods: u64,
    pub cpu_throttled_periods: u64,
    pub cpu_throttled_ns: u64,
    pub memory_usage: u64,
    /// 0: no limit.
    pub memory_limit: u64,
    pub memory_max_usage: u64,
    pub memory_failcnt: u64,
    pub oom_kills: u64,
    /// memory.stat as the kernel writes it.
    pub memory_stat: BTreeMap<String, u64>,
}

fn num(dir: Option<&Path>, file: &str) -> u64 {
    dir.and_then(|d| read(d, file).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, oom_control).
fn keyed(dir: Option<&Path>, file: &str) -> BTreeMap<String, u64> {
    let text = dir.and_then(|d| read(d, file).ok()).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Clock ticks per second, for cpuacct.stat.
fn user_hz() -> u64 {
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

impl Cgroup {
    pub fn stats(&self) -> Stats {
        if self.unified {
            let dir = Some(self.dirs[0].1.as_path());
            let cpu = keyed(dir, "cpu.stat");
            let events = keyed(dir, "memory.events");
            let max = |file| {
                dir.and_then(|d| read(d, file).ok())
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0)
            };
            return Stats {
                pids_current: num(dir, "pids.current"),
                pids_limit: max("pids.max"),
                cpu_total_ns: cpu.get("usage_usec").copied().unwrap_or(0) * 1000,
                cpu_user_ns: cpu.get("user_usec").copied().unwrap_or(0) * 1000,
                cpu_kernel_ns: cpu.get("system_usec").copied().unwrap_or(0) * 1000,
                cpu_periods: cpu.get("nr_periods").copied().unwrap_or(0),
                cpu_throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
                cpu_throttled_ns: cpu.get("throttled_usec").copied().unwrap_or(0) * 1000,
                memory_usage: num(dir, "memory.current"),
                memory_limit: max("memory.max"),
                memory_max_usage: num(dir, "memory.peak"),
                memory_failcnt: events.get("max").copied().unwrap_or(0),
                oom_kills: events.get("oom_kill").copied().unwrap_or(0),
                memory_stat: keyed(dir, "memory.stat"),
            };
        }
        let (cpu, cpuacct, memory, pids) = (
            self.dir("cpu"),
            self.dir("cpuacct"),
            self.dir("memory"),
            self.dir("pids"),
        );
        let cpu_stat = keyed(cpu, "cpu.stat");
        let ticks = keyed(cpuacct, "cpuacct.stat");
        let ns_per_tick = 1_000_000_000 / user_hz();
        let limit = num(memory, "memory.limit_in_bytes");
        Stats {
            pids_current: num(pids, "pids.current"),
            pids_limit: num(pids, "pids.max"),
            cpu_total_ns: num(cpuacct, "cpuacct.usage"),
            cpu_user_ns: ticks.get("user").copied().unwrap_or(0) * ns_per_tick,
            cpu_kernel_ns: ticks.get("system").copied().unwrap_or(0) * ns_per_tick,
            cpu_periods: cpu_stat.get("nr_periods").copied().unwrap_or(0),
            cpu_throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
            cpu_throttled_ns: cpu_stat.get("throttled_time").copied().unwrap_or(0),
            memory_usage: num(memory, "memory.usage_in_bytes"),
            // v1 reports "no limit" as a huge page-aligned number.
            memory_limit: if limit >= i64::MAX as u64 / 2 { 0 } else { limit },
            memory_max_usage: num(memory, "memory.max_usage_in_bytes"),
            memory_failcnt: num(memory, "memory.failcnt"),
            oom_kills: keyed(memory, "memory.oom_control")
                .get("oom_kill")
                .copied()
                .unwrap_or(0),
            memory_stat: keyed(memory, "memory.stat"),
        }
    }
}
