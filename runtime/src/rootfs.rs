//! root, mounts, linux.devices, maskedPaths, readonlyPaths, rootfsPropagation:
//! everything that builds the container's filesystem view, then pivot_root.
//!
//! Every target inside the rootfs is resolved with `safe_path` and mounted
//! through its fd, so a symlink in the rootfs cannot redirect a mount.

use crate::safe_path::{ensure_in_root, fd_path, open_in_root, Leaf};
use crate::spec::{Device, Mount, Spec};
use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// mount(2) flags by option name: (set, clear).
const FLAG_OPTIONS: [(&str, MsFlags, MsFlags); 33] = {
    const NONE: MsFlags = MsFlags::empty();
    [
        ("defaults", NONE, MsFlags::MS_RDONLY),
        ("rw", NONE, MsFlags::MS_RDONLY),
        ("ro", MsFlags::MS_RDONLY, NONE),
        ("nosuid", MsFlags::MS_NOSUID, NONE),
        ("suid", NONE, MsFlags::MS_NOSUID),
        ("nodev", MsFlags::MS_NODEV, NONE),
        ("dev", NONE, MsFlags::MS_NODEV),
        ("noexec", MsFlags::MS_NOEXEC, NONE),
        ("exec", NONE, MsFlags::MS_NOEXEC),
        ("sync", MsFlags::MS_SYNCHRONOUS, NONE),
        ("async", NONE, MsFlags::MS_SYNCHRONOUS),
        ("dirsync", MsFlags::MS_DIRSYNC, NONE),
        ("remount", MsFlags::MS_REMOUNT, NONE),
        ("mand", MsFlags::MS_MANDLOCK, NONE),
        ("nomand", NONE, MsFlags::MS_MANDLOCK),
        ("noatime", MsFlags::MS_NOATIME, NONE),
        ("atime", NONE, MsFlags::MS_NOATIME),
        ("nodiratime", MsFlags::MS_NODIRATIME, NONE),
        ("diratime", NONE, MsFlags::MS_NODIRATIME),
        ("relatime", MsFlags::MS_RELATIME, NONE),
        ("norelatime", NONE, MsFlags::MS_RELATIME),
        ("strictatime", MsFlags::MS_STRICTATIME, NONE),
        ("nostrictatime", NONE, MsFlags::MS_STRICTATIME),
        ("lazytime", MsFlags::MS_LAZYTIME, NONE),
        ("nolazytime", NONE, MsFlags::MS_LAZYTIME),
        ("iversion", MsFlags::MS_I_VERSION, NONE),
        ("noiversion", NONE, MsFlags::MS_I_VERSION),
        ("silent", MsFlags::MS_SILENT, NONE),
        ("loud", NONE, MsFlags::MS_SILENT),
        ("nosymfollow", MS_NOSYMFOLLOW, NONE),
        ("symfollow", NONE, MS_NOSYMFOLLOW),
        ("bind", MsFlags::MS_BIND, NONE),
        ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC), NONE),
    ]
};

/// Since Linux 5.10; nix has no name for it.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// Recursive mount attributes (mount_setattr(2) with AT_RECURSIVE) by
/// option name: (attribute, clear). The access-time ones are a field, not
/// bits: setting one also clears the whole field first.
const RECURSIVE_OPTIONS: [(&str, u64, bool); 18] = [
    ("rro", MOUNT_ATTR_RDONLY, false),
    ("rrw", MOUNT_ATTR_RDONLY, true),
    ("rnosuid", MOUNT_ATTR_NOSUID, false),
    ("rsuid", MOUNT_ATTR_NOSUID, true),
    ("rnodev", MOUNT_ATTR_NODEV, false),
    ("rdev", MOUNT_ATTR_NODEV, true),
    ("rnoexec", MOUNT_ATTR_NOEXEC, false),
    ("rexec", MOUNT_ATTR_NOEXEC, true),
    ("rnodiratime", MOUNT_ATTR_NODIRATIME, false),
    ("rdiratime", MOUNT_ATTR_NODIRATIME, true),
    ("rrelatime", MOUNT_ATTR_RELATIME, false),
    ("rnorelatime", MOUNT_ATTR_RELATIME, true),
    ("rnoatime", MOUNT_ATTR_NOATIME, false),
    ("ratime", MOUNT_ATTR_NOATIME, true),
    ("rstrictatime", MOUNT_ATTR_STRICTATIME, false),
    ("rnostrictatime", MOUNT_ATTR_STRICTATIME, true),
    ("rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, false),
    ("rsymfollow", MOUNT_ATTR_NOSYMFOLLOW, true),
];

const PROPAGATION_OPTIONS: [&str; 8] = [
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// runc's hint for tmpfs (copy the image's content up); nothing to copy
/// for an empty target, so accepted and ignored.
const IGNORED_OPTIONS: [&str; 1] = ["tmpcopyup"];

/// Every option name `MountOptions::parse` gives a meaning, as `features`
/// lists them (others go to the filesystem as data, and are refused for a
/// bind mount, which has no filesystem to read them).
pub fn known_options() -> Vec<&'static str> {
    let flags = FLAG_OPTIONS.iter().map(|(name, ..)| *name);
    let recursive = RECURSIVE_OPTIONS.iter().map(|(name, ..)| *name);
    flags
        .chain(recursive)
        .chain(PROPAGATION_OPTIONS)
        .chain(IGNORED_OPTIONS)
        .collect()
}

/// Mount options split the way mount(2) and mount_setattr(2) want them.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    /// Recursive attributes to set and to clear (the r* options).
    pub attr_set: u64,
    pub attr_clr: u64,
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions> {
        let mut o = MountOptions {
            flags: MsFlags::empty(),
            propagation: vec![],
            data: vec![],
            bind: false,
            attr_set: 0,
            attr_clr: 0,
        };
        for opt in options {
            let name = opt.as_str();
            if let Some((_, set, clear)) = FLAG_OPTIONS.iter().find(|(n, ..)| *n == name) {
                o.flags.insert(*set);
                o.flags.remove(*clear);
                o.bind |= set.contains(MsFlags::MS_BIND);
            } else if let Some((_, attr, clear)) = RECURSIVE_OPTIONS.iter().find(|(n, ..)| *n == name) {
                if *clear {
                    o.attr_clr |= attr;
                    o.attr_set &= !attr;
                } else {
                    o.attr_set |= attr;
                    o.attr_clr &= !attr;
                }
                if *attr & MOUNT_ATTR_ATIME_MASK == *attr {
                    o.attr_clr |= MOUNT_ATTR_ATIME_MASK;
                }
            } else if PROPAGATION_OPTIONS.contains(&name) {
                o.propagation.push(propagation_flag(name)?);
            } else if matches!(name, "idmap" | "ridmap") {
                bail!("mount option {name:?}: idmapped mounts are not supported yet");
            } else if !IGNORED_OPTIONS.contains(&name) {
                o.data.push(name.to_string());
            }
        }
        Ok(o)
    }
}

