//! What the fuzz targets check, beyond "no panic", kept here so the targets stay one line.

use warren::config::{self, ConfigError, Syntax};

/// Loads `text`; on success the config must survive `warren convert` (print as TOML, load
/// back to the same model, print the same text), on failure every diagnostic must name the
/// file, a line inside it (or 0 for the file as a whole) and say something.
pub fn check_config(text: &str, syntax: Syntax) {
    let lines = text.lines().count();
    match config::load_str(text, "fuzz.cfg", syntax) {
        Ok(loaded) => {
            let toml = config::to_toml(&loaded.config);
            let again = match config::load_str(&toml, "converted.toml", Syntax::Toml) {
                Ok(again) => again,
                Err(e) => panic!("converted config does not load:\n{e}\n--- converted:\n{toml}"),
            };
            assert_eq!(
                loaded.config, again.config,
                "config changed in the round trip:\n{toml}"
            );
            assert_eq!(
                toml,
                config::to_toml(&again.config),
                "converted text is not stable"
            );
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "refused without a reason");
            for d in &diagnostics {
                assert_eq!(d.file, "fuzz.cfg");
                assert!(
                    d.line <= lines.max(1),
                    "line {} of a {lines}-line file: {d}",
                    d.line
                );
                assert!(
                    !d.message.trim().is_empty(),
                    "empty message at line {}",
                    d.line
                );
            }
        }
        Err(e @ ConfigError::Io { .. }) => panic!("load_str read a file: {e}"),
    }
}

/// The fuzz input as the body of a frontend, between fixed sections that give its rules
/// something to name (two backends with servers, a userlist), so every execution is spent on
/// `acl`, `tcp-request`, `use_backend`, `use-server` and condition syntax, not on finding a
/// section header first.
pub fn in_frontend(lines: &str) -> String {
    format!(
        "global\n    maxconn 100\ndefaults\n    mode tcp\n    timeout connect 1s\n    \
         timeout client 1m\n    timeout server 1m\nfrontend fe\n    bind 127.0.0.1:5672\n    \
         default_backend main\n{lines}\nbackend main\n    acl ops src 192.168.10.0/24\n    \
         server n1 127.0.0.1:5673\n    server n2 127.0.0.1:5674\n\
         backend spare\n    server s1 127.0.0.1:5675\n"
    )
}

/// The fuzz input before a fixed listen section: `.if` blocks, `${VAR}` expansion and the
/// `.notice/.warning/.alert` lines it writes reach the sections that follow, as in a real file.
/// The variables `set_fuzz_env` defines give expansion something to find.
pub fn before_listen(text: &str) -> String {
    format!(
        "{text}\nlisten amqp\n    bind \"${{WARREN_FUZZ_ADDR}}:5672\"\n    mode tcp\n    \
         timeout connect 1s\n    timeout client 1m\n    timeout server 1m\n    \
         server n1 127.0.0.1:5673\n"
    )
}

/// Variables for `before_listen`'s inputs: an address, a number, a list and an empty one.
pub fn set_fuzz_env() {
    for (name, value) in [
        ("WARREN_FUZZ_ADDR", "127.0.0.1"),
        ("WARREN_FUZZ_PORT", "5673"),
        ("WARREN_FUZZ_LIST", "a b  c"),
        ("WARREN_FUZZ_EMPTY", ""),
    ] {
        std::env::set_var(name, value);
    }
}
