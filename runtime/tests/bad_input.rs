//! Bad input: one clear line naming the problem, a non-zero exit, and
//! nothing left behind (state dir, mount, process). One test per case.

mod common;
use common::*;
use serde_json::json;

/// `create` of `bundle` as `id` fails with an error containing `needle`,
/// and nothing of it remains.
fn create_fails(env: &Env, b: &Bundle, id: &str, needle: &str) {
    let e = env.fails(&["create", "-b", b.arg(), id]);
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
    env.assert_gone(id, b);
}

#[test]
fn missing_bundle() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let missing = env.dir.path().join("nope");
    let e = env.fails(&["create", "-b", missing.to_str().unwrap(), "mb"]);
    assert!(e.contains("nope"), "{e}");
    assert!(!env.root().join("mb").exists());
}

#[test]
fn missing_config_json() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("mc", &["true"]);
    std::fs::remove_file(b.path.join("config.json")).unwrap();
    create_fails(&env, &b, "mc", "config.json");
}

#[test]
fn invalid_json() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("ij", &["true"]);
    std::fs::write(b.path.join("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": ").unwrap();
    create_fails(&env, &b, "ij", "config.json");
}

#[test]
fn unknown_namespace_type() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("un", &["true"]);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "wormhole"}))
    });
    create_fails(&env, &b, "un", "wormhole");
}

#[test]
fn duplicate_id() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("dup", &["sleep", "100"]);
    env.ok(&["create", "-b", b.arg(), "dup"]);
    let pid = env.pid("dup");
    let e = env.fails(&["create", "-b", b.arg(), "dup"]);
    assert!(e.contains("already exists"), "{e}");
    // The first container is untouched.
    assert_eq!(env.pid("dup"), pid);
    assert_eq!(env.status("dup"), "created");
    env.ok(&["delete", "dup"]);
    env.assert_gone("dup", &b);
}

#[test]
fn id_with_slash_or_dotdot() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("badid", &["true"]);
    for id in ["a/b", "..", "../escape", ""] {
        let e = env.fails(&["create", "-b", b.arg(), id]);
        assert!(e.contains("invalid container id"), "{id:?}: {e}");
    }
    assert!(!env.dir.path().join("escape").exists());
    assert!(!env.root().exists() || std::fs::read_dir(env.root()).unwrap().next().is_none());
    assert_no_leftovers(&b.path);
}

#[test]
fn start_of_running_container() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("sr", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "sr"]);
    let e = env.fails(&["start", "sr"]);
    assert!(e.contains("running"), "{e}");
    assert_eq!(env.status("sr"), "running");
    env.ok(&["delete", "-f", "sr"]);
    env.assert_gone("sr", &b);
}

#[test]
fn start_of_stopped_container() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("ss", &["true"]);
    env.ok(&["run", "-d", "-b", b.arg(), "ss"]);
    env.wait_status("ss", "stopped");
    let e = env.fails(&["start", "ss"]);
    assert!(e.contains("stopped"), "{e}");
    env.ok(&["delete", "ss"]);
    env.assert_gone("ss", &b);
}

#[test]
fn delete_of_running_without_force() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("dr", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "dr"]);
    let e = env.fails(&["delete", "dr"]);
    assert!(e.contains("running") && e.contains("--force"), "{e}");
    assert_eq!(env.status("dr"), "running", "refused delete must not harm it");
    env.ok(&["delete", "--force", "dr"]);
    env.assert_gone("dr", &b);
}

#[test]
fn rootfs_that_does_not_exist() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("nr", &["true"]);
    b.edit(|c| c["root"]["path"] = json!("no-such-rootfs"));
    create_fails(&env, &b, "nr", "no-such-rootfs");
}

#[test]
fn args0_not_in_rootfs() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    // runc's words: Docker and Podman make 127 of these and 126 of the last.
    let b = env.bundle("na", &["/usr/bin/definitely-not-here", "x"]);
    create_fails(
        &env,
        &b,
        "na",
        "exec: \"/usr/bin/definitely-not-here\": stat /usr/bin/definitely-not-here: no such file or directory",
    );
    let b = env.bundle("np", &["not-on-path"]);
    create_fails(
        &env,
        &b,
        "np",
        "exec: \"not-on-path\": executable file not found in $PATH",
    );
    let b = env.bundle("nx", &["/etc/passwd"]);
    create_fails(&env, &b, "nx", "exec: \"/etc/passwd\": permission denied");
}

#[test]
fn bind_source_that_does_not_exist() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("bs", &["true"]);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}))
    });
    create_fails(&env, &b, "bs", "/no/such/source");
}

/// A bind mount has no filesystem to read data options: one the runtime
/// does not know (a typo of `rro`, say) would protect nothing.
#[test]
fn unknown_option_of_a_bind_mount() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("uo", &["true"]);
    let source = env.dir.path().to_str().unwrap().to_string();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/v", "type": "bind", "source": source, "options": ["rbind", "rr0"]}));
    });
    create_fails(&env, &b, "uo", "rr0");
}

#[test]
fn commands_on_a_container_that_does_not_exist() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    for args in [
        &["start", "ghost"][..],
        &["state", "ghost"],
        &["kill", "ghost"],
        &["delete", "ghost"],
        &["exec", "ghost", "true"],
        &["ps", "ghost"],
    ] {
        let e = env.fails(args);
        assert!(e.contains("ghost") && e.contains("does not exist"), "{args:?}: {e}");
    }
}

