//! config.json loading and validation must never panic, whatever the bytes.
//! Run (as root, from fuzz/; cargo-fuzz wants nightly features, which
//! RUSTC_BOOTSTRAP=1 allows on the stable toolchain):
//!   RUSTC_BOOTSTRAP=1 cargo fuzz run config --target x86_64-unknown-linux-gnu corpus/config
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = myshim_runtime::spec::Spec::parse(data);
});
