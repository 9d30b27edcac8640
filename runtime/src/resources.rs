//! linux.resources: the typed limits that the cgroups code applies.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unified: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rdma: BTreeMap<String, Rdma>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default, rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

impl Rdma {
    /// The rdma.max line for `device` (v1 and v2 share the format).
    pub fn max_line(&self, device: &str) -> String {
        let v = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "max".into());
        format!(
            "{device} hca_handle={} hca_object={}",
            v(self.hca_handles),
            v(self.hca_objects)
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceRule {
    #[serde(default)]
    pub allow: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(default, rename = "disableOOMKiller", skip_serializing_if = "Option::is_none")]
    pub disable_oom_killer: Option<bool>,
    /// v1 only: the kernel's TCP buffer memory limit.
    #[serde(default, rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleReadIOPSDevice", skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleWriteIOPSDevice", skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

impl DeviceRule {
    /// The v1 devices.allow/deny line: `c 1:3 rwm`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<i64>| {
            n.filter(|n| *n >= 0)
                .map(|n| n.to_string())
                .unwrap_or_else(|| "*".into())
        };
        format!(
            "{} {}:{} {}",
            self.kind.as_deref().unwrap_or("a"),
            num(self.major),
            num(self.minor),
            self.access.as_deref().unwrap_or("rwm")
        )
    }
}

/// Devices every container may use whatever its config says, runc's list:
/// mknod of any node, the default nodes, the ptys and their multiplexer,
/// and /dev/net/tun (runc 1.2 dropped it, then had to bring it back).
pub fn default_device_rules() -> Vec<DeviceRule> {
    let rule = |kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| DeviceRule {
        allow: true,
        kind: Some(kind.into()),
        major,
        minor,
        access: Some(access.into()),
    };
    let c = |major: i64, minor: Option<i64>| rule("c", Some(major), minor, "rwm");
    vec![
        rule("c", None, None, "m"),
        rule("b", None, None, "m"),
        c(1, Some(3)),
        c(1, Some(8)),
        c(1, Some(7)),
        c(5, Some(0)),
        c(1, Some(5)),
        c(1, Some(9)),
        c(136, None),
        c(5, Some(2)),
        c(10, Some(200)),
    ]
}

/// The device rules a container gets, in order (later ones override): the
/// config's, then what every container may use. As in runc, the nodes of
/// linux.devices add no rule: access to them is what
/// linux.resources.devices grants (Docker's `--device X:r` is read-only).
pub fn effective_device_rules(config: &[DeviceRule]) -> Vec<DeviceRule> {
    config.iter().cloned().chain(default_device_rules()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_rules_come_first_then_runcs_defaults() {
        let deny_all = DeviceRule {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        };
        let rules = effective_device_rules(std::slice::from_ref(&deny_all));
        assert_eq!(rules.len(), 1 + default_device_rules().len());
        let lines: Vec<String> = rules.iter().map(|r| r.v1_line()).collect();
        assert_eq!(lines[0], "a *:* rwm");
        assert!(
            lines.contains(&"c *:* m".to_string()) && lines.contains(&"c 10:200 rwm".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn parses_spec_names() {
        let r: Resources = serde_json::from_str(
            r#"{"memory": {"limit": 1048576, "disableOOMKiller": true}, "cpu": {"shares": 512, "cpus": "0"},
                "pids": {"limit": 10}, "blockIO": {"weight": 100, "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 5}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 0}], "unified": {"memory.high": "max"},
                "devices": [{"allow": false, "access": "rwm"}]}"#,
        )
        .unwrap();
        assert_eq!(r.memory.unwrap().disable_oom_killer, Some(true));
        assert_eq!(r.block_io.unwrap().throttle_read_iops_device[0].rate, 5);
        assert_eq!(r.devices[0].v1_line(), "a *:* rwm");
        assert_eq!(default_device_rules()[8].v1_line(), "c 136:* rwm");
    }
}