/// The mount(2) flags for a propagation name (rootfsPropagation or an option).
pub fn propagation_flag(name: &str) -> Result<MsFlags> {
    Ok(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => bail!("unknown propagation {other:?}"),
    })
}

/// The file type for a linux.devices `type`.
pub fn device_kind(kind: &str) -> Result<SFlag> {
    Ok(match kind {
        "c" | "u" => SFlag::S_IFCHR,
        "b" => SFlag::S_IFBLK,
        "p" => SFlag::S_IFIFO,
        other => bail!("unknown device type {other:?} (expected c, b, u or p)"),
    })
}

fn mount_at(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &dyn Fn() -> String,
) -> Result<()> {
    mount(source, target, fstype, flags, data).with_context(what)
}

/// Everything the init needs to build the rootfs, resolved before it starts.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: PathBuf,
    /// In a user namespace of its own or joined (ids in mount options must be mapped).
    pub in_userns: bool,
    /// Without real privileges (see [`crate::namespaces::Plan::unprivileged`]):
    /// no mknod, and the host's cgroups stay read-only.
    pub unprivileged: bool,
    /// The container's own cgroup v2 directory on the host, if it has one.
    pub own_cgroup: Option<PathBuf>,
    /// False when the config has no mount namespace: the mounts are made
    /// in the runtime's own (on a private bind of the rootfs, recorded and
    /// removed at delete), "/" keeps its propagation, and chroot replaces
    /// pivot_root.
    pub own_mount_ns: bool,
}

/// The pty the init made from the container's own devpts.
pub struct Console {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl RootfsPlan<'_> {
    /// Builds the mounts in the new mount namespace and prepares the pty;
    /// pivot_root is the caller's next step.
    pub fn prepare(&self, terminal: bool) -> Result<Option<Console>> {
        let linux = self.spec.linux();
        let propagation = match &linux.rootfs_propagation {
            // The rootfs cannot be bound from an unbindable "/": that one
            // waits until after pivot_root (apply_root_propagation).
            Some(p) if !propagation_flag(p)?.contains(MsFlags::MS_UNBINDABLE) => propagation_flag(p)?,
            _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        };
        if self.own_mount_ns {
            mount_at(None, "/", None, propagation | MsFlags::MS_REC, None, &|| {
                "making / a slave mount".into()
            })?;
        }
        let rootfs = self.rootfs.to_str().context("rootfs path is not UTF-8")?;
        // Only a shared "/" leaves the rootfs's parent mount shared; the
        // default (rslave) never does, so the mount table is read only then.
        if self.own_mount_ns && propagation.contains(MsFlags::MS_SHARED) {
            make_parent_mount_private(&self.rootfs)?;
        }
        mount_at(
            Some(rootfs),
            rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            &|| format!("bind mounting rootfs {rootfs}"),
        )?;
        if !self.own_mount_ns {
            // In the runtime's mount namespace: what is mounted on this bind
            // must not propagate to the host's peers (only this new mount is
            // changed, not the host's "/").
            mount_at(None, rootfs, None, MsFlags::MS_PRIVATE | MsFlags::MS_REC, None, &|| {
                format!("making the bind of rootfs {rootfs} private")
            })?;
        }
        let root = crate::safe_path::open_dir(&self.rootfs)?;

        for m in &self.spec.mounts {
            self.mount_one(&root, m)
                .with_context(|| format!("mount {} ({})", m.destination, m.kind.as_deref().unwrap_or("bind")))?;
        }
        if self.unprivileged {
            readonly_host_cgroups(&root)?;
        }
        let dev_is_bind = self
            .spec
            .mounts
            .iter()
            .any(|m| m.destination == "/dev" && MountOptions::parse(&m.options).map(|o| o.bind).unwrap_or(false));
        if !dev_is_bind {
            self.create_devices(&root)?;
            create_dev_symlinks(&root)?;
        }
        let console = if terminal { Some(open_console(&root)?) } else { None };
        if !linux.sysctl.is_empty() {
            let proc = crate::safe_path::open_proc_root(&root).context("linux.sysctl")?;
            for (key, value) in &linux.sysctl {
                write_sysctl(&proc, key, value)?;
            }
        }
        for path in &linux.masked_paths {
            mask_path(&root, path).with_context(|| format!("linux.maskedPaths {path}"))?;
        }
        for path in &linux.readonly_paths {
            readonly_path(&root, path).with_context(|| format!("linux.readonlyPaths {path}"))?;
        }
        Ok(console)
    }

