//! Driving a containerd with ctr: what the shim's integration tests share,
//! whoever runs that containerd (root, or a user inside rootlesskit).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const RUNTIME: &str = "io.containerd.myshim.v2";
pub const IMAGE: &str = "docker.io/library/busybox:myshim";

pub trait Ctr {
    /// `ctr ARGS` against this containerd, not started yet.
    fn cmd(&self, args: &[&str]) -> Command;

    /// containerd's log, for failure messages.
    fn log(&self) -> String;

    fn ctr(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr run -d` of IMAGE as container `id` through our runtime, with
    /// `options` before the image and `cmd` as its process.
    fn run_detached(&self, options: &[&str], id: &str, cmd: &[&str]) {
        let mut args = vec!["run", "-d", "--runtime", RUNTIME];
        args.extend(options);
        args.extend([IMAGE, id]);
        args.extend(cmd);
        self.ok(&args);
    }

    /// SIGKILL to task `id`, then its task and container removed.
    fn kill_and_remove(&self, id: &str) {
        self.ok(&["task", "kill", "-s", "KILL", id]);
        self.wait_task(id, "STOPPED");
        self.ok(&["task", "delete", id]);
        self.ok(&["container", "rm", id]);
    }

    /// Waits (bounded) until `ctr task ls` shows `id` with `status`.
    fn wait_task(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ls = self.ok(&["task", "ls"]);
            if ls.lines().any(|l| l.starts_with(id) && l.contains(status)) {
                return;
            }
            assert!(Instant::now() < deadline, "{id} never {status}: {ls}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the busybox image offline (contrib/make-bundle.sh, make-image.sh)
/// under `dir`: its rootfs at dir/image/rootfs; returns the OCI tar to import.
pub fn build_image(dir: &Path) -> PathBuf {
    let (bundle, tar) = (dir.join("image"), dir.join("image.tar"));
    let status = Command::new(repo().join("contrib/make-bundle.sh"))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new(repo().join("contrib/make-image.sh"))
        .arg(bundle.join("rootfs"))
        .arg(IMAGE)
        .arg(&tar)
        .status()
        .unwrap();
    assert!(status.success());
    tar
}
