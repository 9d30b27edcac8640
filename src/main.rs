//! containerd-shim-myshim-v2: containerd's shim v2 protocol (task API v2,
//! which containerd 2.x bridges) over the myshim runtime, run in process.

mod io;
mod metrics;
mod service;
mod spawner;

fn main() {
    // First, while this process has one thread: see spawner.rs.
    if let Err(e) = spawner::fork_if_serving() {
        eprintln!("containerd-shim-myshim-v2: {e:#}");
        std::process::exit(1);
    }
    containerd_shim::run::<service::Service>("io.containerd.myshim.v2", None);
}