    fn mount_one(&self, root: &OwnedFd, m: &Mount) -> Result<()> {
        let opts = MountOptions::parse(&m.options)?;
        let kind = m.kind.as_deref().unwrap_or("none");
        if matches!(kind, "proc" | "sysfs") || matches!(m.destination.as_str(), "/proc" | "/sys") {
            refuse_symlink(root, &m.destination)?;
        }
        let is_bind = opts.bind || kind == "bind";
        let dest = Path::new(&m.destination);
        if is_bind && !opts.data.is_empty() {
            // The kernel ignores data for a bind: an option meant to protect
            // the mount would silently do nothing.
            bail!("mount option(s) {:?} of a bind mount are not known", opts.data);
        }
        if is_bind {
            let source = m.source.as_deref().context("bind mount without a source")?;
            let source = self.bundle.join(source);
            let meta = std::fs::metadata(&source).with_context(|| format!("bind source {}", source.display()))?;
            let leaf = if meta.is_dir() { Leaf::Dir } else { Leaf::File };
            let target = ensure_in_root(root, dest, leaf)?;
            let mut flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
            let src = source.to_str().context("bind source is not UTF-8")?;
            mount_at(Some(src), &fd_path(&target), None, flags, None, &|| {
                format!("bind mounting {src}")
            })?;
            let rest = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !rest.is_empty() {
                // A bind mount takes flags only on a remount of the new mount,
                // reached by opening the destination again.
                let mounted = open_in_root(root, dest, libc::O_PATH)?;
                flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest | locked_flags(&mounted);
                mount_at(None, &fd_path(&mounted), None, flags, None, &|| {
                    format!("remounting {} with {:?}", m.destination, rest)
                })?;
            }
        } else if kind == "cgroup" {
            self.mount_cgroup(root, dest, &opts)?;
        } else {
            let target = ensure_in_root(root, dest, Leaf::Dir)?;
            let data = opts.data.join(",");
            let data = self.adjust_data(kind, data);
            mount_at(
                Some(m.source.as_deref().unwrap_or(kind)),
                &fd_path(&target),
                Some(kind),
                opts.flags,
                Some(&data).filter(|d| !d.is_empty()).map(|d| d.as_str()),
                &|| format!("mounting {kind} with options {:?}", m.options),
            )?;
        }
        if opts.attr_set != 0 || opts.attr_clr != 0 {
            let mounted = open_in_root(root, dest, libc::O_PATH)?;
            change_attrs_recursive(&mounted, opts.attr_set, opts.attr_clr)
                .with_context(|| format!("setting the recursive options of {:?}", m.options))?;
        }
        if !opts.propagation.is_empty() {
            let mounted = open_in_root(root, dest, libc::O_PATH)?;
            for flag in &opts.propagation {
                mount_at(None, &fd_path(&mounted), None, *flag, None, &|| {
                    format!("setting propagation {flag:?}")
                })?;
            }
        }
        Ok(())
    }

