//! config.json coverage: each section is set and observed from inside a
//! real container.

mod common;
use common::*;
use serde_json::json;

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_namespace_type_is_new() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let names = ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"];
    let script = names
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .collect::<Vec<_>>()
        .join(";");
    let out = sh_in(&env, "ns", &script, |c| {
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "network"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"}
        ]);
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["root"]["readonly"] = json!(false);
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), names.len(), "{out}");
    for (name, line) in names.iter().zip(lines) {
        assert_ne!(line, host_ns(name), "{name} namespace is the host's");
    }
}

#[test]
fn user_namespace_maps_ids() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(
        &env,
        "userns",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 1000}]);
        },
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "100000", "65536", "0", "200000", "1000", "0"], "{out}");
}

#[test]
fn namespaces_joined_by_path() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let a = env.bundle("nsa", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", a.arg(), "nsa"]);
    let pid = env.pid("nsa");
    let out = sh_in(
        &env,
        "nsb",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/pid; ps -o comm | grep -c sleep",
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in ns.iter_mut() {
                if n["type"] == "network" || n["type"] == "pid" {
                    let name = if n["type"] == "network" { "net" } else { "pid" };
                    n["path"] = json!(format!("/proc/{pid}/ns/{name}"));
                }
            }
        },
    );
    let net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], net.to_string_lossy());
    assert_eq!(lines[1], pidns.to_string_lossy());
    assert_eq!(lines[2], "1", "sees the other container's sleep: {out}");
    env.ok(&["delete", "-f", "nsa"]);
}

#[test]
fn hostname_and_domainname() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(&env, "uts", "hostname; cat /proc/sys/kernel/domainname", |c| {
        c["hostname"] = json!("box1");
        c["domainname"] = json!("example.org");
    });
    assert_eq!(out, "box1\nexample.org\n");
}

#[test]
fn mounts_in_order_with_options() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("f"), "host file\n").unwrap();
    let script = "cat /data/f; echo new > /data/g; cat /ro/f; echo x > /ro/h 2>/dev/null && echo ro-writable; \
                  cat /one-file; grep ' /scratch ' /proc/mounts; grep ' /data ' /proc/self/mountinfo | grep -c shared; \
                  echo y > /scratch/y && cat /scratch/y";
    let out = sh_in(&env, "mnt", script, |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/data", "type": "bind", "source": shared, "options": ["rbind", "rw", "rshared"]}),
        );
        m.push(json!({"destination": "/ro", "type": "none", "source": shared, "options": ["bind", "ro", "nosuid"]}));
        m.push(
            json!({"destination": "/one-file", "type": "bind", "source": shared.join("f"), "options": ["bind", "ro"]}),
        );
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nodev", "noexec", "size=1m", "mode=700"]}));
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "host file");
    assert_eq!(lines[1], "host file");
    assert_eq!(lines[2], "host file", "single-file bind: {out}");
    assert!(
        lines[3].starts_with("tmpfs /scratch tmpfs rw,nodev,noexec")
            && lines[3].contains("size=1024k")
            && lines[3].contains("mode=700"),
        "{out}"
    );
    assert_eq!(lines[4], "1", "rshared propagation: {out}");
    assert_eq!(lines[5], "y");
    assert!(!out.contains("ro-writable"));
    assert_eq!(std::fs::read_to_string(shared.join("g")).unwrap(), "new\n");
}

/// Docker 25+ asks `features` for `rro` and uses it for read-only volumes:
/// the r* options must reach every mount under a recursive bind, not only
/// its top (a plain `ro` leaves the sub-mounts writable).
#[test]
fn recursive_mount_options_reach_the_sub_mounts() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let shared = env.dir.path().join("shared");
    let sub = shared.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(sub.clone());
    std::fs::write(sub.join("tool"), "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(sub.join("tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = "for d in /r /r/sub /plain/sub; do \
                    grep \" $d \" /proc/self/mountinfo | cut -d' ' -f6; done; \
                  touch /r/sub/x 2>/dev/null && echo recursive-ro-failed; \
                  /r/sub/tool 2>/dev/null || echo sub-noexec; \
                  touch /plain/sub/y && echo plain-sub-writable";
    let out = sh_in(&env, "rmnt", script, |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/r", "type": "bind", "source": shared,
                      "options": ["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"]}));
        m.push(json!({"destination": "/plain", "type": "bind", "source": shared, "options": ["rbind", "ro"]}));
    });
    let lines: Vec<&str> = out.lines().collect();
    for (at, what) in [(0, "/r"), (1, "/r/sub")] {
        let flags: Vec<&str> = lines[at].split(',').collect();
        for want in ["ro", "nosuid", "noexec", "noatime"] {
            assert!(flags.contains(&want), "{what} lacks {want}: {out}");
        }
    }
    assert!(
        lines[2].split(',').any(|f| f == "rw"),
        "a plain ro stays at the top: {out}"
    );
    assert!(
        !out.contains("recursive-ro-failed") && out.contains("sub-noexec"),
        "{out}"
    );
    assert!(out.contains("plain-sub-writable"), "{out}");
}

