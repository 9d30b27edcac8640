//! cgroup v2 device rules: v2 has no devices.allow, so the rules become a
//! small BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup.
//!
//! The program reads (type, access, major, minor) from the context and walks
//! the rules last to first; the first that matches decides, so the last
//! matching rule wins, as with v1's lists. Nothing matching means deny.

use crate::resources::DeviceRule;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes (BPF_CLASS | BPF_OP | BPF_SRC / BPF_SIZE | BPF_MODE).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// Registers after the prologue: r2 type, r3 access, r4 major, r5 minor.
fn prologue() -> Vec<Insn> {
    vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ]
}

fn access_mask(access: &str) -> Result<i32> {
    access.chars().try_fold(0, |m, c| {
        Ok(m | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => bail!("device access {other:?}: expected r, w or m"),
        })
    })
}

/// One rule: its tests jump past the block when they fail.
fn rule_block(rule: &DeviceRule) -> Result<Vec<Insn>> {
    // Each test is (opcode, register, immediate, source register); the jump
    // offsets are filled in once the block's length is known.
    let mut tests: Vec<Vec<Insn>> = vec![];
    match rule.kind.as_deref().unwrap_or("a") {
        "a" => {}
        "b" => tests.push(vec![insn(JNE_K, 2, 0, 0, DEV_BLOCK)]),
        "c" => tests.push(vec![insn(JNE_K, 2, 0, 0, DEV_CHAR)]),
        other => bail!("device rule type {other:?}: expected a, b or c"),
    }
    let mask = access_mask(rule.access.as_deref().unwrap_or("rwm"))?;
    if mask != ACC_READ | ACC_WRITE | ACC_MKNOD {
        // Every requested access bit must be in the rule's mask.
        tests.push(vec![
            insn(MOV32_X, 1, 3, 0, 0),
            insn(AND32_K, 1, 0, 0, mask),
            insn(JNE_X, 1, 3, 0, 0),
        ]);
    }
    if let Some(major) = rule.major.filter(|m| *m >= 0) {
        tests.push(vec![insn(JNE_K, 4, 0, 0, major as i32)]);
    }
    if let Some(minor) = rule.minor.filter(|m| *m >= 0) {
        tests.push(vec![insn(JNE_K, 5, 0, 0, minor as i32)]);
    }
    let mut block: Vec<Insn> = tests.into_iter().flatten().collect();
    block.push(insn(MOV64_K, 0, 0, 0, rule.allow as i32));
    block.push(insn(EXIT, 0, 0, 0, 0));
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        if ins.code == JNE_K || ins.code == JNE_X {
            ins.off = (len - i - 1) as i16;
        }
    }
    Ok(block)
}

/// The whole program for `rules` in OCI order (later rules override).
pub fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>> {
    let mut insns = prologue();
    for rule in rules.iter().rev() {
        let block = rule_block(rule)?;
        let matches_all = block.len() == 2;
        insns.extend(block);
        // The verifier refuses unreachable code: nothing may follow a rule
        // that matches every device.
        if matches_all {
            return Ok(insns);
        }
    }
    insns.push(insn(MOV64_K, 0, 0, 0, 0));
    insns.push(insn(EXIT, 0, 0, 0, 0));
    Ok(insns)
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &T) -> std::io::Result<i64> {
    // SAFETY: attr is a live, correctly laid out bpf_attr prefix.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const T, std::mem::size_of::<T>()) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Loads the program; the verifier's log is asked for only when loading
/// failed (a log that does not fit fails the load by itself).
fn load_program(insns: &[Insn]) -> Result<i64> {
    let license = c"Apache";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &attr) {
        return Ok(fd);
    }
    let mut log = vec![0u8; 1 << 20];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    bpf(BPF_PROG_LOAD, &attr).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        let last = text
            .trim_end_matches('\0')
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        anyhow::anyhow!("loading the device program: {e}: {last}")
    })
}

/// Loads the program for `rules` and attaches it to the cgroup at `dir`.
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let insns = program(rules)?;
    let prog = load_program(&insns)?;
    // SAFETY: a fresh fd from the kernel.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cgroup = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let attach = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &attach).with_context(|| format!("attaching the device program to {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, kind: &str, major: i64, minor: i64, access: &str) -> DeviceRule {
        DeviceRule {
            allow,
            kind: Some(kind.into()),
            major: Some(major),
            minor: Some(minor),
            access: Some(access.into()),
        }
    }

    #[test]
    fn deny_all_is_prologue_and_deny() {
        let deny_all = DeviceRule {
            allow: false,
            ..Default::default()
        };
        let p = program(std::slice::from_ref(&deny_all)).unwrap();
        // prologue (6) + the deny block (mov, exit); no unreachable default
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], insn(MOV64_K, 0, 0, 0, 0));
        // Rules before a later match-all are unreachable and left out.
        let p = program(&[rule(true, "c", 1, 3, "rwm"), deny_all]).unwrap();
        assert_eq!(p.len(), 8);
    }

    #[test]
    fn jumps_skip_exactly_their_block() {
        let p = program(&[rule(true, "c", 1, 3, "rw")]).unwrap();
        let block = &p[6..p.len() - 2];
        // type test, access test (3), major, minor, mov, exit
        assert_eq!(block.len(), 8);
        for (i, ins) in block.iter().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                assert_eq!(
                    i as i16 + ins.off + 1,
                    block.len() as i16,
                    "jump at {i} lands after the block"
                );
            }
        }
        assert_eq!(block[6], insn(MOV64_K, 0, 0, 0, 1));
    }

    #[test]
    fn last_rule_is_checked_first() {
        let p = program(&[rule(true, "c", 1, 3, "rwm"), rule(false, "b", 8, 0, "rwm")]).unwrap();
        assert_eq!(p[6], insn(JNE_K, 2, 0, 4, DEV_BLOCK));
        assert!(access_mask("rx").is_err());
    }
}
