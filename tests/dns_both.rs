//! DNS under warren and under Debian's `haproxy` (the reference), with one DNS server of
//! the test's own whose records change while the proxy runs: the same configuration, the
//! same log lines, the same effect on connections.

mod common;

use common::both::{dash_f, tempdir, write_files, Proxy, Running};
use common::dns::{ip, tagged_on, Dns, Reply};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn echo(s: &mut TcpStream, text: &str) {
    s.write_all(format!("{text}\n").as_bytes()).await.unwrap();
    assert_eq!(read_line(s).await, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_followed_and_nx_means_maintenance_in_both() {
    let (bport, _backends) = tagged_on(&[2, 3]).await;
    for proxy in Proxy::BOTH {
        let dns = Dns::start().await;
        dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.2")]));
        let port = free_port();
        let cfg = format!(
            "global\n    log stderr format raw local0\n\
             resolvers dns\n    nameserver ns1 {}\n    timeout resolve 100ms\n    timeout retry 200ms\n    hold valid 100ms\n    hold nx 10ms\n\
             defaults\n    mode tcp\n    log global\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             listen rabbit\n    bind 127.0.0.1:{port}\n\
             server r rabbit.test:{bport} resolvers dns resolve-prefer ipv4 init-addr none\n",
            dns.addr
        );
        let dir = tempdir("dns");
        let files = write_files(&dir, &[("c.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_line("rabbit/r administratively READY thanks to valid DNS answer");
        let addr = ([127, 0, 0, 1], port).into();
        p.wait_accepting(addr).await;
        let (mut first, tag) = which_backend(addr).await;
        assert_eq!(tag, "host2", "{proxy:?}");

        p.seen.clear();
        dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.3")]));
        let line = p.wait_line("rabbit/r changed its IP from");
        assert!(
            line.contains("127.0.0.2") && line.contains("127.0.0.3"),
            "{proxy:?}: {line}"
        );
        let (_second, tag) = which_backend(addr).await;
        assert_eq!(tag, "host3", "{proxy:?}");
        echo(&mut first, "still flowing").await;

        dns.set("rabbit.test", Reply::Nx);
        let line = p.wait_line("Server rabbit/r is going DOWN for maintenance (DNS NX status)");
        assert!(
            line.contains("0 active and 0 backup servers left. 2 sessions active"),
            "{proxy:?}: {line}"
        );
        echo(&mut first, "kept in maintenance").await;
        dns.set("rabbit.test", Reply::Addrs(vec![ip("127.0.0.2")]));
        p.seen.clear();
        p.wait_line("rabbit/r administratively READY thanks to valid DNS answer");
        p.wait_line("Server rabbit/r ('rabbit.test') is UP/READY (resolves again)");
        let (_third, tag) = which_backend(addr).await;
        assert_eq!(tag, "host2", "{proxy:?}");
    }
}

/// (server, status, address) of each server of `backend`, from the stats CSV.
async fn servers(stats_port: u16, backend: &str) -> Vec<(String, String, String)> {
    stats_csv(stats_port)
        .await
        .into_iter()
        .filter(|r| r["pxname"] == backend && r["svname"] != "BACKEND" && r["svname"] != "FRONTEND")
        .map(|r| (r["svname"].clone(), r["status"].clone(), r["addr"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_fill_from_a_and_srv_records_in_both() {
    let (bport, _backends) = tagged_on(&[2, 3, 4]).await;
    let one = Backend::tagged("one").await;
    let two = Backend::tagged("two").await;
    for proxy in Proxy::BOTH {
        let dns = Dns::start().await;
        dns.set(
            "rabbit.test",
            Reply::Addrs(vec![ip("127.0.0.2"), ip("127.0.0.3")]),
        );
        dns.set("n1.rabbit.test", Reply::Addrs(vec![ip("127.0.0.1")]));
        dns.set("n2.rabbit.test", Reply::Addrs(vec![ip("127.0.0.1")]));
        dns.set(
            "_amqp._tcp.rabbit.test",
            Reply::Srv(vec![
                ("n1.rabbit.test".into(), one.addr.port(), 256),
                ("n2.rabbit.test".into(), two.addr.port(), 512),
            ]),
        );
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "global\n    log stderr format raw local0\n\
             resolvers dns\n    nameserver ns1 {}\n    timeout resolve 100ms\n    timeout retry 200ms\n    hold valid 100ms\n    accepted_payload_size 8192\n\
             defaults\n    mode tcp\n    log global\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             listen a\n    bind 127.0.0.1:{port}\n\
             server-template r 3 rabbit.test:{bport} resolvers dns resolve-prefer ipv4 init-addr none\n\
             backend srv\n    server-template s 3 _amqp._tcp.rabbit.test resolvers dns resolve-prefer ipv4 init-addr none\n\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats enable\n    stats uri /stats\n    stats show-legends\n",
            dns.addr
        );
        let dir = tempdir("dns");
        let files = write_files(&dir, &[("c.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_line("a/r2 administratively READY");
        p.wait_line("Server srv/s1 ('n");
        p.wait_line("Server srv/s2 ('n");
        p.wait_accepting(([127, 0, 0, 1], stats_port).into()).await;
        let got = servers(stats_port, "a").await;
        let want = |rows: &[(&str, &str, String)]| -> Vec<(String, String, String)> {
            rows.iter()
                .map(|(n, s, a)| (n.to_string(), s.to_string(), a.clone()))
                .collect()
        };
        let at = |h: u8| format!("127.0.0.{h}:{bport}");
        assert_eq!(
            got[..2],
            want(&[("r1", "no check", at(2)), ("r2", "no check", at(3))])[..],
            "{proxy:?}"
        );
        assert_eq!(got[2].1, "MAINT (resolution)", "{proxy:?}");
        // Which slot takes which record is each proxy's own order.
        let mut got = servers(stats_port, "srv").await;
        assert_eq!(got[2].1, "MAINT (resolution)", "{proxy:?}");
        got.truncate(2);
        let on_one = got.iter().position(|s| s.2 == one.addr.to_string());
        let Some(on_one) = on_one else {
            panic!("{proxy:?}: no slot on {}: {got:?}", one.addr)
        };
        assert_eq!(got[1 - on_one].2, two.addr.to_string(), "{proxy:?}");
        assert!(got.iter().all(|s| s.1 == "no check"), "{proxy:?}: {got:?}");

        // 127.0.0.2 goes, 127.0.0.4 comes: r2 stays where it is, r1 moves.
        p.seen.clear();
        dns.set(
            "rabbit.test",
            Reply::Addrs(vec![ip("127.0.0.3"), ip("127.0.0.4")]),
        );
        p.wait_line("a/r1 changed its IP from 127.0.0.2 to 127.0.0.4");
        let got = servers(stats_port, "a").await;
        assert_eq!(got[1], want(&[("r2", "no check", at(3))])[0], "{proxy:?}");
        assert_eq!(got[2].1, "MAINT (resolution)", "{proxy:?}");
        // n1 leaves the SRV answer: its server goes to maintenance.
        dns.set(
            "_amqp._tcp.rabbit.test",
            Reply::Srv(vec![("n2.rabbit.test".into(), two.addr.port(), 512)]),
        );
        let gone = format!("srv/s{}", on_one + 1);
        p.wait_line(&format!("Server {gone} is going DOWN for maintenance"));
        let got = servers(stats_port, "srv").await;
        assert_eq!(got[on_one].1, "MAINT (resolution)", "{proxy:?}");
        assert_eq!(got[1 - on_one].1, "no check", "{proxy:?}");
    }
}