    /// In a user namespace the kernel refuses `gid=5` style options for ids
    /// that are not mapped; runc's template has them, so drop what cannot work.
    fn adjust_data(&self, kind: &str, data: String) -> String {
        if !(self.in_userns && kind == "devpts") {
            return data;
        }
        data.split(',')
            .filter(|o| !o.starts_with("gid=") && !o.starts_with("uid="))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// cgroup2 where the host is unified; on v1 (and hybrid) a tmpfs with
    /// each of the host's hierarchies in it (see [`Self::mount_cgroup_v1`]).
    /// Without real privileges the kernel may refuse a cgroup2 mount (always
    /// without a cgroup namespace, as in containerd's default spec under
    /// rootlesskit): then the container's own cgroup (a delegated one) is
    /// bound there, or the host's tree read-only.
    fn mount_cgroup(&self, root: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
        let ro = opts.flags.contains(MsFlags::MS_RDONLY);
        if !crate::cgroups::is_unified_host() {
            return self.mount_cgroup_v1(root, dest, ro || self.unprivileged);
        }
        let target = ensure_in_root(root, dest, Leaf::Dir)?;
        // The superblock is the host's one: "ro" would ask to remount it;
        // it goes on this mount only.
        let flags = opts.flags & !MsFlags::MS_RDONLY;
        match mount(
            Some("cgroup2"),
            fd_path(&target).as_str(),
            Some("cgroup2"),
            flags,
            None::<&str>,
        ) {
            Ok(()) => readonly_mount_if(root, dest, ro),
            Err(e @ (nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY)) if self.unprivileged => {
                let (source, ro) = match &self.own_cgroup {
                    Some(dir) => (dir.as_path(), ro),
                    None => (Path::new("/sys/fs/cgroup"), true),
                };
                log::debug!("mounting cgroup2: {e}: binding {} instead", source.display());
                self.bind_cgroups(root, dest, source, ro)
            }
            Err(e) => Err(e).context("mounting cgroup2"),
        }
    }

    /// The v1 (and hybrid) view runc gives: a tmpfs at `dest` and, for each
    /// hierarchy the host has under /sys/fs/cgroup (named ones and the
    /// hybrid cgroup2 included), the container's own cgroup of it at
    /// `dest/<name>`, nosuid, nodev, noexec, read-only if `ro`; co-mounted
    /// controllers get symlinks (cpu -> cpu,cpuacct). The init is in its
    /// cgroups by now, so /proc/self/cgroup names them (see
    /// [`Hierarchy::own_dir`]). In a cgroup namespace whose root is the
    /// container's cgroup, it cannot say where that is on the host: the
    /// hierarchy is mounted afresh, which the kernel roots at the namespace's
    /// cgroup.
    fn mount_cgroup_v1(&self, root: &OwnedFd, dest: &Path, ro: bool) -> Result<()> {
        let hierarchies = host_cgroup_hierarchies()?;
        let cgroupns = self
            .spec
            .linux()
            .namespaces
            .iter()
            .any(|n| matches!(n.kind, crate::spec::NamespaceType::Cgroup));
        let target = ensure_in_root(root, dest, Leaf::Dir)?;
        mount_at(
            Some("tmpfs"),
            &fd_path(&target),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=755"),
            &|| "mounting a tmpfs for the cgroup hierarchies".into(),
        )?;
        let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        if ro {
            attrs |= MOUNT_ATTR_RDONLY;
        }
        for h in &hierarchies {
            let sub = dest.join(&h.name);
            let target = ensure_in_root(root, &sub, Leaf::Dir)?;
            let source = match (h.own_dir(), cgroupns) {
                (Some(dir), _) => Some(dir),
                (None, false) => Some(h.mount_point.clone()),
                (None, true) => None,
            };
            let source = match source {
                Some(source) => source,
                None => match h.fresh_mount(&fd_path(&target)) {
                    Ok(()) => PathBuf::new(),
                    Err(e) => {
                        log::debug!(
                            "mounting {} in the cgroup namespace: {e}: binding its root read-only",
                            h.name
                        );
                        attrs |= MOUNT_ATTR_RDONLY;
                        h.mount_point.clone()
                    }
                },
            };
            if !source.as_os_str().is_empty() {
                let src = source.to_str().context("cgroup path is not UTF-8")?;
                mount_at(
                    Some(src),
                    &fd_path(&target),
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                    &|| format!("binding {src}"),
                )?;
            }
            let mounted = open_in_root(root, &sub, libc::O_PATH | libc::O_DIRECTORY)?;
            set_attr_recursive(&mounted, attrs)
                .with_context(|| format!("setting the attributes of {}", sub.display()))?;
        }
        let dir = open_in_root(root, dest, libc::O_PATH | libc::O_DIRECTORY)?;
        for h in hierarchies.iter().filter(|h| h.name.contains(',')) {
            for part in h.name.split(',') {
                match nix::unistd::symlinkat(h.name.as_str(), Some(dir.as_raw_fd()), part) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e).with_context(|| format!("symlink {}/{part}", dest.display())),
                }
            }
        }
        readonly_mount_if(root, dest, ro)
    }

    /// `source` (the host's /sys/fs/cgroup or a cgroup in it), recursively,
    /// at `dest`, nosuid, nodev, noexec and read-only if `ro`.
    fn bind_cgroups(&self, root: &OwnedFd, dest: &Path, source: &Path, ro: bool) -> Result<()> {
        let target = ensure_in_root(root, dest, Leaf::Dir)?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        let src = source.to_str().context("cgroup path is not UTF-8")?;
        mount_at(Some(src), &fd_path(&target), None, flags, None, &|| {
            format!("binding {src}")
        })?;
        let mounted = open_in_root(root, dest, libc::O_PATH)?;
        let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        if ro {
            attrs |= MOUNT_ATTR_RDONLY;
        }
        set_attr_recursive(&mounted, attrs).with_context(|| format!("setting the attributes of the bound {src}"))
    }

    fn create_devices(&self, root: &OwnedFd) -> Result<()> {
        let defaults = [
            ("/dev/null", 1, 3),
            ("/dev/zero", 1, 5),
            ("/dev/full", 1, 7),
            ("/dev/random", 1, 8),
            ("/dev/urandom", 1, 9),
            ("/dev/tty", 5, 0),
        ];
        let mut devices: Vec<Device> = defaults
            .iter()
            .map(|(path, major, minor)| Device {
                kind: "c".into(),
                path: path.to_string(),
                major: *major,
                minor: *minor,
                file_mode: Some(0o666),
                uid: Some(0),
                gid: Some(0),
            })
            .collect();
        for d in &self.spec.linux().devices {
            devices.retain(|x| x.path != d.path);
            devices.push(d.clone());
        }
        for d in &devices {
            self.create_device(root, d)
                .with_context(|| format!("creating device {}", d.path))?;
        }
        Ok(())
    }

    fn create_device(&self, root: &OwnedFd, d: &Device) -> Result<()> {
        let path = Path::new(&d.path);
        let parent = ensure_in_root(root, path.parent().unwrap_or(Path::new("/dev")), Leaf::Dir)?;
        let name = path.file_name().context("device path has no name")?;
        let kind = device_kind(&d.kind)?;
        let mode = Mode::from_bits_truncate(d.file_mode.unwrap_or(0o666) & 0o7777);
        let dev = nix::sys::stat::makedev(d.major as u64, d.minor as u64);
        let _ = nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        let parent_path = fd_path(&parent);
        let full = Path::new(&parent_path).join(name);
        if self.unprivileged {
            // mknod is not allowed in a user namespace: bind the host's node.
            let target = ensure_in_root(root, path, Leaf::File)?;
            return mount_at(
                Some(d.path.as_str()),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND,
                None,
                &|| format!("binding host {}", d.path),
            );
        }
        mknod(&full, kind, mode, dev).with_context(|| format!("mknod {}", d.path))?;
        // mknod applies the umask; set the mode the config asked for.
        nix::sys::stat::fchmodat(
            Some(parent.as_raw_fd()),
            name,
            mode,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .ok();
        nix::unistd::fchownat(
            Some(parent.as_raw_fd()),
            name,
            d.uid.map(nix::unistd::Uid::from_raw),
            d.gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .with_context(|| format!("chown {}", d.path))?;
        Ok(())
    }
}

/// One cgroup hierarchy mounted at /sys/fs/cgroup/<name> on the host.
#[derive(Debug, PartialEq)]
struct Hierarchy {
    /// The mount point's last component: "memory", "cpu,cpuacct", "systemd".
    name: String,
    mount_point: PathBuf,
    /// The cgroup the mount shows at its root (mountinfo's root field).
    mount_root: PathBuf,
    /// cgroup2 (a hybrid host's unified hierarchy).
    v2: bool,
    /// The controllers and name= of a v1 hierarchy, as mount options.
    options: Vec<String>,
    /// The calling process's cgroup in it, from /proc/self/cgroup.
    own: Option<PathBuf>,
}

impl Hierarchy {
    /// The directory on the host of the process's own cgroup here, if the
    /// mount shows it. /proc/self/cgroup and mountinfo's root both name
    /// cgroups relative to the reader's cgroup namespace root, so the part
    /// of the one below the other is a path in the mount either way. In a
    /// cgroup namespace rooted at the container's cgroup (own is "/", the
    /// mount root "/.." or more), the mount does not show where it is.
    fn own_dir(&self) -> Option<PathBuf> {
        let rel = self.own.as_deref()?.strip_prefix(&self.mount_root).ok()?;
        if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return None;
        }
        Some(self.mount_point.join(rel))
    }

    /// A new mount of the hierarchy at `target` (in a cgroup namespace: the
    /// kernel roots it at the namespace's cgroup). nosuid, nodev and noexec;
    /// "ro" is set on the mount afterwards, the superblock being the host's.
    fn fresh_mount(&self, target: &str) -> nix::Result<()> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if self.v2 {
            return mount(Some("cgroup2"), target, Some("cgroup2"), flags, None::<&str>);
        }
        let data = self.options.join(",");
        let source = if data == "name=systemd" { "systemd" } else { "cgroup" };
        mount(Some(source), target, Some("cgroup"), flags, Some(data.as_str()))
    }
}