/// The propagation fields of our "/" in /proc/self/mountinfo.
fn root_propagation() -> String {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap()
        .to_string();
    let fields: Vec<&str> = line.split(' ').collect();
    let end = fields.iter().position(|f| *f == "-").unwrap();
    fields[6..end].join(" ")
}

/// "If a namespace type is not specified, the container MUST inherit the
/// runtime namespace of that type": without a mount namespace the container
/// runs in ours, chrooted into its rootfs, with its mounts made on a private
/// bind of the rootfs; the host's "/" keeps its propagation, and delete (or
/// a failed create) leaves no mount behind.
#[test]
fn no_mount_namespace_runs_in_the_runtimes_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let propagation = root_propagation();
    let without_mount_ns = |c: &mut serde_json::Value| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
    };
    let script = "readlink /proc/self/ns/mnt; ls /bin/busybox; touch /x 2>/dev/null || echo readonly; \
                  grep -c ' /proc ' /proc/self/mountinfo";
    let out = sh_in(&env, "nomnt", script, without_mount_ns);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ours.to_str().unwrap(), "{out}");
    assert_eq!(&lines[1..3], ["/bin/busybox", "readonly"], "{out}");
    // Detached, with an exec in it, then deleted.
    let mut b = env.bundle("nomntd", &["sleep", "100"]);
    b.edit(without_mount_ns);
    env.ok(&["run", "-d", "-b", b.arg(), "nomntd"]);
    let exec = env.ok(&[
        "exec",
        "nomntd",
        "sh",
        "-c",
        "ls /bin/busybox; cat /etc/hostname 2>/dev/null; pwd",
    ]);
    assert!(exec.starts_with("/bin/busybox\n") && exec.ends_with("/\n"), "{exec}");
    assert!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&b.rootfs().display().to_string()),
        "its mounts are in our table while it runs"
    );
    env.ok(&["delete", "-f", "nomntd"]);
    env.assert_gone("nomntd", &b);
    // A create that fails half-way takes its mounts with it.
    let mut bad = env.bundle("nomntbad", &["true"]);
    bad.edit(|c| {
        without_mount_ns(c);
        c["mounts"].as_array_mut().unwrap().push(
            serde_json::json!({"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}),
        );
    });
    let e = env.fails(&["create", "-b", bad.arg(), "nomntbad"]);
    assert!(e.contains("/no/such/source"), "{e}");
    env.assert_gone("nomntbad", &bad);
    assert_eq!(root_propagation(), propagation, "the propagation of our / changed");
}

#[test]
fn default_mounts_are_there() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(&env, "defm", "for d in /proc /dev /dev/pts /dev/shm /dev/mqueue /sys /sys/fs/cgroup; do grep -q \" $d \" /proc/mounts && echo $d; done", |_| {});
    assert_eq!(
        out,
        "/proc\n/dev\n/dev/pts\n/dev/shm\n/dev/mqueue\n/sys\n/sys/fs/cgroup\n"
    );
}

