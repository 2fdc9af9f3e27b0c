#![no_main]
//! See fuzz/README.md and `rollupd_fuzz::checks::check_alert` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rollupd_fuzz::checks::check_alert(data);
});
