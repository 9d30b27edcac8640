//! config.json loading and validation must never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = myshim_runtime::spec::Spec::parse(data);
});
