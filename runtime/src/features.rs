//! `myshim features`: what this runtime supports, in runc's JSON shape.

use serde_json::{json, Value};

const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"];
const SECCOMP_ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
const SECCOMP_FLAGS: [&str; 3] = [
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
];

pub fn features() -> Value {
    let caps: Vec<&str> = (0u8..=40).filter_map(crate::capabilities::name).collect();
    let hooks: Vec<&str> = crate::spec::Hooks::default()
        .all()
        .iter()
        .map(|(name, _)| *name)
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": hooks,
        "mountOptions": crate::rootfs::known_options(),
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": SECCOMP_FLAGS,
                "supportedFlags": SECCOMP_FLAGS,
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
            "netDevices": {"enabled": false},
        },
        "annotations": annotations(),
    })
}

fn annotations() -> Value {
    let mut a = json!({"org.opencontainers.runtime-spec.features.version": crate::state::OCI_VERSION});
    // Engines read the library's version to choose seccomp flags.
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        a["io.github.seccomp.libseccomp.version"] = json!(format!("{}.{}.{}", v.major, v.minor, v.micro));
    }
    a
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_what_the_code_supports() {
        let f = super::features();
        assert_eq!(f["linux"]["capabilities"].as_array().unwrap().len(), 41);
        let options = f["mountOptions"].as_array().unwrap();
        // Docker uses rro for read-only volumes only where listed.
        for o in ["rbind", "rro", "rnosuid", "rnoexec", "nosymfollow"] {
            assert!(options.iter().any(|x| x == o), "{o} not listed");
        }
        // containerd 2.x sends idmap options only where enabled.
        assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        // Every listed seccomp action and flag really compiles.
        for action in f["linux"]["seccomp"]["actions"].as_array().unwrap() {
            let rule = serde_json::json!({"names": ["getpid"], "action": action});
            let p = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/x", "syscalls": [rule],
                "flags": f["linux"]["seccomp"]["supportedFlags"]});
            crate::seccomp::compile(&serde_json::from_value(p).unwrap()).unwrap();
        }
    }
}
