//! The config.json that `myshim spec` writes: runc's default template.

use crate::spec::*;

const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: Some(kind.into()),
        source: Some(source.into()),
        options: options.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// runc's `spec` template; `rootless` maps the caller's ids to root in a user
/// namespace, drops the network namespace and binds /sys read-only.
pub fn default_spec(rootless: bool) -> Spec {
    let caps = Some(strings(&DEFAULT_CAPS));
    let mut namespaces = vec![NamespaceType::Pid];
    if !rootless {
        namespaces.push(NamespaceType::Network);
    }
    namespaces.extend([NamespaceType::Ipc, NamespaceType::Uts, NamespaceType::Mount]);
    if crate::cgroups::is_unified_host() {
        namespaces.push(NamespaceType::Cgroup);
    }
    if rootless {
        namespaces.push(NamespaceType::User);
    }
    let devpts_opts: &[&str] = if rootless {
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    } else {
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    };
    let sys = if rootless {
        mount("/sys", "none", "/sys", &["rbind", "nosuid", "noexec", "nodev", "ro"])
    } else {
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])
    };
    let id_map = |id: u32| {
        vec![IdMapping {
            container_id: 0,
            host_id: id,
            size: 1,
        }]
    };
    let (uid_mappings, gid_mappings) = if rootless {
        (
            id_map(nix::unistd::getuid().as_raw()),
            id_map(nix::unistd::getgid().as_raw()),
        )
    } else {
        (vec![], vec![])
    };
    let resources = (!rootless).then(|| crate::resources::Resources {
        devices: vec![crate::resources::DeviceRule {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    Spec {
        oci_version: "1.0.2-dev".into(),
        process: Some(Process {
            terminal: true,
            user: User::default(),
            args: strings(&["sh"]),
            env: strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ]),
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                inheritable: None,
                permitted: caps.clone(),
                ambient: caps,
            }),
            rlimits: vec![Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: true,
        }),
        hostname: Some("myshim".into()),
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount("/dev/pts", "devpts", "devpts", devpts_opts),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            sys,
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        linux: Some(Linux {
            namespaces: namespaces
                .into_iter()
                .map(|kind| Namespace { kind, path: None })
                .collect(),
            uid_mappings,
            gid_mappings,
            resources,
            masked_paths: strings(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ]),
            readonly_paths: strings(&["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_runc_shape() {
        let s = default_spec(false);
        let p = s.process.as_ref().unwrap();
        assert!(p.terminal && p.no_new_privileges);
        assert_eq!(p.rlimits[0].hard, 1024);
        assert_eq!(p.capabilities.as_ref().unwrap().bounding.as_ref().unwrap().len(), 3);
        assert!(s.root.as_ref().unwrap().readonly);
        let kinds: Vec<_> = s.linux().namespaces.iter().map(|n| n.kind).collect();
        for k in [
            NamespaceType::Pid,
            NamespaceType::Network,
            NamespaceType::Ipc,
            NamespaceType::Uts,
            NamespaceType::Mount,
        ] {
            assert!(kinds.contains(&k));
        }
        assert!(!kinds.contains(&NamespaceType::User));
        assert_eq!(s.mounts.len(), 7);
    }

    #[test]
    fn rootless_maps_caller_and_drops_network() {
        let s = default_spec(true);
        let l = s.linux();
        assert!(l.namespace(NamespaceType::User).is_some());
        assert!(l.namespace(NamespaceType::Network).is_none());
        assert_eq!(l.uid_mappings[0].host_id, nix::unistd::getuid().as_raw());
        assert!(l.resources.is_none());
        let sys = s.mounts.iter().find(|m| m.destination == "/sys").unwrap();
        assert!(sys.options.contains(&"rbind".to_string()));
        assert!(!s.mounts.iter().any(|m| m.options.iter().any(|o| o.starts_with("gid="))));
    }
}
