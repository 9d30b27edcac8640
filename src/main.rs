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
    // The serving shim (with `-socket`; not `start` or `delete`) clones
    // processes into containers. First, while it has one thread: run from a
    // write-protected image of this binary (CVE-2019-5736), then fork the
    // helper (see spawner.rs).
    if std::env::args().any(|a| a == "-socket" || a == "--socket") {
        let ready = myshim_runtime::exe_guard::ensure_protected_exe().and_then(|_| spawner::fork_helper());
        if let Err(e) = ready {
            eprintln!("containerd-shim-myshim-v2: {e:#}");
            std::process::exit(1);
        }
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
