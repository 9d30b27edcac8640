//! process.capabilities: names, and applying the five sets.

use crate::spec::Capabilities;
use anyhow::{bail, Context, Result};

const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability number for a name like `CAP_KILL` (case-insensitive, as runc).
pub fn from_name(name: &str) -> Result<u8> {
    let upper = name.to_ascii_uppercase();
    match NAMES.iter().position(|n| *n == upper) {
        Some(i) => Ok(i as u8),
        None => bail!("unknown capability {name:?}"),
    }
}

/// The name of capability number `cap`.
pub fn name(cap: u8) -> Option<&'static str> {
    NAMES.get(cap as usize).copied()
}

/// A set of capabilities as the kernel's 64-bit mask.
fn mask(names: &[String]) -> Result<u64> {
    names.iter().try_fold(0u64, |m, n| Ok(m | 1u64 << from_name(n)?))
}

fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u8 - 1)
}

/// The masks to apply, computed before the process changes anything.
#[derive(Debug, Clone, Copy)]
pub struct CapSets {
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
}

impl CapSets {
    pub fn new(caps: &Capabilities) -> Result<CapSets> {
        let sets = caps.sets();
        let m = |i: usize| mask(sets[i].1).with_context(|| format!("capabilities.{}", sets[i].0));
        Ok(CapSets {
            bounding: m(0)?,
            effective: m(1)?,
            inheritable: m(2)?,
            permitted: m(3)?,
            ambient: m(4)?,
        })
    }

    /// Drops from the bounding set every capability not in it. Needs
    /// CAP_SETPCAP, so it runs before the user changes.
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in 0..=last_cap() {
            if self.bounding & (1u64 << cap) == 0 {
                // SAFETY: plain prctl with integer arguments.
                let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if rc != 0 {
                    let err = std::io::Error::last_os_error();
                    // EINVAL: the kernel does not know this capability.
                    if err.raw_os_error() != Some(libc::EINVAL) {
                        return Err(err).with_context(|| format!("prctl(PR_CAPBSET_DROP, {})", NAMES[cap as usize]));
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets effective, permitted and inheritable, then raises ambient.
    pub fn apply(&self) -> Result<()> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let split = |m: u64| (m as u32, (m >> 32) as u32);
        let (e0, e1) = split(self.effective);
        let (p0, p1) = split(self.permitted);
        let (i0, i1) = split(self.inheritable);
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let data = [
            Data {
                effective: e0,
                permitted: p0,
                inheritable: i0,
            },
            Data {
                effective: e1,
                permitted: p1,
                inheritable: i1,
            },
        ];
        // SAFETY: header and data have the kernel's v3 layout and live across the call.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("capset");
        }
        // SAFETY: plain prctl calls with integer arguments.
        unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
        for cap in 0..=last_cap() {
            if self.ambient & (1u64 << cap) != 0 {
                // Raising fails unless the cap is also permitted and inheritable;
                // runc's template lists ambient caps without inheritable ones, so
                // that is not an error.
                let rc = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
                if rc != 0 {
                    log::debug!(
                        "ambient {} not raised: {}",
                        NAMES[cap as usize],
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(from_name("CAP_CHOWN").unwrap(), 0);
        assert_eq!(from_name("CAP_SYS_ADMIN").unwrap(), 21);
        assert_eq!(from_name("cap_kill").unwrap(), 5);
        assert_eq!(from_name("CAP_CHECKPOINT_RESTORE").unwrap(), 40);
        assert!(from_name("CAP_FLY").is_err());
    }

    #[test]
    fn masks_combine() {
        let caps = Capabilities {
            bounding: Some(vec!["CAP_KILL".into(), "CAP_CHOWN".into()]),
            ..Default::default()
        };
        let sets = CapSets::new(&caps).unwrap();
        assert_eq!(sets.bounding, 0b100001);
        assert_eq!(sets.effective, 0);
    }
}
