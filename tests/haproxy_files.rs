//! Configurations in several files, environment variables and `.if` blocks, each run under
//! warren and under Debian's `haproxy`, which is the reference.

mod common;

use std::net::SocketAddr;

use common::both::{check, dash_f, tempdir, write_files, Proxy, Running};
use common::*;

const GLOBAL: &str = "global\n    maxconn 100\n";
const DEFAULTS: &str = "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n";

fn listen(port: u16, server: SocketAddr) -> String {
    format!("listen fe\n    bind 127.0.0.1:{port}\n    server s1 {server}\n")
}

#[test]
fn several_files_are_one_configuration_and_errors_name_their_file_and_line() {
    let dir = tempdir("files");
    let files = write_files(
        &dir,
        &[
            ("a.cfg", &format!("{GLOBAL}{DEFAULTS}")),
            (
                "b.cfg",
                &format!(
                    "listen fe\n    bind 127.0.0.1:{}\n    wieght 3\n    server s1 127.0.0.1:1\n",
                    free_port()
                ),
            ),
        ],
    );
    for proxy in Proxy::BOTH {
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(!c.valid, "{proxy:?}:\n{}", c.output);
        let place = match proxy {
            Proxy::Warren => format!("{}:3:", files[1].display()),
            Proxy::Haproxy => format!("{}:3]", files[1].display()),
        };
        assert!(c.output.contains(&place), "{proxy:?}:\n{}", c.output);
    }
    // The same two files without the mistake: valid, and the second file's proxy got the
    // first file's defaults (no warning about missing timeouts).
    std::fs::write(
        &files[1],
        listen(free_port(), "127.0.0.1:1".parse().expect("addr")),
    )
    .expect("write");
    for proxy in Proxy::BOTH {
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(c.valid, "{proxy:?}:\n{}", c.output);
        assert!(!c.output.contains("timeout"), "{proxy:?}:\n{}", c.output);
    }
}

#[test]
fn each_file_starts_outside_any_section() {
    let dir = tempdir("files");
    let files = write_files(
        &dir,
        &[
            (
                "a.cfg",
                &format!("{DEFAULTS}listen fe\n    bind 127.0.0.1:{}\n", free_port()),
            ),
            ("b.cfg", "    server s1 127.0.0.1:1\n"),
        ],
    );
    for proxy in Proxy::BOTH {
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(!c.valid, "{proxy:?}:\n{}", c.output);
        assert!(
            c.output.contains(&format!("{}:1", files[1].display())),
            "{proxy:?}:\n{}",
            c.output
        );
    }
}

#[test]
fn a_directory_gives_its_cfg_files_in_lexical_order() {
    let dir = tempdir("confd");
    let named = format!("defaults base\n{}", &DEFAULTS["defaults\n".len()..]);
    let listen = &format!(
        "listen fe from base\n    bind 127.0.0.1:{}\n    server s1 127.0.0.1:1\n",
        free_port()
    );
    write_files(
        &dir,
        &[
            ("10-defaults.cfg", &named),
            ("20-listen.cfg", listen),
            ("notes.txt", "not a configuration\n"),
            (".old.cfg", "not a configuration either\n"),
        ],
    );
    let reversed = tempdir("confd");
    write_files(
        &reversed,
        &[("10-listen.cfg", listen), ("20-defaults.cfg", &named)],
    );
    for proxy in Proxy::BOTH {
        let c = check(proxy, &dash_f(std::slice::from_ref(&dir)), &[]);
        assert!(c.valid, "{proxy:?}:\n{}", c.output);
        // In the other order the listen section names defaults that come after it.
        let c = check(proxy, &dash_f(std::slice::from_ref(&reversed)), &[]);
        assert!(!c.valid, "{proxy:?}:\n{}", c.output);
        assert!(
            c.output.contains("10-listen.cfg:1"),
            "{proxy:?}:\n{}",
            c.output
        );
    }
}

