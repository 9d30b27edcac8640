//! containerd-shim-myshim-v2: containerd's shim v2 protocol over the myshim
//! runtime. The Task service is not written yet; until it is, the binary
//! refuses to run rather than pretend.

fn main() {
    eprintln!(
        "containerd-shim-myshim-v2: the shim's Task service is not implemented yet; use the `myshim` runtime command"
    );
    std::process::exit(1);
}
