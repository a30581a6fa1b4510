//! The connection limits of `serve`, attacked over real loopback TCP with
//! short limits set for the test: silent, half-sent and stalled requests
//! are closed once their timeout passes, a slow upload that keeps sending
//! is not, a trickled body meets the request deadline, a client that stops
//! reading is cut off, one address cannot take more than its share of
//! connections nor the server more than its total, and `/healthz` answers
//! from another address all along.

use crate::harness::Server;
use crate::wire::{connect_from, healthz, metric, request, until_closed, wait_metric, Listening};
use std::time::{Duration, Instant};
use tessera_api::HttpLimits;
use tokio::io::AsyncWriteExt;

fn limits(configure: impl FnOnce(&mut HttpLimits)) -> HttpLimits {
    let mut limits = HttpLimits::default();
    configure(&mut limits);
    limits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_stalled_requests_are_closed_after_their_timeouts() {
    let second = Duration::from_secs(1);
    let s = Server::start_with("/bin/true", |state| {
        state.with_http_limits(limits(|l| {
            l.header_read_timeout = second;
            l.body_idle_timeout = second;
        }))
    });
    let api = Listening::start(&s).await;
    let key = s.admin_key.clone();
    const EACH: usize = 20;
    let mut flood = Vec::new();
    for i in 0..3 * EACH {
        let mut conn = connect_from("127.0.0.1", api.addr).await;
        let opened = Instant::now();
        let sent = match i / EACH {
            0 => String::new(),
            1 => "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half: ".to_string(),
            _ => format!(
                "POST /api/v1/projects HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
            ),
        };
        conn.write_all(sent.as_bytes()).await.unwrap();
        flood.push((i / EACH, conn, opened));
    }
    // Another address gets its answer while the flood is open.
    let (status, took) = healthz("127.0.0.2", api.addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    eprintln!(
        "/healthz during a flood of {} stalled connections: {took:?}",
        flood.len()
    );

    for (kind, mut conn, opened) in flood {
        let answer =
            String::from_utf8(until_closed(&mut conn, "a stalled connection").await).unwrap();
        let lasted = opened.elapsed();
        // (tokio's timers tick in whole milliseconds, so one may fire a
        // fraction of a millisecond before the instant it was set for.)
        assert!(
            lasted + Duration::from_millis(5) >= second,
            "closed after {lasted:?}, before its timeout"
        );
        match kind {
            0 | 1 => assert_eq!(answer, "", "nothing is answered to an incomplete head"),
            _ => {
                assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
                assert!(
                    answer.contains("the request body sent nothing for 1 s"),
                    "{answer}"
                );
            }
        }
    }
    wait_metric(
        &s,
        "tessera_http_timeouts_total{kind=\"body\"}",
        EACH as f64,
    )
    .await;
    let header = metric(&s, "tessera_http_timeouts_total{kind=\"header\"}").await;
    assert!(header >= EACH as f64, "{header} header timeouts");
    // Everything was let go: only the connections of this test's own
    // metric reads are left (none: those are in-process).
    wait_metric(&s, "tessera_http_connections_open", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_connections_and_the_server_its_total() {
    let s = Server::start_with("/bin/true", |state| {
        state.with_http_limits(limits(|l| {
            l.max_connections_per_address = 8;
            l.max_connections = 12;
        }))
    });
    let api = Listening::start(&s).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from("127.0.0.1", api.addr).await);
    }
    wait_metric(&s, "tessera_http_connections_open", 8.0).await;
    // The ninth from the same address is answered 503 and closed.
    let mut ninth = connect_from("127.0.0.1", api.addr).await;
    let answer = String::from_utf8(until_closed(&mut ninth, "the ninth").await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(
        answer.contains("too many connections from your address (at most 8)"),
        "{answer}"
    );
    // Another address is served meanwhile.
    let (status, took) = healthz("127.0.0.2", api.addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    eprintln!("/healthz from another address while one holds its 8: {took:?}");
    wait_metric(&s, "tessera_http_connections_open", 8.0).await;
    for _ in 0..4 {
        held.push(connect_from("127.0.0.3", api.addr).await);
    }
    wait_metric(&s, "tessera_http_connections_open", 12.0).await;
    let (answer, _) = request("127.0.0.4", api.addr, "GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.contains("the server holds as many connections as it may (12)"),
        "{answer}"
    );
    let per_address = "tessera_http_connections_refused_total{reason=\"per_address\"}";
    assert_eq!(metric(&s, per_address).await, 1.0);
    let server = "tessera_http_connections_refused_total{reason=\"server\"}";
    assert_eq!(metric(&s, server).await, 1.0);
    // A place given back is a place for the next one.
    drop(held.remove(0));
    wait_metric(&s, "tessera_http_connections_open", 11.0).await;
    let (status, _) = healthz("127.0.0.1", api.addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_that_keeps_sending_lands_and_a_trickled_body_meets_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = crate::uploads::big_clip(tmp.path());
    let s = Server::start_with("/bin/true", |state| {
        state.with_http_limits(limits(|l| {
            l.body_idle_timeout = Duration::from_secs(2);
            l.request_timeout = Duration::from_secs(2);
        }))
    });
    let key = s.admin_key.clone();
    let p = s.project("slow", &key).await;
    let api = Listening::start(&s).await;

    // An upload sent in 8 pieces, 400 ms apart: 3 s in all, past both
    // limits, but never idle for 2 s.
    let mut conn = connect_from("127.0.0.1", api.addr).await;
    let head = format!(
        "POST /api/v1/projects/{p}/uploads?name=slow.mp4 HTTP/1.1\r\nHost: t\r\n\
         Authorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        clip.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for piece in clip.chunks(clip.len().div_ceil(8)) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        conn.write_all(piece).await.unwrap();
    }
    let answer = String::from_utf8(until_closed(&mut conn, "the slow upload").await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");

    // A small JSON body trickled a byte at a time never idles, but takes
    // longer than the request deadline from its headers.
    let body = br#"{"name":"trickled"}"#;
    let mut conn = connect_from("127.0.0.1", api.addr).await;
    let head = format!(
        "POST /api/v1/projects HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    for byte in body {
        if conn.write_all(&[*byte]).await.is_err() {
            break; // answered and closed
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let answer = String::from_utf8(until_closed(&mut conn, "the trickle").await).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("longer than 2 s"), "{answer}");
    let projects = s.get("/api/v1/projects", &key).await.text();
    assert!(!projects.contains("trickled"), "{projects}");
    wait_metric(&s, "tessera_http_timeouts_total{kind=\"request\"}", 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    let s = Server::start_with("/bin/true", |state| {
        state.with_http_limits(limits(|l| l.write_stall_timeout = Duration::from_secs(1)))
    });
    let key = s.admin_key.clone();
    s.project("w", &key).await;
    // A task whose log (64 MiB) is far more than the socket buffers hold.
    let spec = "name: big-log\ntasks:\n  - name: a\n    action: {kind: script, script: \
                \"head -c 67108864 /dev/zero | tr '\\\\0' a\"}\n";
    let r = s.post_yaml("/api/v1/projects/w/jobs", &key, spec).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(s.wait_job(id, &key).await["state"], "succeeded");
    let api = Listening::start(&s).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(api.addr).await.unwrap();
    let head = format!(
        "GET /api/v1/jobs/{id}/tasks/0/logs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // It never reads: the server gives up on the write and closes.
    wait_metric(&s, "tessera_http_timeouts_total{kind=\"write\"}", 1.0).await;
    wait_metric(&s, "tessera_http_connections_open", 0.0).await;
    let got = until_closed(&mut conn, "the stalled reader").await;
    assert!(got.len() < 64 << 20, "{} bytes arrived", got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_kept_alive_connections_without_waiting_for_them() {
    let s = Server::start();
    let mut api = Listening::start(&s).await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut conn = connect_from("127.0.0.1", api.addr).await;
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        idle.push(conn);
    }
    wait_metric(&s, "tessera_http_connections_open", 5.0).await;
    let started = Instant::now();
    let served = tokio::time::timeout(crate::wire::PATIENCE, api.stop()).await;
    served.expect("serve returns").unwrap().unwrap();
    assert!(
        started.elapsed() < tessera_api::DRAIN_TIMEOUT,
        "the drain waited for idle connections"
    );
    for mut conn in idle {
        let answer =
            String::from_utf8(until_closed(&mut conn, "an idle connection").await).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_past_64_kib_or_100_headers_are_refused_with_431() {
    let s = Server::start();
    let api = Listening::start(&s).await;
    let long_query = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "q".repeat(70 << 10)
    );
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many}Connection: close\r\n\r\n");
    for (what, head) in [("a 70 KiB query", long_query), ("101 headers", many)] {
        let (answer, _) = request("127.0.0.1", api.addr, &head).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{what}: {answer}");
    }
    let fine: String = (0..90).map(|i| format!("X-H{i}: v\r\n")).collect();
    let fine = format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{fine}Connection: close\r\n\r\n");
    let (answer, _) = request("127.0.0.1", api.addr, &fine).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}
