//! Configurations in the spirit of the ones RabbitMQ operators publish (Debian's default
//! file with a RabbitMQ section appended, docker-compose clusters, training labs,
//! configuration-management and OpenStack templates, the management UI in `mode http`,
//! ACL-guarded brokers), kept in `tests/fixtures/config/wild/`. Each must load under warren
//! unchanged exactly when Debian's `haproxy` accepts it; what the keywords do is tested in
//! the tests of each feature.

mod common;

use common::both::{check, Proxy};

#[test]
fn every_wild_configuration_loads_under_warren_as_under_haproxy() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/wild");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("wild fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "fixtures missing: {files:?}");
    let mut refused = Vec::new();
    for file in &files {
        let args = ["-f".to_string(), file.display().to_string()];
        let haproxy = check(Proxy::Haproxy, &args, &[]);
        assert!(
            haproxy.valid,
            "{} is not a configuration HAProxy accepts:\n{}",
            file.display(),
            haproxy.output
        );
        let warren = check(Proxy::Warren, &args, &[]);
        if !warren.valid {
            refused.push(format!("{}:\n{}", file.display(), warren.output));
        }
    }
    assert!(
        refused.is_empty(),
        "warren refused:\n{}",
        refused.join("\n")
    );
}
