//! Any bytes given to the scenario parser yield a scenario or diagnostics, never a
//! panic. Run with `cargo +nightly fuzz run scenario_parse` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lab_scenario::parse(text, "fuzz.toml", std::path::Path::new("/nonexistent"), &[]);
    }
});
