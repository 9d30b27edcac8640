//! linux.seccomp: the filter compiled with libseccomp and loaded as late as
//! the process allows; a user-notification fd goes to the listener socket.

use crate::spec::{Seccomp, SeccompSyscall};
use anyhow::{bail, Context, Result};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

fn action(name: &str, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno as u16),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        other => bail!("unknown seccomp action {other:?}"),
    })
}

fn compare(arg: &crate::spec::SeccompArg) -> Result<ScmpArgCompare> {
    let (op, datum) = match arg.op.as_str() {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, arg.value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, arg.value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, arg.value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, arg.value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, arg.value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, arg.value),
        // value is the mask, valueTwo what the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(arg.value), arg.value_two),
        other => bail!("unknown seccomp operator {other:?}"),
    };
    if arg.index > 5 {
        bail!("seccomp argument index {} (syscalls have 6 arguments)", arg.index);
    }
    Ok(ScmpArgCompare::new(arg.index, op, datum))
}

/// True when some rule hands syscalls to a user-space agent.
pub fn uses_notify(s: &Seccomp) -> bool {
    s.default_action == "SCMP_ACT_NOTIFY" || s.syscalls.iter().any(|r| r.action == "SCMP_ACT_NOTIFY")
}

/// A compiled filter, built once in the runtime before it forks; the child
/// only loads it.
pub struct Filter {
    ctx: ScmpFilterContext,
    notify: bool,
}

/// Builds the filter; every name in the profile is checked here, so a bad
/// profile fails before anything is made.
pub fn compile(s: &Seccomp) -> Result<Filter> {
    let default = action(&s.default_action, s.default_errno_ret).context("defaultAction")?;
    let mut ctx = ScmpFilterContext::new(default).context("seccomp_init")?;
    // noNewPrivileges is ours to set (or not), not libseccomp's.
    ctx.set_ctl_nnp(false)?;
    for arch in &s.architectures {
        let arch = ScmpArch::from_str(arch).with_context(|| format!("unknown seccomp architecture {arch:?}"))?;
        ctx.add_arch(arch)
            .with_context(|| format!("adding architecture {arch:?}"))?;
    }
    for flag in &s.flags {
        match flag.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => ctx.set_ctl_tsync(true)?,
            "SECCOMP_FILTER_FLAG_LOG" => ctx.set_ctl_log(true)?,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => ctx.set_ctl_ssb(true)?,
            other => bail!("unknown seccomp flag {other:?}"),
        };
    }
    if uses_notify(s) && s.listener_path.as_deref().unwrap_or("").is_empty() {
        bail!("SCMP_ACT_NOTIFY needs listenerPath");
    }
    for (i, rule) in s.syscalls.iter().enumerate() {
        add_rule(&mut ctx, rule, default).with_context(|| format!("syscalls[{i}]"))?;
    }
    Ok(Filter {
        ctx,
        notify: uses_notify(s),
    })
}

fn add_rule(ctx: &mut ScmpFilterContext, rule: &SeccompSyscall, default: ScmpAction) -> Result<()> {
    let act = action(&rule.action, rule.errno_ret)?;
    let conditions = rule.args.iter().map(compare).collect::<Result<Vec<_>>>()?;
    if act == default {
        // libseccomp refuses rules that restate the default: they change nothing.
        return Ok(());
    }
    for name in &rule.names {
        // Profiles name syscalls of every architecture: one this kernel or
        // libseccomp does not know is skipped, as runc does.
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            log::debug!("seccomp: skipping unknown syscall {name:?}");
            continue;
        };
        ctx.add_rule_conditional(act, syscall, &conditions)
            .with_context(|| format!("rule for {name} ({})", rule.action))?;
    }
    Ok(())
}

impl Filter {
    /// Loads the filter into this process; returns the notification fd when
    /// some rule notifies.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        self.ctx.load().context("loading the seccomp filter")?;
        if !self.notify {
            return Ok(None);
        }
        let fd = self.ctx.get_notify_fd().context("seccomp notify fd")?;
        // SAFETY: libseccomp hands over a new fd that stays valid after ctx goes.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error()).context("dup of the seccomp notify fd");
        }
        Ok(Some(unsafe { OwnedFd::from_raw_fd(dup) }))
    }
}

/// Sends the notification fd to linux.seccomp.listenerPath with the
/// container process state, as the runtime spec describes.
pub fn send_to_listener(saved: &crate::state::Saved, fd: &OwnedFd, status: crate::state::Status) -> Result<()> {
    use std::os::fd::AsRawFd;
    let seccomp = saved
        .config
        .linux()
        .seccomp
        .as_ref()
        .context("seccomp fd without linux.seccomp")?;
    let path = seccomp
        .listener_path
        .as_deref()
        .context("linux.seccomp.listenerPath is not set")?;
    let state = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": saved.pid,
        "metadata": seccomp.listener_metadata.clone().unwrap_or_default(),
        "state": saved.oci_state(status),
    });
    let payload = serde_json::to_vec(&state)?;
    crate::sync::send_fd_to(std::path::Path::new(path), &payload, fd.as_raw_fd(), "seccomp listener")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> Seccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn compiles_all_actions_and_operators() {
        let ops = [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ];
        let mut syscalls: Vec<serde_json::Value> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                serde_json::json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1,
                "args": [{"index": 0, "value": 0xff, "valueTwo": 8, "op": op}]})
            })
            .collect();
        // One syscall per action: libseccomp refuses two actions for one rule.
        let actions = [
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_LOG",
            "SCMP_ACT_ALLOW",
        ];
        let targets = ["getpid", "getuid", "getgid", "geteuid", "getegid", "getppid"];
        for (act, name) in actions.iter().zip(targets) {
            let args = serde_json::json!([{"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]);
            syscalls.push(serde_json::json!({"names": [name], "action": act, "args": args}));
        }
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": syscalls}),
        );
        compile(&p).unwrap();
    }

    #[test]
    fn bad_names_are_named() {
        let e = |v| format!("{:#}", compile(&profile(v)).err().unwrap());
        assert!(e(serde_json::json!({"defaultAction": "SCMP_ACT_MAYBE"})).contains("SCMP_ACT_MAYBE"));
        assert!(
            e(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}))
                .contains("SCMP_ARCH_Z80")
        );
        assert!(
            e(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}))
                .contains("FAST")
        );
        let bad_op = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]});
        assert!(e(bad_op).contains("SCMP_CMP_ABOUT"));
        let notify = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]});
        assert!(e(notify).contains("listenerPath"));
    }

    #[test]
    fn unknown_syscalls_are_skipped() {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["no_such_syscall_xyz", "unshare"], "action": "SCMP_ACT_ERRNO"}]}));
        compile(&p).unwrap();
    }
}
