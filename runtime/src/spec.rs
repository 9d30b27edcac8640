//! config.json: the OCI runtime spec types we act on, loading and validation.
//!
//! Unknown fields are ignored (as runc does); unknown values of fields we act on
//! (a namespace type, a capability, an rlimit) are errors that name the value.

use anyhow::{bail, Context, Result};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub oci_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default = "default_cwd")]
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
    /// Spec fields this runtime does not apply yet: present, they are
    /// refused by name rather than silently not applied.
    #[serde(default, skip_serializing)]
    pub scheduler: Option<IgnoredAny>,
    #[serde(default, rename = "ioPriority", skip_serializing)]
    pub io_priority: Option<IgnoredAny>,
    #[serde(default, rename = "execCPUAffinity", skip_serializing)]
    pub exec_cpu_affinity: Option<IgnoredAny>,
}

fn default_cwd() -> String {
    "/".into()
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Root {
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Idmapped mounts: not applied yet, refused by name.
    #[serde(default, rename = "uidMappings", skip_serializing)]
    pub uid_mappings: Option<IgnoredAny>,
    #[serde(default, rename = "gidMappings", skip_serializing)]
    pub gid_mappings: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hook {
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Namespace>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::resources::Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    /// Not applied yet, refused by name (see [`Process::scheduler`]).
    #[serde(default, skip_serializing)]
    pub personality: Option<IgnoredAny>,
    #[serde(default, rename = "timeOffsets", skip_serializing)]
    pub time_offsets: Option<IgnoredAny>,
    #[serde(default, rename = "memoryPolicy", skip_serializing)]
    pub memory_policy: Option<IgnoredAny>,
    #[serde(default, rename = "netDevices", skip_serializing)]
    pub net_devices: Option<IgnoredAny>,
    #[serde(default, rename = "intelRdt", skip_serializing)]
    pub intel_rdt: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SeccompSyscall>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompSyscall {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SeccompArg>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompArg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceType {
    Pid,
    Network,
    Mount,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: NamespaceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl Spec {
    /// Reads and validates `bundle/config.json`.
    pub fn load(bundle: &Path) -> Result<Spec> {
        if !bundle.is_dir() {
            bail!("bundle {} does not exist or is not a directory", bundle.display());
        }
        let path = bundle.join("config.json");
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let spec = Self::parse(&text).with_context(|| format!("invalid {}", path.display()))?;
        Ok(spec)
    }

    /// Parses and validates config.json text (no filesystem access).
    pub fn parse(text: &[u8]) -> Result<Spec> {
        let spec: Spec = serde_json::from_slice(text)?;
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        let v = &self.oci_version;
        if !(v.starts_with("1.") && v.split('.').count() >= 2) {
            bail!("unsupported ociVersion {v:?}: expected 1.x.y");
        }
        let Some(root) = &self.root else {
            bail!("root: missing (root.path names the rootfs)")
        };
        if root.path.is_empty() {
            bail!("root.path: empty");
        }
        if let Some(process) = &self.process {
            process.validate()?;
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if !m.destination.starts_with('/') {
                bail!("mounts[{i}].destination {:?}: must be an absolute path", m.destination);
            }
            crate::rootfs::MountOptions::parse(&m.options)
                .with_context(|| format!("mounts[{i}] ({})", m.destination))?;
            refuse_unapplied(&[
                ("uidMappings (an idmapped mount)", m.uid_mappings.is_some()),
                ("gidMappings (an idmapped mount)", m.gid_mappings.is_some()),
            ])
            .with_context(|| format!("mounts[{i}] ({})", m.destination))?;
        }
        if let Some(hooks) = &self.hooks {
            hooks.validate()?;
        }
        if let Some(linux) = &self.linux {
            linux.validate()?;
        }
        Ok(())
    }

    pub fn linux(&self) -> &Linux {
        static EMPTY: std::sync::OnceLock<Linux> = std::sync::OnceLock::new();
        self.linux.as_ref().unwrap_or_else(|| EMPTY.get_or_init(Linux::default))
    }

    pub fn process(&self) -> Result<&Process> {
        self.process.as_ref().context("config.json has no process")
    }

    /// The rootfs path, relative paths taken from the bundle.
    pub fn rootfs(&self, bundle: &Path) -> PathBuf {
        let path = Path::new(self.root.as_ref().map(|r| r.path.as_str()).unwrap_or("rootfs"));
        bundle.join(path)
    }

    pub fn hooks(&self) -> Hooks {
        self.hooks.clone().unwrap_or_default()
    }
}

/// Refuses the first of `fields` (name, present) that is present.
fn refuse_unapplied(fields: &[(&str, bool)]) -> Result<()> {
    match fields.iter().find(|(_, present)| *present) {
        Some((name, _)) => bail!("{name}: not supported by this runtime yet (the container would run without it)"),
        None => Ok(()),
    }
}

impl Process {
    pub fn validate(&self) -> Result<()> {
        refuse_unapplied(&[
            ("process.scheduler", self.scheduler.is_some()),
            ("process.ioPriority", self.io_priority.is_some()),
            ("process.execCPUAffinity", self.exec_cpu_affinity.is_some()),
        ])?;
        if self.args.is_empty() {
            bail!("process.args: empty (the container needs a program to run)");
        }
        if !self.cwd.starts_with('/') {
            bail!("process.cwd {:?}: must be an absolute path", self.cwd);
        }
        for e in &self.env {
            if !e.contains('=') {
                bail!("process.env {e:?}: not of the form NAME=value");
            }
        }
        if let Some(caps) = &self.capabilities {
            for (set, names) in caps.sets() {
                for name in names {
                    crate::capabilities::from_name(name).with_context(|| format!("process.capabilities.{set}"))?;
                }
            }
        }
        for r in &self.rlimits {
            crate::process::rlimit_resource(&r.kind)?;
            if r.soft > r.hard {
                bail!("process.rlimits {}: soft {} is above hard {}", r.kind, r.soft, r.hard);
            }
        }
        if self.selinux_label.as_deref().is_some_and(|l| !l.is_empty()) {
            bail!("process.selinuxLabel: SELinux labels are not supported (the process would run unlabelled)");
        }
        Ok(())
    }
}

impl Capabilities {
    /// Every set by its spec name; a missing set is empty.
    pub fn sets(&self) -> [(&'static str, &[String]); 5] {
        fn s(v: &Option<Vec<String>>) -> &[String] {
            v.as_deref().unwrap_or(&[])
        }
        [
            ("bounding", s(&self.bounding)),
            ("effective", s(&self.effective)),
            ("inheritable", s(&self.inheritable)),
            ("permitted", s(&self.permitted)),
            ("ambient", s(&self.ambient)),
        ]
    }
}

impl Hooks {
    pub fn all(&self) -> [(&'static str, &[Hook]); 6] {
        [
            ("prestart", &self.prestart),
            ("createRuntime", &self.create_runtime),
            ("createContainer", &self.create_container),
            ("startContainer", &self.start_container),
            ("poststart", &self.poststart),
            ("poststop", &self.poststop),
        ]
    }

    fn validate(&self) -> Result<()> {
        for (kind, hooks) in self.all() {
            for (i, h) in hooks.iter().enumerate() {
                if !h.path.starts_with('/') {
                    bail!("hooks.{kind}[{i}].path {:?}: must be an absolute path", h.path);
                }
                if matches!(h.timeout, Some(t) if t <= 0) {
                    bail!("hooks.{kind}[{i}].timeout: must be positive");
                }
            }
        }
        Ok(())
    }
}

impl Linux {
    fn validate(&self) -> Result<()> {
        refuse_unapplied(&[
            ("linux.personality", self.personality.is_some()),
            ("linux.timeOffsets", self.time_offsets.is_some()),
            ("linux.memoryPolicy", self.memory_policy.is_some()),
            ("linux.netDevices", self.net_devices.is_some()),
            ("linux.intelRdt", self.intel_rdt.is_some()),
        ])?;
        let mut seen = std::collections::HashSet::new();
        for ns in &self.namespaces {
            if !seen.insert(ns.kind) {
                bail!("linux.namespaces: {:?} listed twice", ns.kind);
            }
        }
        let has_userns = seen.contains(&NamespaceType::User);
        if !has_userns && (!self.uid_mappings.is_empty() || !self.gid_mappings.is_empty()) {
            bail!("linux.uidMappings/gidMappings: set without a user namespace");
        }
        for d in &self.devices {
            crate::rootfs::device_kind(&d.kind).with_context(|| format!("linux.devices {}", d.path))?;
            if !d.path.starts_with("/dev/") {
                bail!("linux.devices {}: path must be under /dev", d.path);
            }
        }
        if let Some(p) = &self.rootfs_propagation {
            crate::rootfs::propagation_flag(p).context("linux.rootfsPropagation")?;
        }
        for key in self.sysctl.keys() {
            if key.is_empty() || key.contains("..") || key.contains('/') {
                bail!("linux.sysctl {key:?}: not a sysctl name");
            }
        }
        Ok(())
    }

    pub fn namespace(&self, kind: NamespaceType) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn parse(v: serde_json::Value) -> Result<Spec> {
        Spec::parse(v.to_string().as_bytes())
    }

    fn err(v: serde_json::Value) -> String {
        format!("{:#}", parse(v).unwrap_err())
    }

    #[test]
    fn accepts_minimal_and_any_1x_version() {
        parse(minimal()).unwrap();
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1"] {
            let mut s = minimal();
            s["ociVersion"] = v.into();
            parse(s).unwrap();
        }
    }

    #[test]
    fn rejects_other_versions() {
        let mut s = minimal();
        s["ociVersion"] = "2.0.0".into();
        assert!(err(s).contains("unsupported ociVersion"));
    }

    #[test]
    fn unknown_namespace_type_is_named() {
        let mut s = minimal();
        s["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}]);
        assert!(err(s).contains("unknown variant `bogus`"));
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let mut s = minimal();
        s["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(err(s).contains("listed twice"));
    }

    #[test]
    fn bad_capability_named() {
        let mut s = minimal();
        s["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOPE"]});
        let e = err(s);
        assert!(e.contains("CAP_NOPE") && e.contains("bounding"), "{e}");
    }

    #[test]
    fn bad_rlimit_named() {
        let mut s = minimal();
        s["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]);
        assert!(err(s).contains("RLIMIT_FOO"));
    }

    #[test]
    fn selinux_label_refused_and_empty_one_accepted() {
        let mut s = minimal();
        s["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into();
        let e = err(s.clone());
        assert!(e.contains("process.selinuxLabel") && e.contains("not supported"), "{e}");
        s["process"]["selinuxLabel"] = "".into();
        parse(s).unwrap();
    }

    #[test]
    fn empty_args_rejected() {
        let mut s = minimal();
        s["process"]["args"] = serde_json::json!([]);
        assert!(err(s).contains("process.args"));
    }

    #[test]
    fn relative_mount_destination_rejected() {
        let mut s = minimal();
        s["mounts"] = serde_json::json!([{"destination": "tmp", "type": "tmpfs"}]);
        assert!(err(s).contains("absolute"));
    }

    #[test]
    fn bad_propagation_rejected() {
        let mut s = minimal();
        s["linux"]["rootfsPropagation"] = "sideways".into();
        assert!(err(s).contains("sideways"));
    }

    #[test]
    fn invalid_json_is_reported() {
        let e = format!("{:#}", Spec::parse(b"{\"ociVersion\": ").unwrap_err());
        assert!(e.contains("EOF"), "{e}");
    }

    #[test]
    fn default_template_round_trips() {
        let spec = crate::template::default_spec(false);
        let text = serde_json::to_vec(&spec).unwrap();
        let back = Spec::parse(&text).unwrap();
        assert_eq!(back.process.unwrap().args, vec!["sh"]);
    }
}
