//! CVE-2019-5736: no process in a container may overwrite the runtime binary.
//!
//! The container's init before its execve and the process `exec` starts are
//! clones of the runtime (it never re-executes itself for them), so their
//! /proc/PID/exe is the runtime binary. A container process that may ptrace
//! them (CAP_SYS_PTRACE without a user namespace) can open that link, keep
//! the fd (O_PATH is enough) and, once no runtime process runs and the binary
//! is no longer busy (ETXTBSY), reopen /proc/self/fd/N for writing.
//!
//! So before the runtime starts anything that enters a container, it
//! re-executes itself once (same pid, argv, environment and fds) from an
//! image that no fd can ever write:
//!
//! - a read-only bind mount of its binary that is attached nowhere
//!   (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY)): no copy,
//!   the page cache stays shared. Every open for writing through it fails
//!   with EROFS, and the mount cannot be made writable again: its private
//!   mount namespace dissolves when the fd closes at execve, and
//!   mount_setattr refuses a mount that is not mounted anywhere;
//! - where that is not allowed (no CAP_SYS_ADMIN, e.g. rootless, or a kernel
//!   before 5.12): a memfd copy sealed against writing, shrinking, growing
//!   and further seal changes.
//!
//! `prctl(PR_SET_MM_EXE_FILE)` would avoid the exec but needs CAP_SYS_RESOURCE.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Set only for the re-executed image: the id of the mount its exe must be on.
const MOUNT_ID_ENV: &str = "_MYSHIM_EXE_MOUNT_ID";

const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
const OPEN_TREE_CLONE: libc::c_uint = 1;

/// Returns once this process runs from a write-protected image of its
/// binary; if it does not yet, re-executes it from one (never returning on
/// success). Call it early, while the process has one thread, before
/// anything that clones a process into a container. Afterwards
/// `std::env::current_exe()` no longer names a usable path.
pub fn ensure_protected_exe() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    let expected_mount = take_mount_id_marker();
    if is_protected(&exe, expected_mount)? {
        log::debug!("running from a write-protected image of the runtime binary");
        return Ok(());
    }
    if expected_mount.is_some() {
        bail!("re-executed from a read-only mount of the runtime binary, but /proc/self/exe is not on it");
    }
    match readonly_detached_mount(c"/proc/self/exe") {
        Ok((mount, id)) => Err(reexec(&mount, Some(id))),
        Err(e) => {
            log::debug!("no read-only mount of the runtime binary ({e:#}): running from a sealed memfd copy");
            Err(reexec(&sealed_copy(&exe)?, None))
        }
    }
}

/// The marker from our previous image, removed so nothing inherits it.
fn take_mount_id_marker() -> Option<u64> {
    let value = std::env::var(MOUNT_ID_ENV).ok()?;
    std::env::remove_var(MOUNT_ID_ENV);
    value.parse().ok()
}

fn is_protected(exe: &File, expected_mount: Option<u64>) -> Result<bool> {
    // SAFETY: F_GET_SEALS only reads; it fails with EINVAL unless a memfd.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(true);
    }
    let Some(id) = expected_mount else { return Ok(false) };
    let readonly = nix::sys::statvfs::fstatvfs(exe.as_fd())
        .context("fstatvfs /proc/self/exe")?
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    Ok(readonly && mount_id(exe.as_fd())? == id)
}

/// A clone of the mount `file` is on, reduced to that one file, made
/// read-only, attached to no mount table; with its mount id.
fn readonly_detached_mount(file: &std::ffi::CStr) -> Result<(OwnedFd, u64)> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: a C string path; the returned fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, file.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("open_tree({file:?}, OPEN_TREE_CLONE)"));
    }
    // SAFETY: a fresh fd from the kernel.
    let mount = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    crate::rootfs::set_attr_recursive(&mount, crate::rootfs::MOUNT_ATTR_RDONLY)
        .context("making the clone of the runtime binary's mount read-only")?;
    let id = mount_id(mount.as_fd())?;
    Ok((mount, id))
}

fn mount_id(fd: std::os::fd::BorrowedFd) -> Result<u64> {
    let stx =
        crate::safe_path::statx_fd(fd, libc::STATX_MNT_ID).context("statx(STATX_MNT_ID) of the runtime binary")?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        bail!("statx: this kernel reports no mount id (needs Linux 5.8)");
    }
    Ok(stx.stx_mnt_id)
}

/// A memfd holding a copy of the binary, sealed so nothing can change it.
fn sealed_copy(exe: &File) -> Result<OwnedFd> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let name = c"myshim-sealed-exe";
    // MFD_EXEC (Linux 6.3) keeps it executable where vm.memfd_noexec says otherwise.
    // SAFETY: a constant name; the fd is owned below.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), base | libc::MFD_EXEC) };
    if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        fd = unsafe { libc::memfd_create(name.as_ptr(), base) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for a copy of the runtime binary");
    }
    // SAFETY: a fresh fd from the kernel.
    let mut copy = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::copy(&mut &*exe, &mut copy).context("copying /proc/self/exe into a memfd")?;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(std::io::Error::last_os_error()).context("sealing the memfd copy of the runtime binary");
    }
    Ok(copy.into())
}

/// execveat(image, "", AT_EMPTY_PATH) with our argv and environment.
fn reexec(image: &OwnedFd, mount_id: Option<u64>) -> anyhow::Error {
    // Neither holds a NUL byte: the kernel passed them to us as C strings.
    let c = |b: &[u8]| CString::new(b).unwrap_or_default();
    let argv: Vec<CString> = std::env::args_os().map(|a| c(a.as_bytes())).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != MOUNT_ID_ENV)
        .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect();
    if let Some(id) = mount_id {
        envp.push(c(format!("{MOUNT_ID_ENV}={id}").as_bytes()));
    }
    let err = nix::unistd::fexecve(image.as_raw_fd(), &argv, &envp).unwrap_err();
    anyhow::Error::new(err).context("re-executing the runtime from a write-protected image of its binary")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_through(fd: &OwnedFd) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        std::io::Write::write_all(&mut f, b"overwritten")
    }

    #[test]
    fn sealed_copy_cannot_be_written_and_is_recognised() {
        let exe = File::open("/proc/self/exe").unwrap();
        let copy = sealed_copy(&exe).unwrap();
        let e = write_through(&copy).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert!(is_protected(&File::from(copy), None).unwrap());
        assert!(!is_protected(&exe, None).unwrap());
    }

    #[test]
    fn detached_mount_is_read_only_and_recognised_by_its_id() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: open_tree needs root");
            return;
        }
        // Not a running binary: that would only say ETXTBSY.
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = CString::new(file.path().as_os_str().as_bytes()).unwrap();
        let (mount, id) = readonly_detached_mount(&path).unwrap();
        let e = write_through(&mount).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        let file = File::open(format!("/proc/self/fd/{}", mount.as_raw_fd())).unwrap();
        assert!(is_protected(&file, Some(id)).unwrap());
        assert!(!is_protected(&file, Some(id + 1)).unwrap(), "another mount id");
    }
}
