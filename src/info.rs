//! `containerd-shim-myshim-v2 -info`: what containerd 2.x asks a shim
//! before it creates a container that needs a feature (idmapped mounts) and
//! what `ctr plugins inspect-runtime` shows. The runtime Options come on
//! stdin; containerd's RuntimeInfo goes to stdout as protobuf, with
//! `features` what `myshim features` prints.

use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message, MessageField};
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use std::io::{Read, Write};

/// The type containerd's typeurl registry knows the features document by.
const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

fn runtime_info(options: Vec<u8>) -> anyhow::Result<RuntimeInfo> {
    let features = serde_json::to_vec(&myshim_runtime::features::features())?;
    // The options are containerd's own Any; handed back as they came.
    let options = match options.is_empty() {
        true => MessageField::none(),
        false => MessageField::some(Any::parse_from_bytes(&options)?),
    };
    Ok(RuntimeInfo {
        name: "io.containerd.myshim.v2".into(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }),
        options,
        features: MessageField::some(Any {
            type_url: FEATURES_TYPE.into(),
            value: features,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Reads the Options from stdin and prints the RuntimeInfo; the exit code.
pub fn print() -> i32 {
    let mut options = vec![];
    let written = std::io::stdin()
        .read_to_end(&mut options)
        .map_err(anyhow::Error::from)
        .and_then(|_| runtime_info(options))
        .and_then(|info| Ok(info.write_to_bytes()?))
        .and_then(|bytes| Ok(std::io::stdout().write_all(&bytes)?));
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("containerd-shim-myshim-v2 -info: {e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_the_runtimes_and_options_come_back() {
        let options = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        let info = runtime_info(options.write_to_bytes().unwrap()).unwrap();
        assert_eq!(info.name, "io.containerd.myshim.v2");
        assert_eq!(info.options.type_url, "containerd.runc.v1.Options");
        let features: serde_json::Value = serde_json::from_slice(&info.features.value).unwrap();
        assert!(features["mountOptions"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "rro")));
        assert!(runtime_info(vec![]).unwrap().options.is_none());
    }
}
