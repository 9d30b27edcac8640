//! The runtime's cgroup usage as containerd's metrics messages (cgroups v1
//! or v2 Metrics, in an Any), for the Stats call behind `ctr task metrics`.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message, MessageField};
use myshim_runtime::cgroups::Stats;

fn stat(s: &Stats, key: &str) -> u64 {
    s.memory_stat.get(key).copied().unwrap_or(0)
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

fn v1_metrics(s: &Stats) -> v1::Metrics {
    v1::Metrics {
        pids: MessageField::some(v1::PidsStat {
            current: s.pids_current,
            limit: s.pids_limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: s.cpu_total_ns,
                kernel: s.cpu_kernel_ns,
                user: s.cpu_user_ns,
                ..Default::default()
            }),
            throttling: MessageField::some(v1::Throttle {
                periods: s.cpu_periods,
                throttled_periods: s.cpu_throttled_periods,
                throttled_time: s.cpu_throttled_ns,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(v1::MemoryStat {
            cache: stat(s, "cache"),
            rss: stat(s, "rss"),
            usage: MessageField::some(v1::MemoryEntry {
                limit: s.memory_limit,
                usage: s.memory_usage,
                max: s.memory_max_usage,
                failcnt: s.memory_failcnt,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory_oom_control: MessageField::some(v1::MemoryOomControl {
            oom_kill: s.oom_kills,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn v2_metrics(s: &Stats) -> v2::Metrics {
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: s.pids_current,
            limit: s.pids_limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu_total_ns / 1000,
            user_usec: s.cpu_user_ns / 1000,
            system_usec: s.cpu_kernel_ns / 1000,
            nr_periods: s.cpu_periods,
            nr_throttled: s.cpu_throttled_periods,
            throttled_usec: s.cpu_throttled_ns / 1000,
            ..Default::default()
        }),
        memory: MessageField::some(v2::MemoryStat {
            anon: stat(s, "anon"),
            file: stat(s, "file"),
            usage: s.memory_usage,
            usage_limit: s.memory_limit,
            max_usage: s.memory_max_usage,
            ..Default::default()
        }),
        memory_events: MessageField::some(v2::MemoryEvents {
            max: s.memory_failcnt,
            oom_kill: s.oom_kills,
            ..Default::default()
        }),
        ..Default::default()
    }
}
