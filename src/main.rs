//! containerd-shim-myshim-v2: containerd's shim v2 protocol (task API v2,
//! which containerd 2.x bridges) over the myshim runtime, run in process.

mod events;
mod info;
mod io;
mod metrics;
mod service;
mod spawner;
mod table;

use std::time::Duration;

/// Hands the heap's free pages back to the kernel. A shim lives as long as
/// its containers and its peak is the create path (config, state, clone):
/// without this the pages freed after it stay resident in every shim.
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of this process's heap.
    unsafe { libc::malloc_trim(0) };
}

fn main() {
    if std::env::args().skip(1).any(|a| a == "-info" || a == "--info") {
        std::process::exit(info::print());
    }
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
        Ok(runtime) => {
            runtime.block_on(containerd_shim::run::<service::Service>(
                "io.containerd.myshim.v2",
                None,
            ));
            // Not serving any more: the events still queued (a TaskExit from
            // while containerd was down, the last TaskDelete) go out first.
            runtime.block_on(events::drain_before_exit());
        }
        Err(e) => {
            eprintln!("containerd-shim-myshim-v2: starting the event loop: {e}");
            std::process::exit(1);
        }
    }
}
