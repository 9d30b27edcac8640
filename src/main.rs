//! containerd-shim-myshim-v2: containerd's shim v2 protocol (task API v2,
//! which containerd 2.x bridges) over the myshim runtime, run in process.

mod events;
mod io;
mod metrics;
mod service;
mod spawner;
mod table;

use std::time::Duration;

fn main() {
    // First, while this process has one thread: see spawner.rs.
    if let Err(e) = spawner::fork_if_serving() {
        eprintln!("containerd-shim-myshim-v2: {e:#}");
        std::process::exit(1);
    }
    // One thread serves ttrpc, reaps children, copies IO and publishes
    // events. The blocking pool is only used while setting up the socket:
    // its threads must not linger beside the containers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_millis(10))
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(containerd_shim::run::<service::Service>(
            "io.containerd.myshim.v2",
            None,
        )),
        Err(e) => {
            eprintln!("containerd-shim-myshim-v2: starting the event loop: {e}");
            std::process::exit(1);
        }
    }
}
