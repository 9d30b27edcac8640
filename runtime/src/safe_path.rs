//! Paths inside the rootfs, resolved by the kernel as if the rootfs were `/`
//! (openat2 RESOLVE_IN_ROOT), so no symlink in the rootfs can point outside it.
//! Mounts then go through `/proc/self/fd/N` of the resolved fd.

use anyhow::{Context, Result};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn cstr(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| CString::new("<nul in path>").unwrap())
}

/// openat2(root, path, flags, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS).
pub fn open_in_root(root: &OwnedFd, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

fn openat2(dir: &OwnedFd, path: &Path, flags: i32, resolve: u64) -> std::io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    let p = cstr(path);
    loop {
        // SAFETY: p and how outlive the call; the returned fd is owned below.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                p.as_ptr(),
                &how,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EAGAIN) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Opens a directory by path (no rootfs confinement): the starting point.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: the path is a valid C string; the fd is owned below.
    let fd = unsafe { libc::open(cstr(path).as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("opening {}", path.display()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What to create at the end of a path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Opens `path` inside `root` as an O_PATH fd, creating missing directories
/// (and the last component as `leaf`) on the way, each step confined to root.
pub fn ensure_in_root(root: &OwnedFd, path: &Path, leaf: Leaf) -> Result<OwnedFd> {
    if let Ok(fd) = open_in_root(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    let parts: Vec<_> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut current = open_in_root(root, Path::new("/"), libc::O_PATH)?;
    let mut so_far = std::path::PathBuf::from("/");
    for (i, name) in parts.iter().enumerate() {
        so_far.push(name);
        let last = i + 1 == parts.len();
        match open_in_root(root, &so_far, libc::O_PATH) {
            Ok(fd) => current = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c = cstr(Path::new(name));
                // SAFETY: current is a directory fd, c a single path component.
                let rc = if last && leaf == Leaf::File {
                    let fd = unsafe {
                        libc::openat(
                            current.as_raw_fd(),
                            c.as_ptr(),
                            // A dangling symlink here would be followed from
                            // the host's root: never follow, never reuse.
                            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        )
                    };
                    if fd >= 0 {
                        unsafe { libc::close(fd) };
                    }
                    fd
                } else {
                    unsafe { libc::mkdirat(current.as_raw_fd(), c.as_ptr(), 0o755) }
                };
                if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("creating {} in the rootfs", so_far.display()));
                }
                current = open_in_root(root, &so_far, libc::O_PATH)
                    .with_context(|| format!("opening {} in the rootfs", so_far.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("opening {} in the rootfs", so_far.display())),
        }
    }
    Ok(current)
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Writes `value` to an already opened file only if it really is on procfs:
/// a bind mount or symlink planted over a /proc file must not redirect the
/// write (CVE-2025-52881).
pub fn write_procfs(fd: OwnedFd, what: &str, value: &str) -> Result<()> {
    let fs = nix::sys::statfs::fstatfs(&fd).with_context(|| format!("fstatfs {what}"))?;
    if fs.filesystem_type().0 != PROC_SUPER_MAGIC {
        anyhow::bail!("{what} is not on procfs: refusing to write it");
    }
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, value.as_bytes()).with_context(|| format!("writing {value:?} to {what}"))
}

/// `/proc` of the directory tree `root`: it must be the root of a procfs
/// mount (not a symlink, nor a directory inside one).
pub fn open_proc_root(root: &OwnedFd) -> Result<OwnedFd> {
    let proc = open_in_root(
        root,
        Path::new("/proc"),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
    .context("opening /proc")?;
    let fs = nix::sys::statfs::fstatfs(&proc).context("fstatfs /proc")?;
    if fs.filesystem_type().0 != PROC_SUPER_MAGIC || !is_mount_root(&proc)? {
        anyhow::bail!("/proc is not a procfs mount");
    }
    Ok(proc)
}

/// Opens `rel` (such as `sys/kernel/hostname`) below a procfs root from
/// `open_proc_root`, crossing no mount: a bind over a /proc file, even of
/// another procfs file, fails with EXDEV before anything is opened (and so
/// before O_TRUNC could empty a decoy): CVE-2025-52881.
pub fn open_proc_file(proc: &OwnedFd, rel: &Path, flags: i32) -> Result<OwnedFd> {
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
    openat2(proc, rel, flags, resolve).with_context(|| {
        format!(
            "opening /proc/{} on the procfs mount itself (a mount over it is refused)",
            rel.display()
        )
    })
}

/// Opens `rel` below a procfs root from `open_proc_root` as
/// [`open_proc_file`] does (with O_WRONLY and `flags`) and writes `value`
/// to it, checked to be on procfs.
pub fn write_proc_file(proc: &OwnedFd, rel: &Path, flags: i32, value: &str) -> Result<()> {
    let fd = open_proc_file(proc, rel, libc::O_WRONLY | flags)?;
    write_procfs(fd, &format!("/proc/{}", rel.display()), value)
}

/// statx of the file `fd` refers to, asking for `mask` (the basic fields
/// and the attributes always come).
pub fn statx_fd(fd: BorrowedFd, mask: u32) -> std::io::Result<libc::statx> {
    // SAFETY: an all-zero statx is a valid out-buffer.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx of the fd itself (empty path) into that buffer.
    let rc = unsafe { libc::statx(fd.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, mask, &mut stx) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stx)
}

/// True when `fd` is the root of a mount.
pub fn is_mount_root(fd: &OwnedFd) -> Result<bool> {
    let stx = statx_fd(fd.as_fd(), 0).context("statx")?;
    Ok(stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0)
}

/// Opens a host /proc file for writing (no symlinks followed at the end).
pub fn write_host_procfs(path: &str, value: &str) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    write_procfs(file.into(), path, value)
}

/// The magic link through which a syscall taking a path reaches exactly this fd.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_to_slash_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", dir.path().join("up")).unwrap();
        let root = open_dir(dir.path()).unwrap();
        let fd = ensure_in_root(&root, Path::new("/escape/newdir"), Leaf::Dir).unwrap();
        assert!(dir.path().join("newdir").is_dir(), "created inside the root");
        drop(fd);
        ensure_in_root(&root, Path::new("/up/f"), Leaf::File).unwrap();
        assert!(dir.path().join("etc/f").is_file());
    }

    #[test]
    fn dangling_symlink_does_not_create_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("created-from-inside");
        std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        let root = open_dir(dir.path()).unwrap();
        let _ = ensure_in_root(&root, Path::new("/link"), Leaf::File);
        assert!(!target.exists(), "a file was created outside the root");
    }

    #[test]
    fn creates_nested_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_dir(dir.path()).unwrap();
        ensure_in_root(&root, Path::new("/a/b/c"), Leaf::File).unwrap();
        assert!(dir.path().join("a/b/c").is_file());
    }
}
