//! Reading a cgroup's usage back: what `events --stats` prints (runc's
//! shape, so its parsers read ours) and what the shim turns into
//! containerd's v1 or v2 Metrics.
//!
//! Limits are the kernel's own numbers: on v1 an unlimited memory limit is
//! the huge page-aligned value the file holds, on v2 `max` is u64::MAX,
//! as runc and containerd's cgroups library report them (Docker turns
//! anything above the machine's memory into the machine's memory).

use super::{read, Cgroup};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// By page size as the kernel names it ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Not in runc's events: the shim's memory_oom_control / memory_events.
    #[serde(skip)]
    pub memory_events: MemoryEvents,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuUsage {
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Memory {
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, on v2 too (as runc reports it).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as the kernel writes it.
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Pids {
    pub current: u64,
    /// 0: no limit.
    pub limit: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// One device's counter: `op` is "Read", "Write", "Sync", "Async",
/// "Discard" or "Total" (v1), "Read"/"Write" (v2, from io.stat).
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Hugetlb {
    pub usage: u64,
    /// Peak usage on v1, the limit on v2 (each version's own file).
    pub max: u64,
    pub failcnt: u64,
}

/// memory.oom_control (v1) and memory.events (v2).
#[derive(Debug, Default, Clone)]
pub struct MemoryEvents {
    pub oom_kill_disable: u64,
    pub under_oom: u64,
    pub low: u64,
    pub high: u64,
    /// v2's "max": times the limit was hit (v1: memory.failcnt).
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    pub oom_group_kill: u64,
}

/// A number file; `max` reads as `max_is` (v2's unlimited).
fn num_or(dir: Option<&Path>, file: &str, max_is: u64) -> u64 {
    let text = dir.and_then(|d| read(d, file).ok()).unwrap_or_default();
    match text.trim() {
        "max" => max_is,
        t => t.parse().unwrap_or(0),
    }
}

fn num(dir: Option<&Path>, file: &str) -> u64 {
    num_or(dir, file, 0)
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

fn numbers(dir: Option<&Path>, file: &str) -> Vec<u64> {
    let text = dir.and_then(|d| read(d, file).ok()).unwrap_or_default();
    text.split_whitespace().filter_map(|n| n.parse().ok()).collect()
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

/// `MAJ:MIN Op value` lines of a v1 blkio file (its `Total` line dropped).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (major, minor) = words.next()?.split_once(':')?;
            let (op, value) = match (words.next()?, words.next()) {
                (op, Some(value)) => (op.to_string(), value),
                // blkio.time_recursive and sectors: no op.
                (value, None) => (String::new(), value),
            };
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2's io.stat (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...`) as runc
/// reports it: bytes and ios per device as Read/Write entries.
fn io_stat_entries(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (vec![], vec![]);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some((major, minor)) = words.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// The huge page sizes the hugetlb files of `dir` are named for.
fn hugepage_sizes(dir: &Path) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name
                .strip_prefix("hugetlb.")?
                .strip_suffix(".max")
                .or_else(|| name.strip_prefix("hugetlb.")?.strip_suffix(".limit_in_bytes"))?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    sizes.dedup();
    sizes
}

/// One entry per page size the hugetlb files of `dir` name, read by `entry`.
fn hugetlb_by_size(dir: Option<&Path>, entry: impl Fn(&str) -> Hugetlb) -> BTreeMap<String, Hugetlb> {
    dir.map(hugepage_sizes)
        .unwrap_or_default()
        .into_iter()
        .map(|size| {
            let e = entry(&size);
            (size, e)
        })
        .collect()
}

impl Cgroup {
    pub fn stats(&self) -> Stats {
        if self.unified {
            self.stats_v2(self.dirs.first().map(|(_, d)| d.as_path()))
        } else {
            self.stats_v1()
        }
    }

    fn stats_v2(&self, dir: Option<&Path>) -> Stats {
        let cpu = keyed(dir, "cpu.stat");
        let at = |key: &str| cpu.get(key).copied().unwrap_or(0);
        let events = keyed(dir, "memory.events");
        let event = |key: &str| events.get(key).copied().unwrap_or(0);
        let raw = keyed(dir, "memory.stat");
        let usage = MemoryEntry {
            limit: num_or(dir, "memory.max", u64::MAX),
            usage: num(dir, "memory.current"),
            max: num(dir, "memory.peak"),
            failcnt: event("max"),
        };
        let swap_limit = num_or(dir, "memory.swap.max", u64::MAX);
        let swap = MemoryEntry {
            limit: if swap_limit == u64::MAX || usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_limit + usage.limit
            },
            usage: num(dir, "memory.swap.current") + usage.usage,
            max: num(dir, "memory.swap.peak") + usage.max,
            failcnt: 0,
        };
        let io = dir.and_then(|d| read(d, "io.stat").ok()).unwrap_or_default();
        let (io_service_bytes_recursive, io_serviced_recursive) = io_stat_entries(&io);
        let hugetlb = hugetlb_by_size(dir, |size| Hugetlb {
            usage: num(dir, &format!("hugetlb.{size}.current")),
            max: num_or(dir, &format!("hugetlb.{size}.max"), u64::MAX),
            failcnt: keyed(dir, &format!("hugetlb.{size}.events"))
                .get("max")
                .copied()
                .unwrap_or(0),
        });
        Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    total: at("usage_usec") * 1000,
                    kernel: at("system_usec") * 1000,
                    user: at("user_usec") * 1000,
                    ..Default::default()
                },
                throttling: Throttling {
                    periods: at("nr_periods"),
                    throttled_periods: at("nr_throttled"),
                    throttled_time: at("throttled_usec") * 1000,
                },
            },
            memory: Memory {
                cache: raw.get("file").copied().unwrap_or(0),
                usage,
                swap,
                raw,
                ..Default::default()
            },
            pids: Pids {
                current: num(dir, "pids.current"),
                limit: num(dir, "pids.max"),
            },
            blkio: Blkio {
                io_service_bytes_recursive,
                io_serviced_recursive,
                ..Default::default()
            },
            hugetlb,
            memory_events: MemoryEvents {
                low: event("low"),
                high: event("high"),
                max: event("max"),
                oom: event("oom"),
                oom_kill: event("oom_kill"),
                oom_group_kill: event("oom_group_kill"),
                ..Default::default()
            },
        }
    }

    fn stats_v1(&self) -> Stats {
        let (cpu, cpuacct, memory) = (self.dir("cpu"), self.dir("cpuacct"), self.dir("memory"));
        let cpu_stat = keyed(cpu, "cpu.stat");
        let ticks = keyed(cpuacct, "cpuacct.stat");
        let ns_per_tick = 1_000_000_000 / user_hz();
        // cpuacct.usage_all: a header, then `cpu user system` per CPU.
        let per_cpu: Vec<Vec<u64>> = cpuacct
            .and_then(|d| read(d, "cpuacct.usage_all").ok())
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().filter_map(|n| n.parse().ok()).collect())
            .collect();
        let column = |i: usize| -> Vec<u64> { per_cpu.iter().filter_map(|row| row.get(i).copied()).collect() };
        let entry = |prefix: &str| MemoryEntry {
            limit: num(memory, &format!("{prefix}.limit_in_bytes")),
            usage: num(memory, &format!("{prefix}.usage_in_bytes")),
            max: num(memory, &format!("{prefix}.max_usage_in_bytes")),
            failcnt: num(memory, &format!("{prefix}.failcnt")),
        };
        let raw = keyed(memory, "memory.stat");
        let oom = keyed(memory, "memory.oom_control");
        let oom_at = |key: &str| oom.get(key).copied().unwrap_or(0);
        let usage = entry("memory");
        let hugetlb_dir = self.dir("hugetlb");
        let hugetlb = hugetlb_by_size(hugetlb_dir, |size| Hugetlb {
            usage: num(hugetlb_dir, &format!("hugetlb.{size}.usage_in_bytes")),
            max: num(hugetlb_dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
            failcnt: num(hugetlb_dir, &format!("hugetlb.{size}.failcnt")),
        });
        Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    total: num(cpuacct, "cpuacct.usage"),
                    percpu: numbers(cpuacct, "cpuacct.usage_percpu"),
                    percpu_user: column(1),
                    percpu_kernel: column(2),
                    kernel: ticks.get("system").copied().unwrap_or(0) * ns_per_tick,
                    user: ticks.get("user").copied().unwrap_or(0) * ns_per_tick,
                },
                throttling: Throttling {
                    periods: cpu_stat.get("nr_periods").copied().unwrap_or(0),
                    throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
                    throttled_time: cpu_stat.get("throttled_time").copied().unwrap_or(0),
                },
            },
            memory: Memory {
                cache: raw.get("cache").copied().unwrap_or(0),
                swap: entry("memory.memsw"),
                kernel: entry("memory.kmem"),
                kernel_tcp: entry("memory.kmem.tcp"),
                raw,
                usage: usage.clone(),
            },
            pids: Pids {
                current: num(self.dir("pids"), "pids.current"),
                limit: num(self.dir("pids"), "pids.max"),
            },
            blkio: self.blkio_v1(),
            hugetlb,
            memory_events: MemoryEvents {
                oom_kill_disable: oom_at("oom_kill_disable"),
                under_oom: oom_at("under_oom"),
                max: usage.failcnt,
                oom_kill: oom_at("oom_kill"),
                ..Default::default()
            },
        }
    }

    fn blkio_v1(&self) -> Blkio {
        let dir = self.dir("blkio");
        let file = |name: &str| blkio_entries(&dir.and_then(|d| read(d, name).ok()).unwrap_or_default());
        let blkio = Blkio {
            io_service_bytes_recursive: file("blkio.io_service_bytes_recursive"),
            io_serviced_recursive: file("blkio.io_serviced_recursive"),
            io_queued_recursive: file("blkio.io_queued_recursive"),
            io_service_time_recursive: file("blkio.io_service_time_recursive"),
            io_wait_time_recursive: file("blkio.io_wait_time_recursive"),
            io_merged_recursive: file("blkio.io_merged_recursive"),
            io_time_recursive: file("blkio.time_recursive"),
            sectors_recursive: file("blkio.sectors_recursive"),
        };
        if !blkio.io_service_bytes_recursive.is_empty() {
            return blkio;
        }
        // Without CFQ (blk-mq kernels) only the throttle policy counts I/O.
        Blkio {
            io_service_bytes_recursive: file("blkio.throttle.io_service_bytes_recursive"),
            io_serviced_recursive: file("blkio.throttle.io_serviced_recursive"),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_blkio_lines_become_entries_without_the_total() {
        let text = "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n";
        let e = blkio_entries(text);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(blkio_entries("8:16 12\n")[0].op, "");
    }

    #[test]
    fn v2_io_stat_splits_into_bytes_and_ios() {
        let (bytes, ios) = io_stat_entries("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            bytes.iter().map(|e| (e.op.as_str(), e.value)).collect::<Vec<_>>(),
            [("Read", 10), ("Write", 20)]
        );
        assert_eq!(ios.iter().map(|e| e.value).collect::<Vec<_>>(), [1, 2]);
        assert_eq!((bytes[0].major, bytes[0].minor), (254, 0));
    }

    #[test]
    fn events_stats_are_in_runcs_shape() {
        let mut s = Stats::default();
        s.memory.usage.limit = 64 << 20;
        s.pids.current = 1;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["memory"]["usage"]["limit"], 64 << 20);
        assert_eq!(v["pids"]["current"], 1);
        assert!(v["memory"]["kernelTCP"].is_object());
        assert!(v["cpu"]["throttling"]["throttledPeriods"].is_number());
        assert!(v.get("memory_events").is_none());
    }
}
