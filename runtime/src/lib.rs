//! myshim's OCI runtime as a library: one module per section of the runtime
//! spec, and the lifecycle operations that the `myshim` command and the shim
//! call. `container::create` reads top to bottom down to the init, and
//! `init::container_init` from there to the container's execve.

pub mod capabilities;
pub mod cgroups;
pub mod check;
pub mod container;
pub mod exe_guard;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod process;
pub mod resources;
pub mod rootfs;
pub mod rootless;
pub mod safe_path;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;
pub mod template;
pub mod terminal;
