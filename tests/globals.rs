//! Globals and proxy options that change behaviour, under warren and under Debian's
//! `haproxy` (the reference): `ulimit-n`, `option log-separate-errors`, `spread-checks`,
//! `max-spread-checks`, `master-worker`, `peers`.

mod common;

use std::net::SocketAddr;

use common::both::{check, dash_f, tempdir, write_files, Proxy, Running};
use common::*;

const DEFAULTS: &str = "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n";

/// Waits until `ready` holds: for facts no event announces (a file a proxy creates, its
/// threads' affinity), polled, bounded by [`common::both::LIMIT`].
async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + common::both::LIMIT;
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within the limit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The soft "Max open files" of a process.
fn open_files_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    line.split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ulimit_n_raises_the_file_descriptor_limit() {
    // Start the proxies under a low limit (children inherit it); ulimit-n raises it.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = 1000;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let port = free_port();
        let cfg = format!(
            "global\n    ulimit-n 1500\n    maxconn 100\n{DEFAULTS}listen fe\n    bind 127.0.0.1:{port}\n    server s1 {}\n",
            a.addr
        );
        let files = write_files(&tempdir("globals"), &[("g.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(([127, 0, 0, 1], port).into()).await;
        assert_eq!(open_files_limit(p.pid()), "1500", "{proxy:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_separate_errors_sends_failed_sessions_at_level_err() {
    let refused = refused_addr().await;
    for proxy in Proxy::BOTH {
        let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let port = free_port();
        let cfg = format!(
            "global\n    log {} local0\n{DEFAULTS}    log global\n    option tcplog\n    option log-separate-errors\n\
             listen fe\n    bind 127.0.0.1:{port}\n    retries 0\n    server s1 {refused}\n",
            syslog.local_addr().expect("addr")
        );
        let files = write_files(&tempdir("globals"), &[("g.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        // The probe connections of wait_accepting are logged too: look for the session
        // whose server refused (termination state SC), whatever came before it.
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = read_to_end(&mut c).await;
        let mut buf = [0u8; 2048];
        let line = loop {
            let n = tokio::time::timeout(common::both::LIMIT, syslog.recv(&mut buf))
                .await
                .expect("a syslog line in time")
                .expect("recv");
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(" SC ") {
                break line;
            }
        };
        // local0 (16) × 8 + err (3)
        assert!(line.starts_with("<131>"), "{proxy:?}: {line}");
    }
}

#[test]
fn check_spreading_and_process_keywords_are_accepted_by_both() {
    let dir = tempdir("globals");
    let port = free_port();
    let cfg = format!(
        "global\n    spread-checks 5\n    max-spread-checks 500ms\n    master-worker\n    ulimit-n 4096\n\
         peers mypeers\n    peer host1 127.0.0.1:10000\n{DEFAULTS}\
         listen fe\n    bind 127.0.0.1:{port}\n    option log-separate-errors\n    server s1 127.0.0.1:1 check\n"
    );
    let files = write_files(&dir, &[("g.cfg", &cfg)]);
    for proxy in Proxy::BOTH {
        let c = check(proxy, &dash_f(&files), &[]);
        assert!(c.valid, "{proxy:?}:\n{}", c.output);
    }
    let c = check(Proxy::Warren, &dash_f(&files), &[]);
    assert!(
        c.output
            .contains("g.cfg:6: the peers section 'mypeers' is accepted but not used"),
        "{}",
        c.output
    );
    assert!(
        c.output.contains("NOTICE") && c.output.contains("master-worker"),
        "{}",
        c.output
    );
    for (bad, fragment) in [
        ("global\n    spread-checks 60\n", "from 0 to 50"),
        ("global\n    ulimit-n many\n", "whole number"),
        (
            "global\n    max-spread-checks 5parsecs\n",
            "max-spread-checks",
        ),
    ] {
        let files = write_files(&dir, &[("bad.cfg", bad)]);
        let c = check(Proxy::Warren, &dash_f(&files), &[]);
        assert!(
            !c.valid && c.output.contains(fragment),
            "{bad}:\n{}",
            c.output
        );
        assert!(c.output.contains("bad.cfg:2"), "{bad}:\n{}", c.output);
    }
}

/// A port free for IPv4 and IPv6 at once (a dual-stack wildcard needs both).
fn free_dual_port() -> u16 {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).expect("socket");
    socket.set_only_v6(false).expect("dual stack");
    socket
        .bind(&SocketAddr::from(([0u16; 8], 0)).into())
        .expect("bind");
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4v6_binds_take_ipv4_clients_and_v6only_binds_do_not() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let (dual, only) = (free_dual_port(), free_dual_port());
        let cfg = format!(
            "{DEFAULTS}listen fe\n    bind :::{dual} v4v6 name dual id 7\n    bind :::{only} v6only\n    server s1 {}\n",
            a.addr
        );
        let files = write_files(&tempdir("globals"), &[("g.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], only)))
            .await;
        p.wait_accepting(([127, 0, 0, 1], dual).into()).await;
        assert_eq!(
            which_backend(([127, 0, 0, 1], dual).into()).await.1,
            "a",
            "{proxy:?}"
        );
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", only)).await;
        assert!(
            refused.is_err(),
            "{proxy:?}: IPv4 reached a v6only listener"
        );
    }
}

#[test]
fn unix_socket_binds_are_refused_with_what_to_write() {
    let cfg = format!(
        "{DEFAULTS}listen fe\n    bind unix@/run/warren.sock mode 600\n    server s1 127.0.0.1:1\n"
    );
    let files = write_files(&tempdir("globals"), &[("u.cfg", &cfg)]);
    let c = check(Proxy::Warren, &dash_f(&files), &[]);
    assert!(!c.valid, "{}", c.output);
    assert!(
        c.output.contains("u.cfg:7") && c.output.contains("TCP addresses only"),
        "{}",
        c.output
    );
}

/// `balance source` with either hash type sends a client address to the same server every
/// time (which server differs between warren and HAProxy: their hash functions differ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_types_keep_each_client_on_one_server() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    for proxy in Proxy::BOTH {
        for hash in ["consistent", "map-based"] {
            let port = free_port();
            let cfg = format!(
                "{DEFAULTS}listen fe\n    bind 127.0.0.1:{port}\n    balance source\n    hash-type {hash}\n    server s1 {}\n    server s2 {}\n",
                a.addr, b.addr
            );
            let files = write_files(&tempdir("globals"), &[("h.cfg", &cfg)]);
            let mut p = Running::start(proxy, &dash_f(&files), &[]);
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            p.wait_accepting(addr).await;
            let mut seen = std::collections::BTreeSet::new();
            for client in [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.4",
                "127.0.0.5",
                "127.0.0.6",
            ] {
                let mut tags = std::collections::BTreeSet::new();
                for _ in 0..3 {
                    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                    socket
                        .bind(SocketAddr::new(client.parse().expect("ip"), 0))
                        .expect("bind");
                    let mut s = socket.connect(addr).await.expect("connect");
                    tags.insert(read_line(&mut s).await);
                }
                assert_eq!(tags.len(), 1, "{proxy:?} {hash} {client}: {tags:?}");
                seen.extend(tags);
            }
            assert!(!seen.contains(""), "{proxy:?} {hash}: a session failed");
        }
    }
}

/// The user and group to give a socket to: `nobody`/`nogroup` as root (a real change of
/// owner), else the current user (chown to oneself is allowed).
fn socket_owner() -> (String, String, u32, u32) {
    // SAFETY: geteuid/getegid cannot fail; getpwuid/getgrgid return static storage that
    // is copied at once.
    unsafe {
        if libc::geteuid() == 0 {
            let pw = libc::getpwnam(c"nobody".as_ptr());
            let gr = libc::getgrnam(c"nogroup".as_ptr());
            if !pw.is_null() && !gr.is_null() {
                return (
                    "nobody".into(),
                    "nogroup".into(),
                    (*pw).pw_uid,
                    (*gr).gr_gid,
                );
            }
        }
        let (uid, gid) = (libc::geteuid(), libc::getegid());
        let pw = libc::getpwuid(uid);
        let gr = libc::getgrgid(gid);
        let name =
            |p: *const libc::c_char| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        (name((*pw).pw_name), name((*gr).gr_name), uid, gid)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_socket_user_group_and_mode_are_applied() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (user, group, uid, gid) = socket_owner();
    for proxy in Proxy::BOTH {
        let dir = tempdir("globals");
        let sock = dir.join("admin.sock");
        let port = free_port();
        let cfg = format!(
            "global\n    stats socket {} mode 660 level admin user {user} group {group}\n{DEFAULTS}listen fe\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:1\n",
            sock.display()
        );
        let files = write_files(&dir, &[("s.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(([127, 0, 0, 1], port).into()).await;
        wait_until("the socket file", || sock.exists()).await;
        let meta = std::fs::metadata(&sock).expect("socket file");
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{proxy:?}");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660, "{proxy:?}");
    }
}

/// `option logasap`: the session's line arrives while the session is still open, with the
/// total time and bytes marked `+`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logasap_logs_a_session_once_its_server_is_reached() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let port = free_port();
        let cfg = format!(
            "global\n    log {} local0\n{DEFAULTS}    log global\n    option tcplog\n    option logasap\n\
             listen fe\n    bind 127.0.0.1:{port}\n    server s1 {}\n",
            syslog.local_addr().expect("addr"),
            a.addr
        );
        let files = write_files(&tempdir("globals"), &[("l.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        let (session, tag) = which_backend(addr).await;
        assert_eq!(tag, "a");
        let local = session.local_addr().expect("local").to_string();
        let mut buf = [0u8; 2048];
        let line = loop {
            let n = tokio::time::timeout(common::both::LIMIT, syslog.recv(&mut buf))
                .await
                .expect("a log line while the session is open")
                .expect("recv");
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(&local) {
                break line;
            }
        };
        assert!(line.contains(" fe fe/s1 "), "{proxy:?}: {line}");
        let fields: Vec<&str> = line
            .split(" fe fe/s1 ")
            .nth(1)
            .unwrap_or("")
            .split(' ')
            .collect();
        assert!(
            fields[0].contains("/+") && fields[1].starts_with('+'),
            "{proxy:?}: times and bytes marked '+': {line}"
        );
        drop(session);
    }
}

/// `stick on src`: a roundrobin backend sends each client address back to its first
/// server (without it, the same client would alternate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stick_on_src_keeps_clients_on_their_server() {
    let (a, b) = (Backend::tagged("a").await, Backend::tagged("b").await);
    for proxy in Proxy::BOTH {
        let port = free_port();
        let cfg = format!(
            "{DEFAULTS}listen fe\n    bind 127.0.0.1:{port}\n    balance roundrobin\n    option persist\n\
             stick-table type ip size 1k expire 10m\n    stick on src\n    server s1 {}\n    server s2 {}\n",
            a.addr, b.addr
        );
        let files = write_files(&tempdir("globals"), &[("s.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        for client in ["127.0.0.2", "127.0.0.3"] {
            let mut tags = Vec::new();
            for _ in 0..4 {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket
                    .bind(SocketAddr::new(client.parse().expect("ip"), 0))
                    .expect("bind");
                let mut s = socket.connect(addr).await.expect("connect");
                tags.push(read_line(&mut s).await);
            }
            assert!(
                tags.iter().all(|t| *t == tags[0]) && !tags[0].is_empty(),
                "{proxy:?} {client}: {tags:?}"
            );
        }
        // Without stickiness, four connections in a row from one client would alternate
        // between the two servers (roundrobin): the check above is what fails.
    }
}

/// `chroot`: after binding (sessions still flow) the process's root is the directory.
/// Needs root; a missing directory is refused with its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroot_after_binding() {
    let dir = tempdir("globals");
    let files = write_files(&dir, &[("m.cfg", "global\n    chroot /nonexistent/jail\n")]);
    let c = check(Proxy::Warren, &dash_f(&files), &[]);
    assert!(
        !c.valid && c.output.contains("m.cfg:2") && c.output.contains("no such directory"),
        "{}",
        c.output
    );
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("chroot_after_binding: not root, the chroot itself is not exercised");
        return;
    }
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let jail = tempdir("jail");
        let port = free_port();
        let cfg = format!(
            "global\n    chroot {}\n{DEFAULTS}listen fe\n    bind 127.0.0.1:{port}\n    server s1 {}\n",
            jail.display(),
            a.addr
        );
        let files = write_files(&dir, &[("c.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        assert_eq!(which_backend(addr).await.1, "a", "{proxy:?}");
        let root = std::fs::read_link(format!("/proc/{}/root", p.pid())).expect("root link");
        assert_eq!(root, jail.canonicalize().expect("jail"), "{proxy:?}");
    }
}

/// Threads of `pid` whose allowed CPUs are exactly `list`.
fn threads_on(pid: u32, list: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter(|status| {
            status.lines().any(|l| {
                l.starts_with("Cpus_allowed_list:") && l.split_whitespace().nth(1) == Some(list)
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_map_pins_the_worker_threads() {
    let a = Backend::tagged("a").await;
    for proxy in Proxy::BOTH {
        let port = free_port();
        let cfg = format!(
            "global\n    nbthread 2\n    cpu-map 1/1-2 0\n{DEFAULTS}listen fe\n    bind 127.0.0.1:{port}\n    server s1 {}\n",
            a.addr
        );
        let files = write_files(&tempdir("globals"), &[("c.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        assert_eq!(which_backend(addr).await.1, "a", "{proxy:?}");
        let pid = p.pid();
        wait_until("two threads on CPU 0", || threads_on(pid, "0") >= 2).await;
    }
    let files = write_files(
        &tempdir("globals"),
        &[("bad.cfg", "global\n    cpu-map 2/1 0\n")],
    );
    let c = check(Proxy::Warren, &dash_f(&files), &[]);
    assert!(
        !c.valid && c.output.contains("bad.cfg:2") && c.output.contains("single process"),
        "{}",
        c.output
    );
}

/// `option dontlog-normal`: a session that ends normally is not logged, one whose server
/// refused is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dontlog_normal_logs_only_failed_sessions() {
    let a = Backend::tagged("a").await;
    let refused = refused_addr().await;
    for proxy in Proxy::BOTH {
        let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let (good, bad) = (free_port(), free_port());
        let cfg = format!(
            "global\n    log {} local0\n{DEFAULTS}    log global\n    option tcplog\n    option dontlog-normal\n\
             listen good\n    bind 127.0.0.1:{good}\n    server s1 {}\n\
             listen bad\n    bind 127.0.0.1:{bad}\n    retries 0\n    server s1 {refused}\n",
            syslog.local_addr().expect("addr"),
            a.addr
        );
        let files = write_files(&tempdir("globals"), &[("d.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(([127, 0, 0, 1], good).into()).await;
        p.wait_accepting(([127, 0, 0, 1], bad).into()).await;
        // A normal session first, then a failed one: only the failed one is logged, so the
        // first line received is about `bad`.
        let (mut s, tag) = which_backend(([127, 0, 0, 1], good).into()).await;
        assert_eq!(tag, "a");
        tokio::io::AsyncWriteExt::shutdown(&mut s)
            .await
            .expect("close");
        let _ = read_to_end(&mut s).await;
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", bad))
            .await
            .expect("connect");
        let _ = read_to_end(&mut c).await;
        // Lines until the failed session's (the readiness probes, which close before a
        // server is reached, are errors too and may come first).
        let mut buf = [0u8; 2048];
        let mut before = Vec::new();
        loop {
            let n = tokio::time::timeout(common::both::LIMIT, syslog.recv(&mut buf))
                .await
                .expect("a log line")
                .expect("recv");
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(" bad bad/s1 ") && line.contains(" SC ") {
                break;
            }
            before.push(line);
        }
        assert!(
            !before
                .iter()
                .any(|l| l.contains(" good good/s1 ") && l.contains(" -- ")),
            "{proxy:?}: a normal session was logged: {before:?}"
        );
    }
}
