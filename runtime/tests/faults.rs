//! The runtime when the machine runs out of things or the bundle goes away:
//! a clear error naming what ran out, nothing half-made left, and the
//! containers that exist still deletable.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Unmounts the test's tmpfs, pass or fail.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `--root` on a filesystem with no room: the create fails naming the
/// state file it could not write, and leaves no state dir and no process.
#[test]
fn state_filesystem_full() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("full", &["sleep", "100"]);
    let root = env.dir.path().join("tiny");
    std::fs::create_dir(&root).unwrap();
    let flags = nix::mount::MsFlags::empty();
    nix::mount::mount(Some("tmpfs"), &root, Some("tmpfs"), flags, Some("size=4k")).unwrap();
    let _mounted = Mounted(root.clone());
    // Fill it, leaving no block.
    let _ = std::fs::write(root.join("filler"), vec![0u8; 8192]);
    let out = Command::new(MYSHIM)
        .arg("--root")
        .arg(&root)
        .args(["create", "-b", b.arg(), "full"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "create on a full filesystem succeeded");
    let e = error_message(&String::from_utf8_lossy(&out.stderr));
    assert!(
        e.contains("No space left on device") && e.contains(&root.display().to_string()),
        "{e}"
    );
    assert!(
        !root.join("full").exists(),
        "a state dir was left on the full filesystem"
    );
    assert_no_leftovers(&b.path);
}

/// Too few file descriptors: a clear error, nothing left behind.
#[test]
fn too_many_open_files() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("nofd", &["sleep", "100"]);
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=8:8", "--"])
        .arg(MYSHIM)
        .arg("--root")
        .arg(env.root())
        .args(["run", "-d", "-b", b.arg(), "nofd"]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "run with 8 fds succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Too many open files"), "{stderr}");
    // Whatever was made is gone, or can be deleted.
    let _ = env.run(&["delete", "-f", "nofd"]);
    env.assert_gone("nofd", &b);
}

/// The bundle removed under a running container: state, kill and delete
/// still work (the runtime keeps what it needs in its state dir).
#[test]
fn bundle_removed_while_the_container_runs() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("gone", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "gone"]);
    let pid = env.pid("gone");
    // The rootfs is in use (the container's root): move the bundle away
    // and remove what can be removed.
    let moved = env.dir.path().join("moved-away");
    std::fs::rename(&b.path, &moved).unwrap();
    let _ = std::fs::remove_file(moved.join("config.json"));
    assert_eq!(env.status("gone"), "running");
    env.ok(&["kill", "gone", "KILL"]);
    env.wait_status("gone", "stopped");
    env.ok(&["delete", "gone"]);
    assert!(!env.root().join("gone").exists());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    );
    assert_no_leftovers(&moved);
}