/// The cgroup hierarchies mounted directly under /sys/fs/cgroup on the host
/// (a v1 or hybrid one), with the calling process's cgroup in each.
fn host_cgroup_hierarchies() -> Result<Vec<Hierarchy>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    Ok(parse_cgroup_hierarchies(&mountinfo, &own))
}

/// Mount options that say nothing about which hierarchy a cgroup v1 mount is.
fn is_generic_cgroup_option(o: &str) -> bool {
    matches!(
        o,
        "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "relatime" | "xattr" | "clone_children" | "noprefix"
    ) || o.starts_with("release_agent=")
        || o.starts_with("cpuset_v2_mode")
}

fn parse_cgroup_hierarchies(mountinfo: &str, own: &str) -> Vec<Hierarchy> {
    // "id:controllers:path" lines; the cgroup2 one has no controllers.
    let own: Vec<(Vec<&str>, &str)> = own
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, list, path) = (p.next()?, p.next()?, p.next()?);
            Some((list.split(',').filter(|c| !c.is_empty()).collect(), path))
        })
        .collect();
    let mut out: Vec<Hierarchy> = vec![];
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split_whitespace().collect();
        let right: Vec<&str> = right.split_whitespace().collect();
        let (Some(mount_root), Some(mount_point), Some(fstype)) = (left.get(3), left.get(4), right.first()) else {
            continue;
        };
        let v2 = match *fstype {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let mount_point = Path::new(mount_point);
        if mount_point.parent() != Some(Path::new("/sys/fs/cgroup")) {
            continue;
        }
        let Some(name) = mount_point.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let options: Vec<String> = match v2 {
            true => vec![],
            false => right
                .get(2)
                .unwrap_or(&"")
                .split(',')
                .filter(|o| !is_generic_cgroup_option(o))
                .map(String::from)
                .collect(),
        };
        if !v2 && options.is_empty() {
            continue;
        }
        // A hierarchy mounted twice here is shown once.
        if out
            .iter()
            .any(|h| h.name == name || (h.v2 == v2 && h.options == options))
        {
            continue;
        }
        let own = own
            .iter()
            .find(|(list, _)| match v2 {
                true => list.is_empty(),
                false => !list.is_empty() && list.iter().all(|c| options.iter().any(|o| o == c)),
            })
            .map(|(_, path)| PathBuf::from(path));
        out.push(Hierarchy {
            name: name.to_string(),
            mount_point: mount_point.to_path_buf(),
            mount_root: PathBuf::from(mount_root),
            v2,
            options,
            own,
        });
    }
    out
}

