//! linux.seccomp with real containers: the containers' default profile
//! (Docker's, as Debian ships it for podman), each action, argument
//! comparisons, and user notification through listenerPath.

mod common;
use common::*;
use serde_json::{json, Value};

/// Docker's profile format (archMap, capability includes/excludes) turned
/// into an OCI linux.seccomp for x86_64 and runc's default capabilities.
fn docker_default_profile() -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let profile: Value = serde_json::from_str(&text).unwrap();
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let applies = |cond: &Value, when_absent: bool| -> bool {
        let arch_ok = cond["arches"].as_array().map(|a| a.iter().any(|x| x == "amd64"));
        let caps_ok = cond["caps"]
            .as_array()
            .map(|c| c.iter().all(|x| caps.contains(&x.as_str().unwrap())));
        match (arch_ok, caps_ok) {
            (None, None) => when_absent,
            (a, c) => a.unwrap_or(true) && c.unwrap_or(true),
        }
    };
    let syscalls: Vec<Value> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| applies(&s["includes"], true) && !applies(&s["excludes"], false))
        .map(|s| {
            let mut r = json!({"names": s["names"], "action": s["action"]});
            if let Some(args) = s["args"].as_array().filter(|a| !a.is_empty()) {
                r["args"] = json!(args);
            }
            if let Some(e) = s.get("errnoRet") {
                r["errnoRet"] = e.clone();
            }
            r
        })
        .collect();
    Some(json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }))
}

#[test]
fn default_profile_blocks_what_it_should_and_runs_ordinary_programs() {
    if !is_root() {
        return;
    }
    let Some(profile) = docker_default_profile() else {
        panic!("/usr/share/containers/seccomp.json missing: run contrib/install-deps.sh");
    };
    let env = Env::new();
    // With CAP_SYS_ADMIN and CAP_SYS_CHROOT the kernel would allow
    // sethostname and chroot: a refusal can only come from the filter,
    // which was made for the default capabilities.
    let script = "hostname other 2>&1 && echo hostname-ok; chroot / true 2>&1 && echo chroot-ok; ls /bin | grep -c sh; grep Seccomp: /proc/self/status";
    let extra_caps = |c: &mut Value| {
        for set in ["bounding", "effective", "permitted"] {
            let list = c["process"]["capabilities"][set].as_array_mut().unwrap();
            list.push(json!("CAP_SYS_ADMIN"));
            list.push(json!("CAP_SYS_CHROOT"));
        }
    };
    let control = sh_in(&env, "noprof", script, extra_caps);
    assert!(
        control.contains("hostname-ok") && control.contains("chroot-ok"),
        "control: {control}"
    );
    let out = sh_in(&env, "dflt", script, |c| {
        extra_caps(c);
        c["linux"]["seccomp"] = profile.clone();
    });
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("Operation not permitted"), "{out}");
    assert!(lines[1].contains("Operation not permitted"), "{out}");
    assert!(lines[2].parse::<u32>().unwrap() > 0, "{out}");
    assert!(lines[3].ends_with('2'), "filter mode: {out}");
}

#[test]
fn actions_errno_kill_and_argument_comparison() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"},
            // kill(pid, 15) refused; other signals go through.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
        ]
    });
    // In a subshell: busybox may run sync without forking.
    let script = "mkdir /tmp/x 2>&1; (sync); echo sync=$?; kill -15 $$ 2>&1; kill -0 $$ && echo sig0-ok";
    let out = sh_in(&env, "acts", script, |c| {
        c["linux"]["seccomp"] = profile.clone();
        c["root"]["readonly"] = json!(false);
    });
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("Function not implemented"), "{out}");
    assert_eq!(lines[1], format!("sync={}", 128 + libc::SIGSYS), "{out}");
    assert!(lines[2].contains("Operation not permitted"), "{out}");
    assert_eq!(lines[3], "sig0-ok", "{out}");
}

#[test]
fn notify_hands_the_fd_and_state_to_the_listener() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let sock = env.dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // The agent: takes the fd and the state, then answers every notified
    // syscall with EACCES.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (bytes, fd) = recv_with_fd(&conn);
        let state: Value = serde_json::from_slice(&bytes).unwrap();
        let req = libseccomp::ScmpNotifReq::receive(fd).unwrap();
        libseccomp::ScmpNotifResp::new_error(req.id, -libc::EACCES, libseccomp::ScmpNotifRespFlags::empty())
            .respond(fd)
            .unwrap();
        state
    });
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "test-agent",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = sh_in(&env, "notif", "mkdir /tmp/y 2>&1; echo done", |c| {
        c["linux"]["seccomp"] = profile.clone();
        c["root"]["readonly"] = json!(false);
    });
    assert!(out.contains("Permission denied") && out.contains("done"), "{out}");
    let state = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "test-agent");
    assert_eq!(state["state"]["id"], "notif");
    assert!(state["pid"].as_i64().unwrap() > 0);
}

#[test]
fn bad_profile_is_refused_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("badsc", &["true"]);
    b.edit(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_SOMETIMES"}));
    let e = env.fails(&["create", "-b", b.arg(), "badsc"]);
    assert!(e.contains("SCMP_ACT_SOMETIMES"), "{e}");
    env.assert_gone("badsc", &b);
}

/// The cwd is entered and checked before the filter is loaded: a profile that
/// denies getcwd does not fail the start (with or without noNewPrivileges).
#[test]
fn a_profile_denying_getcwd_still_starts() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    for nnp in [true, false] {
        let id = format!("nocwd{nnp}");
        let mut b = env.bundle(&id, &["true"]);
        b.edit(|c| {
            c["process"]["cwd"] = json!("/tmp");
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        });
        let out = env.run(&["run", "-b", b.arg(), &id]);
        assert!(
            out.status.success(),
            "noNewPrivileges {nnp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.assert_gone(&id, &b);
    }
}
