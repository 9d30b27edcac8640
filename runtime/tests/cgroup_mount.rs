//! The `cgroup` mount at /sys/fs/cgroup on a v1 (or hybrid) host without a
//! cgroup namespace, as Docker, Podman and CRI send it: the container sees
//! its own cgroup of each hierarchy (its limits, no one else's cgroups),
//! read-only, and its processes are in name=systemd and the hybrid cgroup2.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

fn unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270)
}

/// Removes, pass or fail, the test's cgroup directories (`rel` and its
/// parent) in every hierarchy, killing what a failed test left there.
/// Declared before the Env so that it runs after the containers go.
struct CgCleanup(Vec<String>);

impl Drop for CgCleanup {
    fn drop(&mut self) {
        for rel in &self.0 {
            let rel = rel.trim_start_matches('/');
            for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                if h.file_type().is_ok_and(|t| t.is_symlink()) {
                    continue;
                }
                let dir = h.path().join(rel);
                remove_cgroup_tree(&dir);
                if let Some(parent) = dir.parent().filter(|p| p != &h.path()) {
                    let _ = std::fs::remove_dir(parent);
                }
            }
        }
    }
}

/// True when the host has a hierarchy mounted at /sys/fs/cgroup/`name`.
fn host_has(name: &str) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = format!("/sys/fs/cgroup/{name}");
    mountinfo
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(point.as_str()) && l.contains(" - cgroup"))
}

/// The container's processes see their own cgroups only, with their
/// limits, read-only; and they are in the name=systemd hierarchy.
#[test]
fn v1_cgroup_mount_shows_the_containers_own_cgroups() {
    if !is_root() {
        return;
    }
    if unified() {
        eprintln!("skipped: the host is cgroup v2 (this test is about v1 hierarchies)");
        return;
    }
    let top = format!("/myshim-cgmount-{}", std::process::id());
    let path = format!("{top}/ctr");
    let sibling = format!("{top}/sibling");
    let _cleanup = CgCleanup(vec![path.clone(), sibling.clone()]);
    // A cgroup of the test's own beside the container's: it must not show.
    for h in ["memory", "pids"] {
        std::fs::create_dir_all(
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(sibling.trim_start_matches('/')),
        )
        .unwrap();
    }
    let env = Env::new();
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/pids/pids.max; \
         echo LS; ls /sys/fs/cgroup/memory; echo END; \
         if touch /sys/fs/cgroup/x 2>/dev/null || mkdir /sys/fs/cgroup/memory/y 2>/dev/null; \
         then echo WRITABLE; else echo READONLY; fi; \
         echo CG; cat /proc/self/cgroup; echo MOUNTS; grep /sys/fs/cgroup /proc/self/mountinfo";
    let out = sh_in(&env, "cgmount", script, |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": 42});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
        let mounts = c["mounts"].as_array().unwrap();
        assert!(
            mounts
                .iter()
                .any(|m| m["destination"] == "/sys/fs/cgroup" && m["type"] == "cgroup"),
            "the default spec has the cgroup mount"
        );
    });
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("67108864"), "{out}");
    assert_eq!(lines.next(), Some("42"), "{out}");
    let listing: Vec<&str> = out
        .split("LS\n")
        .nth(1)
        .unwrap()
        .split("END\n")
        .next()
        .unwrap()
        .lines()
        .collect();
    assert!(listing.contains(&"memory.limit_in_bytes"), "{out}");
    assert!(!listing.contains(&"sibling"), "a sibling cgroup is visible: {out}");
    assert!(
        !listing.iter().any(|l| l.starts_with("myshim")),
        "other cgroups are visible: {out}"
    );
    assert!(out.contains("READONLY\n"), "{out}");
    let cgroup = out.split("CG\n").nth(1).unwrap().split("MOUNTS\n").next().unwrap();
    let mounts = out.split("MOUNTS\n").nth(1).unwrap();
    if host_has("systemd") {
        assert!(
            cgroup.lines().any(|l| l.ends_with(&format!(":name=systemd:{path}"))),
            "not in name=systemd: {cgroup}"
        );
        assert!(mounts.contains(" /sys/fs/cgroup/systemd "), "{mounts}");
    }
    if host_has("unified") {
        assert!(
            cgroup.lines().any(|l| l == format!("0::{path}")),
            "not in cgroup2: {cgroup}"
        );
        assert!(mounts.contains(" /sys/fs/cgroup/unified "), "{mounts}");
    }
    // Every cgroup mount is the container's own, read-only, nosuid, nodev, noexec.
    for l in mounts.lines().filter(|l| l.contains(" - cgroup")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f[3], path, "a mount shows another cgroup: {l}");
        for o in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(f[5].split(',').any(|x| x == o), "{o} missing: {l}");
        }
    }
    // The container's cgroup went with it; the sibling stays until cleanup.
    for h in ["memory", "pids"] {
        let dir = PathBuf::from("/sys/fs/cgroup")
            .join(h)
            .join(path.trim_start_matches('/'));
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

/// Co-mounted controllers get the host's symlinks, and a cgroup namespace
/// still gets a view of its own cgroup (mounted afresh in the namespace).
#[test]
fn v1_cgroup_mount_in_a_cgroup_namespace() {
    if !is_root() || unified() {
        return;
    }
    let path = format!("/myshim-cgmount-{}/ns", std::process::id());
    let _cleanup = CgCleanup(vec![path.clone()]);
    let env = Env::new();
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/fs/cgroup; \
         echo MOUNTS; grep /sys/fs/cgroup /proc/self/mountinfo; echo CGROUP; cat /proc/self/cgroup";
    let out = sh_in(&env, "cgns", script, |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"]["memory"] = json!({"limit": 33554432});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
        ns.push(json!({"type": "cgroup"}));
    });
    assert_eq!(out.lines().next(), Some("33554432"), "{out}");
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        assert!(out.lines().any(|l| l == name), "{name} missing: {out}");
    }
    let (mounts, cgroups) = out.split("MOUNTS\n").nth(1).unwrap().split_once("CGROUP\n").unwrap();
    // The namespace was made once the init was in its cgroups: its root is
    // the container's cgroup in every hierarchy.
    for l in cgroups.lines() {
        assert!(
            l.ends_with(":/"),
            "the namespace's root is not the container's cgroup: {l}"
        );
    }
    for l in mounts.lines().filter(|l| l.contains(" - cgroup")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Relative to the namespace's root: its own cgroup either way.
        assert!(
            f[3] == "/" || f[3].ends_with(&path),
            "a mount shows another cgroup: {l}"
        );
        assert!(f[5].split(',').any(|x| x == "ro"), "{l}");
    }
}