/// Makes the mount at `dest` (not its superblock) read-only when `ro`.
fn readonly_mount_if(root: &OwnedFd, dest: &Path, ro: bool) -> Result<()> {
    if !ro {
        return Ok(());
    }
    let mounted = open_in_root(root, dest, libc::O_PATH)?;
    set_attr_recursive(&mounted, MOUNT_ATTR_RDONLY).with_context(|| format!("making {} read-only", dest.display()))
}

/// mount_setattr(AT_RECURSIVE): sets `attrs` on a mount and everything under it.
pub(crate) fn set_attr_recursive(fd: &OwnedFd, attrs: u64) -> Result<()> {
    change_attrs_recursive(fd, attrs, 0)
}

/// mount_setattr(AT_RECURSIVE) with bits to set and bits to clear.
fn change_attrs_recursive(fd: &OwnedFd, set: u64, clear: u64) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    let flags = libc::AT_EMPTY_PATH | libc::AT_RECURSIVE;
    // SAFETY: attr and the empty path outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("mount_setattr");
    }
    Ok(())
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// CVE-2023-25809: in a user namespace, cgroup v1 hierarchies (and the tmpfs
/// holding them) can only come from the host, by a bind of /sys/fs/cgroup or
/// of /sys. The container's root is a host user who may own some of them (a
/// delegated subtree) that the container was not given: whatever the config
/// asked, they are read-only.
fn readonly_host_cgroups(root: &OwnedFd) -> Result<()> {
    let path = Path::new("/sys/fs/cgroup");
    let fd = match open_in_root(root, path, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(e).context("opening /sys/fs/cgroup in the rootfs"),
    };
    let kind = nix::sys::statfs::fstatfs(&fd)
        .context("fstatfs /sys/fs/cgroup in the rootfs")?
        .filesystem_type()
        .0;
    if !(kind == TMPFS_MAGIC || kind == CGROUP_SUPER_MAGIC) || !crate::safe_path::is_mount_root(&fd)? {
        return Ok(());
    }
    log::debug!("the host's cgroup hierarchies are read-only in a user namespace");
    set_attr_recursive(&fd, MOUNT_ATTR_RDONLY).context("making the host's /sys/fs/cgroup read-only (user namespace)")
}

/// /proc and /sys must be real directories in the rootfs: a symlink there
/// would put procfs somewhere the masked paths do not cover (CVE-2023-27561).
fn refuse_symlink(root: &OwnedFd, dest: &str) -> Result<()> {
    let name = dest.trim_start_matches('/');
    if let Ok(st) = nix::sys::stat::fstatat(Some(root.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            bail!("{dest} in the rootfs is a symlink: refusing to mount there");
        }
    }
    Ok(())
}

/// pivot_root refuses a new root whose parent mount is shared (as it is
/// with rootfsPropagation shared/rshared): make just that mount private.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let parent = mountinfo
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let point = f.nth(4)?;
            let shared = l
                .split(" - ")
                .next()?
                .split(' ')
                .skip(6)
                .any(|o| o.starts_with("shared:"));
            rootfs.starts_with(point).then_some((point.to_string(), shared))
        })
        .max_by_key(|(point, _)| point.len());
    if let Some((point, true)) = parent {
        mount_at(None, &point, None, MsFlags::MS_PRIVATE, None, &|| {
            format!("making {point} private")
        })?;
    }
    Ok(())
}

