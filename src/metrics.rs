//! The runtime's cgroup usage as containerd's metrics messages (cgroups v1
//! or v2 Metrics, in an Any), for the Stats call behind `ctr task metrics`.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message, MessageField};
use myshim_runtime::cgroups::{Blkio, BlkioEntry, MemoryEntry, Stats};

fn stat(s: &Stats, key: &str) -> u64 {
    s.memory.raw.get(key).copied().unwrap_or(0)
}

pub fn to_any(s: &Stats, unified: bool) -> containerd_shim::protos::protobuf::Result<Any> {
    let (type_url, value) = if unified {
        ("io.containerd.cgroups.v2.Metrics", v2_metrics(s).write_to_bytes()?)
    } else {
        ("io.containerd.cgroups.v1.Metrics", v1_metrics(s).write_to_bytes()?)
    };
    Ok(Any {
        type_url: type_url.into(),
        value,
        ..Default::default()
    })
}

fn v1_entry(e: &MemoryEntry) -> MessageField<v1::MemoryEntry> {
    MessageField::some(v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    })
}

fn v1_blkio(entries: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    entries
        .iter()
        .map(|e| v1::BlkIOEntry {
            op: e.op.clone(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

/// Every field containerd's Go shim fills from a v1 cgroup.
fn v1_metrics(s: &Stats) -> v1::Metrics {
    let m = &s.memory;
    let b = &s.blkio;
    v1::Metrics {
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        pids: MessageField::some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: s.cpu.usage.total,
                kernel: s.cpu.usage.kernel,
                user: s.cpu.usage.user,
                per_cpu: s.cpu.usage.percpu.clone(),
                ..Default::default()
            }),
            throttling: MessageField::some(v1::Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(v1::MemoryStat {
            cache: stat(s, "cache"),
            rss: stat(s, "rss"),
            rss_huge: stat(s, "rss_huge"),
            mapped_file: stat(s, "mapped_file"),
            dirty: stat(s, "dirty"),
            writeback: stat(s, "writeback"),
            pg_pg_in: stat(s, "pgpgin"),
            pg_pg_out: stat(s, "pgpgout"),
            pg_fault: stat(s, "pgfault"),
            pg_maj_fault: stat(s, "pgmajfault"),
            inactive_anon: stat(s, "inactive_anon"),
            active_anon: stat(s, "active_anon"),
            inactive_file: stat(s, "inactive_file"),
            active_file: stat(s, "active_file"),
            unevictable: stat(s, "unevictable"),
            hierarchical_memory_limit: stat(s, "hierarchical_memory_limit"),
            hierarchical_swap_limit: stat(s, "hierarchical_memsw_limit"),
            total_cache: stat(s, "total_cache"),
            total_rss: stat(s, "total_rss"),
            total_rss_huge: stat(s, "total_rss_huge"),
            total_mapped_file: stat(s, "total_mapped_file"),
            total_dirty: stat(s, "total_dirty"),
            total_writeback: stat(s, "total_writeback"),
            total_pg_pg_in: stat(s, "total_pgpgin"),
            total_pg_pg_out: stat(s, "total_pgpgout"),
            total_pg_fault: stat(s, "total_pgfault"),
            total_pg_maj_fault: stat(s, "total_pgmajfault"),
            total_inactive_anon: stat(s, "total_inactive_anon"),
            total_active_anon: stat(s, "total_active_anon"),
            total_inactive_file: stat(s, "total_inactive_file"),
            total_active_file: stat(s, "total_active_file"),
            total_unevictable: stat(s, "total_unevictable"),
            usage: v1_entry(&m.usage),
            swap: v1_entry(&m.swap),
            kernel: v1_entry(&m.kernel),
            kernel_tcp: v1_entry(&m.kernel_tcp),
            ..Default::default()
        }),
        blkio: MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: v1_blkio(&b.io_service_bytes_recursive),
            io_serviced_recursive: v1_blkio(&b.io_serviced_recursive),
            io_queued_recursive: v1_blkio(&b.io_queued_recursive),
            io_service_time_recursive: v1_blkio(&b.io_service_time_recursive),
            io_wait_time_recursive: v1_blkio(&b.io_wait_time_recursive),
            io_merged_recursive: v1_blkio(&b.io_merged_recursive),
            io_time_recursive: v1_blkio(&b.io_time_recursive),
            sectors_recursive: v1_blkio(&b.sectors_recursive),
            ..Default::default()
        }),
        memory_oom_control: MessageField::some(v1::MemoryOomControl {
            oom_kill_disable: s.memory_events.oom_kill_disable,
            under_oom: s.memory_events.under_oom,
            oom_kill: s.memory_events.oom_kill,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// v2's io.stat per device, from the Read/Write entries it was split into.
fn v2_io(b: &Blkio) -> Vec<v2::IOEntry> {
    let mut devices: Vec<v2::IOEntry> = vec![];
    let lists = [(&b.io_service_bytes_recursive, true), (&b.io_serviced_recursive, false)];
    for (list, bytes) in lists {
        for e in list {
            let at = match devices.iter().position(|d| (d.major, d.minor) == (e.major, e.minor)) {
                Some(at) => at,
                None => {
                    devices.push(v2::IOEntry {
                        major: e.major,
                        minor: e.minor,
                        ..Default::default()
                    });
                    devices.len() - 1
                }
            };
            let d = &mut devices[at];
            match (bytes, e.op.as_str()) {
                (true, "Read") => d.rbytes = e.value,
                (true, "Write") => d.wbytes = e.value,
                (false, "Read") => d.rios = e.value,
                (false, "Write") => d.wios = e.value,
                _ => {}
            }
        }
    }
    devices
}

/// Every field containerd's Go shim fills from a v2 cgroup. Stats carries
/// swap as memory+swap (runc's convention); v2 Metrics want swap alone.
fn v2_metrics(s: &Stats) -> v2::Metrics {
    let m = &s.memory;
    let swap_only = |total: u64, memory: u64| {
        if total == u64::MAX {
            u64::MAX
        } else {
            total.saturating_sub(memory)
        }
    };
    let e = &s.memory_events;
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
            ..Default::default()
        }),
        memory: MessageField::some(v2::MemoryStat {
            anon: stat(s, "anon"),
            file: stat(s, "file"),
            kernel_stack: stat(s, "kernel_stack"),
            slab: stat(s, "slab"),
            sock: stat(s, "sock"),
            shmem: stat(s, "shmem"),
            file_mapped: stat(s, "file_mapped"),
            file_dirty: stat(s, "file_dirty"),
            file_writeback: stat(s, "file_writeback"),
            anon_thp: stat(s, "anon_thp"),
            inactive_anon: stat(s, "inactive_anon"),
            active_anon: stat(s, "active_anon"),
            inactive_file: stat(s, "inactive_file"),
            active_file: stat(s, "active_file"),
            unevictable: stat(s, "unevictable"),
            slab_reclaimable: stat(s, "slab_reclaimable"),
            slab_unreclaimable: stat(s, "slab_unreclaimable"),
            pgfault: stat(s, "pgfault"),
            pgmajfault: stat(s, "pgmajfault"),
            workingset_refault: stat(s, "workingset_refault")
                + stat(s, "workingset_refault_anon")
                + stat(s, "workingset_refault_file"),
            workingset_activate: stat(s, "workingset_activate")
                + stat(s, "workingset_activate_anon")
                + stat(s, "workingset_activate_file"),
            workingset_nodereclaim: stat(s, "workingset_nodereclaim"),
            pgrefill: stat(s, "pgrefill"),
            pgscan: stat(s, "pgscan"),
            pgsteal: stat(s, "pgsteal"),
            pgactivate: stat(s, "pgactivate"),
            pgdeactivate: stat(s, "pgdeactivate"),
            pglazyfree: stat(s, "pglazyfree"),
            pglazyfreed: stat(s, "pglazyfreed"),
            thp_fault_alloc: stat(s, "thp_fault_alloc"),
            thp_collapse_alloc: stat(s, "thp_collapse_alloc"),
            usage: m.usage.usage,
            usage_limit: m.usage.limit,
            swap_usage: m.swap.usage.saturating_sub(m.usage.usage),
            swap_limit: swap_only(m.swap.limit, m.usage.limit),
            max_usage: m.usage.max,
            swap_max_usage: m.swap.max.saturating_sub(m.usage.max),
            ..Default::default()
        }),
        io: MessageField::some(v2::IOStat {
            usage: v2_io(&s.blkio),
            ..Default::default()
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v2::HugeTlbStat {
                current: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        memory_events: MessageField::some(v2::MemoryEvents {
            low: e.low,
            high: e.high,
            max: e.max,
            oom: e.oom,
            oom_kill: e.oom_kill,
            oom_group_kill: e.oom_group_kill,
            ..Default::default()
        }),
        ..Default::default()
    }
}