#[test]
fn readonly_root_and_rootfs_propagation_and_no_pivot() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(
        &env,
        "ro",
        "touch /x 2>/dev/null && echo writable || echo readonly",
        |_| {},
    );
    assert_eq!(out, "readonly\n");
    // The propagation tags of the container's "/" (shared:N, master:N).
    let tags = "awk '$5 == \"/\"' /proc/self/mountinfo | grep -o -e shared -e master || echo none";
    let out = sh_in(&env, "prop", tags, |c| {
        c["linux"]["rootfsPropagation"] = json!("rprivate")
    });
    assert_eq!(out, "none\n");
    // rshared: pivot_root still works and mounts in the container are shared.
    let out = sh_in(&env, "rshared", tags, |c| {
        c["linux"]["rootfsPropagation"] = json!("rshared")
    });
    assert!(out.starts_with("shared"), "{out}");
    // unbindable: set once the rootfs is "/" (binding it from an unbindable
    // "/" is refused by the kernel).
    let unbindable = "awk '$5 == \"/\"' /proc/self/mountinfo | grep -o unbindable";
    for name in ["unbindable", "runbindable"] {
        let out = sh_in(&env, name, unbindable, |c| {
            c["linux"]["rootfsPropagation"] = json!(name)
        });
        assert!(out.starts_with("unbindable\n"), "{name}: {out}");
    }
    let mut b = env.bundle("nopivot", &["sh", "-c", "echo hi; ls /"]);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let out = env.ok(&["run", "--no-pivot", "-b", b.arg(), "nopivot"]);
    assert!(out.starts_with("hi\n") && out.contains("bin"), "{out}");
    env.assert_gone("nopivot", &b);
}

#[test]
fn devices_and_dev_symlinks() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let script = "stat -c '%n %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mynull; \
                  for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; stat -c '%F %a' /dev/myfifo";
    let out = sh_in(&env, "dev", script, |c| {
        // A FIFO (type p) is made, and derives no devices-cgroup rule.
        c["linux"]["devices"] = json!([
            {"type": "c", "path": "/dev/mynull", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"type": "p", "path": "/dev/myfifo", "fileMode": 0o640}
        ]);
    });
    let expected = "/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n/dev/urandom 1:9 666\n/dev/tty 5:0 666\n/dev/mynull 1:3 600\n\
                    /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\nfifo 640\n";
    assert_eq!(out, expected);
}

#[test]
fn masked_and_readonly_paths_and_sysctl() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    let script = "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo sys-writable; \
                  cat /proc/sys/net/ipv4/ip_forward";
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = sh_in(&env, "mask", script, |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    assert_eq!(out, "0\n0\n1\n", "{out}");
    let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(host_before, host_after, "the sysctl reached the host");
}

#[test]
fn user_groups_umask_cwd_env() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(&env, "user", "id -u; id -g; id -G; umask; pwd; echo $GREETING", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 0o27});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("GREETING=hello there"));
    });
    assert_eq!(out, "1000\n1001\n1001 5 7\n0027\n/tmp\nhello there\n");
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing: {out}"))
        .trim()
        .to_string()
}

#[test]
fn capability_sets_and_no_new_privileges() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(&env, "caps", "cat /proc/self/status", |c| {
        let nbs = json!(["CAP_NET_BIND_SERVICE"]);
        let two = json!(["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] =
            json!({"bounding": two, "permitted": two, "effective": two, "inheritable": nbs, "ambient": nbs});
        c["process"]["noNewPrivileges"] = json!(false);
    });
    // A non-root exec keeps exactly the ambient set.
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000401");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000400");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000400");
    assert_eq!(status_field(&out, "CapPrm"), "0000000000000400");
    assert_eq!(status_field(&out, "CapEff"), "0000000000000400");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    let out = sh_in(&env, "nnp", "cat /proc/self/status", |_| {});
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "CapBnd"), "0000000020000420");
}

#[test]
fn rlimits_and_oom_score_adj() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(
        &env,
        "rl",
        "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj",
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048}, {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
            c["process"]["oomScoreAdj"] = json!(123);
        },
    );
    assert_eq!(out, "512\n2048\n0\n123\n");
    // An exec'd process gets the container's oomScoreAdj too, as in runc.
    let mut b = env.bundle("rlx", &["sleep", "100"]);
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(321));
    env.ok(&["run", "-d", "-b", b.arg(), "rlx"]);
    assert_eq!(env.ok(&["exec", "rlx", "cat", "/proc/self/oom_score_adj"]), "321\n");
    env.ok(&["delete", "-f", "rlx"]);
}