/// Flags the kernel locks on a mount and that a bind remount must keep.
fn locked_flags(fd: &OwnedFd) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::fstatvfs(fd) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

fn create_dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev = ensure_in_root(root, Path::new("/dev"), Leaf::Dir)?;
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    for (target, name) in links {
        let _ = nix::unistd::unlinkat(Some(dev.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name).with_context(|| format!("symlink /dev/{name}"))?;
    }
    if Path::new("/proc/kcore").exists() {
        let _ = nix::unistd::symlinkat("/proc/kcore", Some(dev.as_raw_fd()), "core");
    }
    Ok(())
}

/// A pty from the container's devpts; the slave is bound over /dev/console.
fn open_console(root: &OwnedFd) -> Result<Console> {
    let master = open_in_root(root, Path::new("/dev/pts/ptmx"), libc::O_RDWR | libc::O_NOCTTY)
        .or_else(|_| open_in_root(root, Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY))
        .context("opening the container's /dev/pts/ptmx (is devpts mounted?)")?;
    let pty = pty_pair(master)?;
    // A planted /dev/console symlink would carry the pty mount elsewhere
    // (CVE-2025-52565).
    refuse_symlink(root, "/dev/console")?;
    let console = ensure_in_root(root, Path::new("/dev/console"), Leaf::File)?;
    mount_at(
        Some(&fd_path(&pty.slave)),
        &fd_path(&console),
        None,
        MsFlags::MS_BIND,
        None,
        &|| "binding the pty over /dev/console".into(),
    )?;
    Ok(pty)
}

/// Unlocks a ptmx fd and opens its slave through it (TIOCGPTPEER), so the
/// slave is certainly the one of this devpts instance.
pub fn pty_pair(master: OwnedFd) -> Result<Console> {
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on a pty master we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(std::io::Error::last_os_error()).context("unlocking the pty");
    }
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(std::io::Error::last_os_error()).context("opening the pty slave (TIOCGPTPEER)");
    }
    // SAFETY: a fresh fd returned by the kernel.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    Ok(Console { master, slave })
}

/// Writes one sysctl below the container's procfs root (`open_proc_root`).
fn write_sysctl(proc: &OwnedFd, key: &str, value: &str) -> Result<()> {
    let rel = Path::new("sys").join(key.replace('.', "/"));
    crate::safe_path::write_proc_file(proc, &rel, libc::O_TRUNC, value).with_context(|| format!("linux.sysctl {key}"))
}

fn mask_path(root: &OwnedFd, path: &str) -> Result<()> {
    let target = match open_in_root(root, Path::new(path), libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).context("opening"),
    };
    let st = nix::sys::stat::fstat(target.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount_at(
            Some("tmpfs"),
            &fd_path(&target),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
            &|| "mounting an empty tmpfs".into(),
        )
    } else {
        let null = open_in_root(root, Path::new("/dev/null"), libc::O_PATH).context("opening /dev/null")?;
        let nst = nix::sys::stat::fstat(null.as_raw_fd())?;
        if nst.st_mode & libc::S_IFMT != libc::S_IFCHR || nst.st_rdev != nix::sys::stat::makedev(1, 3) {
            bail!("/dev/null in the container is not the 1:3 character device");
        }
        mount_at(
            Some(&fd_path(&null)),
            &fd_path(&target),
            None,
            MsFlags::MS_BIND,
            None,
            &|| "binding /dev/null".into(),
        )
    }
}

fn readonly_path(root: &OwnedFd, path: &str) -> Result<()> {
    let target = match open_in_root(root, Path::new(path), libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).context("opening"),
    };
    let p = fd_path(&target);
    mount_at(Some(&p), &p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None, &|| {
        "binding".into()
    })?;
    let mounted = open_in_root(root, Path::new(path), libc::O_PATH)?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&mounted);
    mount_at(None, &fd_path(&mounted), None, flags, None, &|| {
        "remounting read-only".into()
    })
}

