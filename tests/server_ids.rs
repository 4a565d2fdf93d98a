//! `id` on server lines: the number the stats page (`sid`) and the runtime API show, which
//! monitoring keys on; servers without one are numbered as HAProxy numbers them. Run under
//! warren and under Debian's `haproxy`.

mod common;

use common::both::{dash_f, tempdir, write_files, Proxy, Running};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ids_are_kept_and_the_others_fill_the_gaps() {
    for proxy in Proxy::BOTH {
        let (port, stats_port) = (free_port(), free_port());
        let cfg = format!(
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             listen rabbit\n    bind 127.0.0.1:{port}\n\
             server a 127.0.0.1:1\n    server b 127.0.0.1:2 id 1\n    server c 127.0.0.1:3 id 7\n    server d 127.0.0.1:4\n\
             listen stats\n    bind 127.0.0.1:{stats_port}\n    mode http\n    stats enable\n    stats uri /stats\n"
        );
        let dir = tempdir("ids");
        let files = write_files(&dir, &[("ids.cfg", &cfg)]);
        let mut p = Running::start(proxy, &dash_f(&files), &[]);
        p.wait_accepting(([127, 0, 0, 1], stats_port).into()).await;
        let mut sids = Vec::new();
        for server in ["a", "b", "c", "d"] {
            sids.push(stats_cell(stats_port, "rabbit", server, "sid").await);
        }
        // a takes 2 (1 is b's); the counter then moves one step per line, ids or not, so it
        // is at 5 when d comes, and 5 is free.
        assert_eq!(sids, ["2", "1", "7", "5"], "{proxy:?}");
    }
}