#[test]
fn terminal_without_console_socket_when_detached() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("tc", &["sh"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    create_fails(&env, &b, "tc", "--console-socket");
}

#[test]
fn bad_signal_and_kill_of_stopped() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("bk", &["true"]);
    env.ok(&["run", "-d", "-b", b.arg(), "bk"]);
    env.wait_status("bk", "stopped");
    let e = env.fails(&["kill", "bk", "SIGNOPE"]);
    assert!(e.contains("SIGNOPE"), "{e}");
    // runc's text, which containerd's runc shim and Podman take for "already exited".
    let e = env.fails(&["kill", "bk", "KILL"]);
    assert!(e.contains("container not running"), "{e}");
    // runc: `kill --all` of a stopped container succeeds.
    env.ok(&["kill", "--all", "bk", "KILL"]);
    let e = env.fails(&["start", "bk"]);
    assert!(e.contains("cannot start a container that has stopped"), "{e}");
    let e = env.fails(&["pause", "bk"]);
    assert!(e.contains("container not running"), "{e}");
    env.ok(&["delete", "bk"]);
    let e = env.fails(&["kill", "bk", "KILL"]);
    assert!(e.contains("does not exist"), "{e}");
    env.assert_gone("bk", &b);
}

/// A corpus of malformed configs: each gets one line naming the problem and
/// leaves nothing behind.
#[test]
fn malformed_config_corpus() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    type Edit = fn(&mut serde_json::Value);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "args-type",
            |c| c["process"]["args"] = json!("sh -c true"),
            "invalid type",
        ),
        (
            "uid-negative",
            |c| c["process"]["user"]["uid"] = json!(-1),
            "invalid value",
        ),
        (
            "huge-memory",
            |c| c["linux"]["resources"]["memory"] = json!({"limit": 1e30}),
            "invalid type",
        ),
        (
            "rlimit-order",
            |c| c["process"]["rlimits"][0]["soft"] = json!(4096),
            "soft 4096 is above hard 1024",
        ),
        (
            "cap-name",
            |c| c["process"]["capabilities"]["effective"] = json!(["CAP_WHATEVER"]),
            "CAP_WHATEVER",
        ),
        ("oci-2", |c| c["ociVersion"] = json!("2.0.0"), "ociVersion"),
        // Spec fields not applied yet are refused, never silently dropped.
        (
            "time-offsets",
            |c| c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 100}}),
            "linux.timeOffsets: not supported",
        ),
        (
            "scheduler",
            |c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH"}),
            "process.scheduler: not supported",
        ),
        (
            "idmapped-mount",
            |c| c["mounts"][0]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
            "idmapped mount",
        ),
        (
            "maps-no-userns",
            |c| c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
            "user namespace",
        ),
        (
            "hostname-no-uts",
            |c| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "uts");
            },
            "uts",
        ),
        (
            "ns-path",
            |c| c["linux"]["namespaces"][1]["path"] = json!("/proc/no-such/ns/net"),
            "/proc/no-such/ns/net",
        ),
        (
            "device-type",
            |c| c["linux"]["devices"] = json!([{"type": "x", "path": "/dev/x", "major": 1, "minor": 1}]),
            "device type",
        ),
        (
            "mount-relative",
            |c| c["mounts"][0]["destination"] = json!("proc"),
            "absolute",
        ),
        (
            "hook-relative",
            |c| c["hooks"] = json!({"prestart": [{"path": "bin/true"}]}),
            "absolute",
        ),
        (
            "sysctl-key",
            |c| c["linux"]["sysctl"] = json!({"../../etc/x": "1"}),
            "not a sysctl name",
        ),
        (
            "cgroup-dotdot",
            |c| c["linux"]["cgroupsPath"] = json!("/a/../../b"),
            "'..'",
        ),
        (
            "mount-nonsense",
            |c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=banana"]}))
            },
            "mount /x",
        ),
        (
            "seccomp-arch",
            |c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]})
            },
            "SCMP_ARCH_PDP11",
        ),
    ];
    for (id, edit, needle) in cases {
        let mut b = env.bundle(id, &["true"]);
        b.edit(edit);
        create_fails(&env, &b, id, needle);
    }
}

#[test]
fn selinux_label_refused_before_anything_runs() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let marker = env.dir.path().join("hook-ran");
    let mut b = env.bundle("se", &["true"]);
    b.edit(|c| {
        c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        c["hooks"]["createRuntime"] =
            json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}]);
    });
    create_fails(&env, &b, "se", "process.selinuxLabel: SELinux labels are not supported");
    assert!(
        !marker.exists(),
        "a createRuntime hook ran for a config that is refused"
    );
    // exec's process.json is checked the same way.
    let ok = env.bundle("se-exec", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", ok.arg(), "se-exec"]);
    let p = env.dir.path().join("process.json");
    let process = json!({"args": ["true"], "cwd": "/", "selinuxLabel": "system_u:system_r:container_t:s0"});
    std::fs::write(&p, process.to_string()).unwrap();
    let e = env.fails(&["exec", "-p", p.to_str().unwrap(), "se-exec"]);
    assert!(e.contains("process.selinuxLabel"), "{e}");
    env.ok(&["delete", "-f", "se-exec"]);
    env.assert_gone("se-exec", &ok);
}