/// Makes the rootfs `/`: pivot_root, or MS_MOVE + chroot with --no-pivot.
pub fn enter_rootfs(rootfs: &Path, no_pivot: bool, own_mount_ns: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    if !own_mount_ns {
        // The runtime's mount table is the host's: neither pivot_root nor a
        // move may touch it.
        nix::unistd::chroot(".").context("chroot")?;
    } else if no_pivot {
        mount_at(Some("."), "/", None, MsFlags::MS_MOVE, None, &|| {
            "moving the rootfs to /".into()
        })?;
        nix::unistd::chroot(".").context("chroot")?;
    } else {
        let old_root = crate::safe_path::open_dir(Path::new("/"))?;
        nix::unistd::pivot_root(".", ".").context("pivot_root")?;
        // The old root is now stacked under "."; detach it without
        // propagating the unmount to the host.
        nix::unistd::fchdir(old_root.as_raw_fd()).context("fchdir old root")?;
        mount_at(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None, &|| {
            "making the old root a slave".into()
        })?;
        umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    }
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// linux.rootfsPropagation for the container's `/`: only possible once the
/// rootfs is `/`.
pub fn apply_root_propagation(spec: &Spec) -> Result<()> {
    let Some(name) = &spec.linux().rootfs_propagation else {
        return Ok(());
    };
    let flag = propagation_flag(name)?;
    mount_at(None, "/", None, flag, None, &|| {
        format!("setting rootfsPropagation {name} on /")
    })
}

/// The mount points at or below `dir` in our mount table, in the order they
/// were mounted (mountinfo's), `\040`-style escapes undone.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect())
}

fn unescape_mountinfo(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|o| std::str::from_utf8(o).ok())
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches `mounts` (the ones a container without a mount namespace made
/// in ours), the last made first; one that is gone already is no error.
pub fn unmount_all(mounts: &[PathBuf]) {
    for m in mounts.iter().rev() {
        if let Err(e) = umount2(m, MntFlags::MNT_DETACH) {
            if e != nix::errno::Errno::EINVAL && e != nix::errno::Errno::ENOENT {
                log::warn!("unmounting {}: {e}", m.display());
            }
        }
    }
}

/// Remounts `/` read-only (root.readonly), after everything else is mounted.
pub fn make_root_readonly() -> Result<()> {
    let root = crate::safe_path::open_dir(Path::new("/"))?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&root);
    mount_at(None, "/", None, flags, None, &|| "remounting / read-only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        MountOptions::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_split() {
        let o = opts(&["nosuid", "noexec", "mode=755", "size=65536k", "rslave", "ro"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        assert_eq!(opts(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(opts(&["nosuid", "suid"]).flags, MsFlags::empty());
    }

    #[test]
    fn rbind_is_recursive_bind() {
        let o = opts(&["rbind", "ro"]);
        assert!(o.bind);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
    }

    #[test]
    fn every_known_option_has_a_meaning() {
        for o in known_options() {
            assert!(opts(&[o]).data.is_empty(), "{o} would go to the filesystem as data");
        }
        assert_eq!(opts(&["size=1m"]).data, vec!["size=1m"]);
    }

    #[test]
    fn recursive_options_set_and_clear_attributes() {
        let o = opts(&["rbind", "rro", "rnosuid", "rnoexec", "rdev"]);
        assert_eq!(o.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        assert_eq!(o.attr_clr, MOUNT_ATTR_NODEV);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        let later = opts(&["rro", "rrw"]);
        assert_eq!((later.attr_set, later.attr_clr), (0, MOUNT_ATTR_RDONLY));
        // An access-time choice replaces the whole field.
        let atime = opts(&["rnoatime"]);
        assert_eq!(
            (atime.attr_set, atime.attr_clr),
            (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK)
        );
        assert_eq!(opts(&["nosymfollow"]).flags, MS_NOSYMFOLLOW);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b/c\\011d"), "/a b/c\td");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn idmap_is_refused_until_supported() {
        let e = MountOptions::parse(&["rbind".into(), "idmap".into()]).unwrap_err();
        assert!(e.to_string().contains("idmap"), "{e}");
    }

    #[test]
    fn cgroup_hierarchies_and_own_dirs() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 /../.. /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
43 23 0:32 / /mnt/memory rw,relatime - cgroup cgroup rw,memory
";
        let own = "9:name=systemd:/a/c\n8:pids:/../../x/c\n4:memory:/a/c\n2:cpu,cpuacct:/\n0::/a/c\n";
        let h = parse_cgroup_hierarchies(mountinfo, own);
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory", "systemd", "unified", "pids"]);
        assert_eq!(h[0].options, ["cpu", "cpuacct"]);
        assert_eq!(h[0].own_dir().unwrap(), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[1].own_dir().unwrap(), Path::new("/sys/fs/cgroup/memory/a/c"));
        assert_eq!(h[2].options, ["name=systemd"]);
        assert_eq!(h[2].own_dir().unwrap(), Path::new("/sys/fs/cgroup/systemd/a/c"));
        assert!(h[3].v2);
        assert_eq!(h[3].own_dir().unwrap(), Path::new("/sys/fs/cgroup/unified/a/c"));
        // Seen from a cgroup namespace two levels down.
        assert_eq!(h[4].own_dir().unwrap(), Path::new("/sys/fs/cgroup/pids/x/c"));
        let in_ns = parse_cgroup_hierarchies(mountinfo, "8:pids:/\n");
        assert_eq!(in_ns[4].own_dir(), None);
        assert_eq!(in_ns[1].own_dir(), None, "no line for memory");
    }

    #[test]
    fn device_types() {
        assert_eq!(device_kind("c").unwrap(), SFlag::S_IFCHR);
        assert_eq!(device_kind("b").unwrap(), SFlag::S_IFBLK);
        assert!(device_kind("x").is_err());
    }
}