/// Without a HOME in process.env, the user's home from the container's
/// /etc/passwd, as runc sets it ("/" for a user it does not list).
#[test]
fn home_comes_from_the_containers_passwd() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = sh_in(&env, "home", "echo $HOME", |c| {
        c["process"]["env"] = json!(["PATH=/bin"]);
    });
    assert_eq!(out, "/root\n");
    let mut b = env.bundle("homex", &["sleep", "100"]);
    b.edit(|c| c["process"]["env"] = json!(["PATH=/bin"]));
    env.ok(&["run", "-d", "-b", b.arg(), "homex"]);
    std::fs::write(
        b.rootfs().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    assert_eq!(
        env.ok(&["exec", "-u", "1000:1000", "homex", "sh", "-c", "echo $HOME"]),
        "/home/app\n"
    );
    assert_eq!(
        env.ok(&["exec", "-u", "4242:4242", "homex", "sh", "-c", "echo $HOME"]),
        "/\n"
    );
    assert_eq!(
        env.ok(&["exec", "-e", "HOME=/set", "homex", "sh", "-c", "echo $HOME"]),
        "/set\n"
    );
    env.ok(&["delete", "-f", "homex"]);
}

#[test]
fn all_six_hooks_run_in_order_with_state() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let log = env.dir.path().join("hooklog");
    std::fs::create_dir(&log).unwrap();
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order", dir = log.display())]});
    let mut b = env.bundle("hooks", &["sh", "-c", "echo process >> /hooklog/order"]);
    b.edit(|c| {
        c["process"]["env"].as_array_mut().unwrap().push(json!("HOOKTEST=from-process"));
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": log, "options": ["bind"]}));
        c["hooks"] = json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [host_hook("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooklog/startContainer.json; echo startContainer >> /hooklog/order; env > /hooklog/startContainer.env"]}],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        });
    });
    env.ok(&["create", "-b", b.arg(), "hooks"]);
    let pid = env.pid("hooks");
    env.ok(&["start", "hooks"]);
    env.wait_status("hooks", "stopped");
    env.ok(&["delete", "hooks"]);
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(&lines[..3], ["prestart", "createRuntime", "createContainer"], "{order}");
    let pos = |n: &str| {
        lines
            .iter()
            .position(|l| *l == n)
            .unwrap_or_else(|| panic!("{n} missing: {order}"))
    };
    assert!(pos("startContainer") < pos("process"));
    assert_eq!(*lines.last().unwrap(), "poststop");
    // A startContainer hook without its own env gets process.env (runc).
    let hook_env = std::fs::read_to_string(log.join("startContainer.env")).unwrap();
    assert!(hook_env.lines().any(|l| l == "HOOKTEST=from-process"), "{hook_env}");
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(log.join(format!("{name}.json"))).unwrap()).unwrap();
        assert_eq!(state["id"], "hooks", "{name}");
        assert_eq!(state["bundle"], b.arg(), "{name}");
        if name != "poststop" {
            assert_eq!(state["pid"], json!(pid), "{name}");
        }
    }
    env.assert_gone("hooks", &b);
}

/// The spec: a failing poststart or poststop hook is warned about, and the
/// remaining hooks and the lifecycle go on.
#[test]
fn failing_poststart_and_poststop_hooks_warn_and_go_on() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let marks = env.dir.path().join("marks");
    let mark =
        |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}", marks.display())]});
    let fail = json!({"path": "/bin/false", "args": ["false"]});
    let mut b = env.bundle("hookfail", &["true"]);
    b.edit(|c| c["hooks"] = json!({"poststart": [fail, mark("poststart")], "poststop": [fail, mark("poststop")]}));
    env.ok(&["create", "-b", b.arg(), "hookfail"]);
    let started = env.run(&["start", "hookfail"]);
    assert!(started.status.success(), "start failed on a poststart hook");
    let warned = String::from_utf8_lossy(&started.stderr);
    assert!(
        warned.contains("level=warning") && warned.contains("poststart hook #0"),
        "{warned}"
    );
    env.wait_status("hookfail", "stopped");
    env.ok(&["delete", "hookfail"]);
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), "poststart\npoststop\n");
    env.assert_gone("hookfail", &b);
}

#[test]
fn hook_timeout_fails_create_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("hookto", &["true"]);
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}));
    let e = env.fails(&["create", "-b", b.arg(), "hookto"]);
    assert!(e.contains("createRuntime") && e.contains("timed out"), "{e}");
    env.assert_gone("hookto", &b);
}