#[test]
fn warnings_are_printed_even_when_there_are_errors() {
    let dir = tempdir("files");
    let files = write_files(
        &dir,
        &[
            (
                "a.cfg",
                &format!("{DEFAULTS}backend be0\n    maxconn 10\n    server s1 127.0.0.1:1\n"),
            ),
            ("b.cfg", "backend be\n    balance roundrobbin\n"),
        ],
    );
    for proxy in Proxy::BOTH {
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(!c.valid, "{proxy:?}:\n{}", c.output);
        assert!(
            c.output.contains("WARNING") && c.output.contains("a.cfg:7"),
            "{proxy:?}:\n{}",
            c.output
        );
        assert!(
            c.output.contains(&format!("{}:2", files[1].display())),
            "{proxy:?}:\n{}",
            c.output
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_flow_through_a_configuration_in_two_files() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let dir = tempdir("files");
        let port = free_port();
        let files = write_files(
            &dir,
            &[
                ("a.cfg", &format!("{GLOBAL}{DEFAULTS}")),
                ("b.cfg", &listen(port, a.addr)),
            ],
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(addr).await;
        assert_eq!(which_backend(addr).await.1, "a", "{proxy:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_every_file() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    let dir = tempdir("files");
    let port = free_port();
    let files = write_files(
        &dir,
        &[
            ("a.cfg", &format!("{GLOBAL}{DEFAULTS}")),
            ("b.cfg", &listen(port, a.addr)),
        ],
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut p = Running::start(Proxy::Warren, &dash_f(&files), &[]);
    p.wait_line("started with");
    assert_eq!(which_backend(addr).await.1, "a");
    std::fs::write(&files[1], listen(port, b.addr)).expect("write");
    p.signal(libc::SIGHUP);
    p.wait_line("configuration reloaded");
    assert_eq!(which_backend(addr).await.1, "b");
    // A mistake in the second file: named on reload, and the old configuration serves.
    std::fs::write(&files[1], "listen fe\n    bind 127.0.0.1:0\n    wieght 1\n").expect("write");
    p.signal(libc::SIGHUP);
    let line = p.wait_line("wieght");
    assert!(
        line.contains(&format!("{}:3:", files[1].display())),
        "{line}"
    );
    assert_eq!(which_backend(addr).await.1, "b");
}

/// The port comes from the environment, `.if` picks the server, `.notice` is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_and_conditions_shape_the_configuration() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    let text = format!(
        "{GLOBAL}{DEFAULTS}listen fe\n    bind \"127.0.0.1:${{FRONT_PORT}}\"\n\
         .if defined(USE_B) && version_atleast(2.4)\n    server s1 {b}\n\
         .elif streq(\"$WHICH\",a)\n    server s1 {a}\n\
         .else\n.alert \"set USE_B or WHICH\"\n.endif\n.notice \"front on $FRONT_PORT\"\n",
        a = a.addr,
        b = b.addr
    );
    let dir = tempdir("env");
    let files = write_files(&dir, &[("env.cfg", &text)]);
    for proxy in Proxy::BOTH {
        for (env_var, value, tag) in [("USE_B", "", "b"), ("WHICH", "a", "a")] {
            let port = free_port().to_string();
            let env = [("FRONT_PORT", port.as_str()), (env_var, value)];
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let mut p = Running::start(proxy, &dash_f(&files), &env);
            p.wait_line(&format!("front on {port}"));
            p.wait_accepting(addr).await;
            assert_eq!(which_backend(addr).await.1, tag, "{proxy:?} {env_var}");
        }
        let c = check(proxy, &dash_f(&files), &[("FRONT_PORT", "1")]);
        assert!(!c.valid, "{proxy:?}:\n{}", c.output);
        assert!(
            c.output.contains("set USE_B or WHICH"),
            "{proxy:?}:\n{}",
            c.output
        );
        assert!(c.output.contains("env.cfg:15"), "{proxy:?}:\n{}", c.output);
    }
}

#[test]
fn preprocessing_mistakes_are_refused_with_their_line() {
    let dir = tempdir("env");
    for (text, line) in [
        // HAProxy reports a block left open at the end of the file.
        (".if 1\nglobal\n", 2),
        ("global\n.endif\n", 2),
        ("global\n.if bogus(1)\n.endif\n", 2),
        ("global\n    maxconn \"${UNCLOSED\"\n", 2),
    ] {
        let files = write_files(&dir, &[("p.cfg", text)]);
        for proxy in Proxy::BOTH {
            let c = check(proxy, &dash_f(&files), &[]);
            assert!(!c.valid, "{proxy:?} {text:?}:\n{}", c.output);
            assert!(
                c.output.contains(&format!("p.cfg:{line}")),
                "{proxy:?} {text:?}:\n{}",
                c.output
            );
        }
    }
}

/// `setenv` in `global` defines a variable for the lines after it, in later files too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setenv_defines_variables_for_later_lines_and_files() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let port = free_port();
        let dir = tempdir("env");
        let files = write_files(
            &dir,
            &[
                (
                    "a.cfg",
                    &format!("global\n    setenv FRONT {port}\n    presetenv FRONT 1\n{DEFAULTS}"),
                ),
                (
                    "b.cfg",
                    &format!(
                        "listen fe\n    bind \"127.0.0.1:${{FRONT}}\"\n    server s1 {}\n",
                        a.addr
                    ),
                ),
            ],
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(addr).await;
        assert_eq!(which_backend(addr).await.1, "a", "{proxy:?}");
    }
}
