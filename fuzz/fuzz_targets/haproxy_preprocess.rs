//! `.if` blocks, `${VAR}` expansion and quoting before a fixed section (see `before_listen`):
//! parse and validate never panic; see `check_config` for the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren::config::Syntax;

fuzz_target!(
    init: warren_fuzz::set_fuzz_env(),
    |data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            warren_fuzz::check_config(&warren_fuzz::before_listen(text), Syntax::Haproxy);
        }
    }
);
