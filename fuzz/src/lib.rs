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
