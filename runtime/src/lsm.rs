//! process.apparmorProfile: the Linux security module label the process
//! gets at its execve. (A process.selinuxLabel is refused with the rest of
//! the config, before anything is made: see `Process::validate`.)
//!
//! The AppArmor profile is requested through the container's own procfs
//! (`exec PROFILE` to /proc/thread-self/attr/apparmor/exec), opened below its
//! procfs mount without crossing any mount: a fake /proc or a bind over
//! /proc/self/attr would swallow the write and leave the process unconfined
//! (CVE-2019-16884). A label that cannot be applied is an error, never a
//! silently unconfined process.

use crate::safe_path::{open_dir, open_proc_file, open_proc_root, write_proc_file};
use crate::spec::Process;
use anyhow::{Context, Result};
use std::path::Path;

/// Sets the labels the process is to run with after execve. Call it in the
/// container's mount namespace (its /proc), before capabilities are dropped
/// and no_new_privs is set.
pub fn set_exec_labels(process: &Process) -> Result<()> {
    match process.apparmor_profile.as_deref() {
        Some(profile) if !profile.is_empty() => {
            apparmor_on_exec(profile).with_context(|| format!("process.apparmorProfile {profile:?}"))
        }
        _ => Ok(()),
    }
}

/// AppArmor's change_onexec: the profile applies from the next execve.
fn apparmor_on_exec(profile: &str) -> Result<()> {
    let proc = open_proc_root(&open_dir(Path::new("/"))?)?;
    // attr/apparmor/ since Linux 5.8; attr/exec before (and where another
    // LSM owns attr/exec, writing there fails rather than misfires).
    let own_dir = Path::new("thread-self/attr/apparmor");
    let rel = match open_proc_file(&proc, own_dir, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(_) => own_dir.join("exec"),
        Err(e) if is_enoent(&e) => Path::new("thread-self/attr/exec").to_path_buf(),
        Err(e) => return Err(e),
    };
    log::debug!(
        "AppArmor profile {profile:?} from the next execve, through /proc/{}",
        rel.display()
    );
    write_proc_file(&proc, &rel, 0, &format!("exec {profile}")).context("is AppArmor enabled and the profile loaded?")
}

fn is_enoent(e: &anyhow::Error) -> bool {
    let io = e.root_cause().downcast_ref::<std::io::Error>();
    io.and_then(|e| e.raw_os_error()) == Some(libc::ENOENT)
}
