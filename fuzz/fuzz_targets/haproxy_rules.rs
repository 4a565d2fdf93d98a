//! ACL, condition and rule lines inside a frontend (see `in_frontend`): parse and validate never
//! panic; see `check_config` for the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren::config::Syntax;

fuzz_target!(|data: &[u8]| {
    if let Ok(lines) = std::str::from_utf8(data) {
        warren_fuzz::check_config(&warren_fuzz::in_frontend(lines), Syntax::Haproxy);
    }
});
