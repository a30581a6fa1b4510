//! The doors of a real `tessera server` process, attacked over loopback:
//! floods of wrong secrets (user keys, worker tokens, many keys at once),
//! connections that say nothing or stall (from one address, and from
//! several), specs nested 40,000 deep. Each test asserts the refusals and
//! that the server stays small and `/healthz` quick, and prints what it
//! measured (`cargo test -p tessera-cli --test cli doors -- --nocapture`):
//! the server's resident memory (VmRSS, and its peak VmHWM, from
//! /proc/PID/status), its open file descriptors, `/healthz` latency.

use crate::server::Server;
use crate::support::{run, tessera};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The longest a wait on the server may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// (VmRSS, VmHWM) of `pid`, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A connection from the loopback address `from` (e.g. "127.0.0.2").
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let conn: TcpStream = socket.into();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn
}

/// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) and
/// reads the answer to its end: (status code, answer, time taken).
fn exchange(from: &str, to: SocketAddr, request: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut conn = connect_from(from, to);
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer, started.elapsed())
}

fn get(path: &str, key: Option<&str>) -> String {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n")
}

fn post(path: &str, key: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `GET /healthz` from `from`, `n` times: (worst, median) latency.
fn healthz_latency(from: &str, to: SocketAddr, n: usize) -> (Duration, Duration) {
    let mut took: Vec<Duration> = (0..n)
        .map(|_| {
            let (code, answer, took) = exchange(from, to, &get("/healthz", None));
            assert_eq!(code, 200, "{answer}");
            took
        })
        .collect();
    took.sort();
    (took[n - 1], took[n / 2])
}

/// Sends every request at once (one thread each, released together); the
/// status codes, in order.
fn all_at_once(to: SocketAddr, requests: Vec<String>) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let threads: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                exchange("127.0.0.1", to, &request).0
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn count(codes: &[u16], code: u16) -> usize {
    codes.iter().filter(|c| **c == code).count()
}

/// A data directory with an admin (its key) and a worker token.
fn boot(data: &Path) -> (String, String) {
    let mut admin = tessera();
    admin.args([
        "admin",
        "create-user",
        "root",
        "--admin",
        "--project",
        "p",
        "--data-dir",
    ]);
    let made = run(admin.arg(data));
    made.expect_code(0);
    let mut token = tessera();
    token.args(["admin", "create-worker-token", "rack", "--data-dir"]);
    let token = run(token.arg(data));
    token.expect_code(0);
    (
        made.stdout.trim().to_string(),
        token.stdout.trim().to_string(),
    )
}

fn addr(server: &Server) -> SocketAddr {
    server.url.trim_start_matches("http://").parse().unwrap()
}

/// `key` with its last 4 characters replaced: same prefix, wrong secret.
fn wrong(key: &str, i: usize) -> String {
    format!("{}{i:04}", &key[..key.len() - 4])
}

/// The value of the series `series` in the server's /metrics.
fn metric(to: SocketAddr, key: &str, series: &str) -> f64 {
    metric_from("127.0.0.1", to, key, series)
}

/// [`metric`], asked from the loopback address `from`.
fn metric_from(from: &str, to: SocketAddr, key: &str, series: &str) -> f64 {
    let (code, text, _) = exchange(from, to, &get("/metrics", Some(key)));
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

#[test]
fn floods_of_wrong_secrets_keep_a_real_server_small() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (key, token) = boot(&data);
    let server = Server::start_with(&data, &[]);
    let (to, pid) = (addr(&server), server.pid());
    let (code, answer, _) = exchange("127.0.0.1", to, &get("/api/v1/me", Some(&key)));
    assert_eq!(code, 200, "{answer}");
    let (rss0, hwm0) = memory(pid);
    eprintln!(
        "server before the floods: VmRSS {}, VmHWM {}",
        mib(rss0),
        mib(hwm0)
    );
    let user_runs = || metric(to, &key, "tessera_auth_argon2_total{kind=\"user_key\"}");
    let worker_runs = || metric(to, &key, "tessera_auth_argon2_total{kind=\"worker_token\"}");
    let (users0, workers0) = (user_runs(), worker_runs());

    // 40 wrong secrets for the admin key's prefix, at once: 5 reach argon2.
    let requests = (0..40)
        .map(|i| get("/api/v1/me", Some(&wrong(&key, i))))
        .collect();
    let codes = all_at_once(to, requests);
    assert_eq!(
        (count(&codes, 401), count(&codes, 429)),
        (5, 35),
        "{codes:?}"
    );
    assert_eq!(user_runs() - users0, 5.0);
    // 40 wrong secrets for the worker token's prefix, at once.
    let body = r#"{"name":"w","slots":1}"#;
    let requests = (0..40)
        .map(|i| {
            post(
                "/api/v1/workers",
                &wrong(&token, i),
                "application/json",
                body,
            )
        })
        .collect();
    let codes = all_at_once(to, requests);
    assert_eq!(
        (count(&codes, 401), count(&codes, 429)),
        (5, 35),
        "{codes:?}"
    );
    assert_eq!(worker_runs() - workers0, 5.0);
    let (rss1, hwm1) = memory(pid);
    eprintln!(
        "after 40 + 40 wrong secrets for one key prefix and one token prefix: VmRSS {}, VmHWM {}",
        mib(rss1),
        mib(hwm1)
    );

    // 40 keys, one wrong secret each, at once: only the verifier's queue
    // holds them back.
    let mut keys = Vec::new();
    for i in 0..40 {
        let body = format!(r#"{{"name":"u{i}","admin":false}}"#);
        let (code, answer, _) = exchange(
            "127.0.0.1",
            to,
            &post("/api/v1/users", &key, "application/json", &body),
        );
        assert_eq!(code, 201, "{answer}");
        let secret = answer
            .split("\"secret\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        keys.push(secret.to_string());
    }
    let users1 = user_runs();
    let requests = keys
        .iter()
        .map(|k| get("/api/v1/me", Some(&wrong(k, 0))))
        .collect();
    let codes = all_at_once(to, requests);
    let (refused, busy) = (count(&codes, 401), count(&codes, 503));
    assert_eq!(refused + busy, 40, "{codes:?}");
    let (rss2, hwm2) = memory(pid);
    eprintln!(
        "after 40 users created and 40 wrong secrets for 40 keys at once ({refused} checked, \
         {busy} refused busy): VmRSS {}, VmHWM {}",
        mib(rss2),
        mib(hwm2)
    );
    // One run per key checked (plus, at most, one more check of the
    // admin's own key if its minute in the cache ran out meanwhile).
    let ran = user_runs() - users1 - refused as f64;
    assert!(
        ran == 0.0 || ran == 1.0,
        "{ran} argon2 runs beyond the {refused} checks"
    );
    eprintln!(
        "argon2 runs in all: {} user-key checks, {} worker-token checks",
        user_runs(),
        worker_runs()
    );
    // argon2 holds 19 MiB per verifier thread (2); unbounded, 30 wrong
    // secrets took this server from 11 MB to 580 MB.
    let grew = hwm2.saturating_sub(rss0);
    assert!(grew < 120 << 10, "the server's peak grew by {}", mib(grew));
}

#[test]
fn connection_floods_on_a_real_server_are_capped_and_closed_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (key, _) = boot(&data);
    let server = Server::start_with(
        &data,
        &[
            "--http-header-timeout-ms",
            "5000",
            "--http-body-idle-ms",
            "5000",
            "--http-max-per-address",
            "64",
        ],
    );
    let (to, pid) = (addr(&server), server.pid());
    let (code, answer, _) = exchange("127.0.0.1", to, &get("/api/v1/me", Some(&key)));
    assert_eq!(code, 200, "{answer}");
    let fds0 = open_fds(pid);
    let (rss0, _) = memory(pid);
    let (worst, median) = healthz_latency("127.0.0.2", to, 20);
    eprintln!(
        "before: {fds0} fds, VmRSS {}, /healthz worst {worst:?} median {median:?}",
        mib(rss0)
    );

    // One address opens 300 connections that say nothing: 64 are held,
    // the others are answered 503 and closed at once.
    let refused_series = "tessera_http_connections_refused_total{reason=\"per_address\"}";
    let mut flood: Vec<TcpStream> = (0..300).map(|_| connect_from("127.0.0.1", to)).collect();
    let deadline = Instant::now() + PATIENCE;
    while metric_from("127.0.0.3", to, &key, refused_series) < 236.0 {
        assert!(
            Instant::now() < deadline,
            "the server did not refuse 236 connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let fds1 = open_fds(pid);
    let (worst, median) = healthz_latency("127.0.0.2", to, 20);
    let mut held = Vec::new();
    let mut refused = 0;
    for mut conn in flood.drain(..) {
        conn.set_nonblocking(true).unwrap();
        let mut first = [0u8; 12];
        match conn.read(&mut first) {
            Ok(12) if &first == b"HTTP/1.1 503" => refused += 1,
            _ => held.push(conn),
        }
    }
    eprintln!(
        "one address, 300 silent connections: {} held, {refused} refused; {fds1} fds, VmRSS {}, \
         /healthz from another address worst {worst:?} median {median:?}",
        held.len(),
        mib(memory(pid).0)
    );
    assert_eq!((held.len(), refused), (64, 236));
    assert!(fds1 <= fds0 + 64 + 8, "{fds1} fds open (from {fds0})");
    for mut conn in held.drain(..) {
        conn.set_nonblocking(false).unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    }

    // Five addresses, 60 each: silent, half a head, or a stalled body. All
    // are held (each address is under its cap) until their timeouts.
    let started = Instant::now();
    for a in 0..5 {
        for i in 0..60 {
            let mut conn = connect_from(&format!("127.0.1.{}", a + 1), to);
            let sent = match i % 3 {
                0 => String::new(),
                1 => "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half: ".to_string(),
                _ => format!(
                    "POST /api/v1/projects HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
                     Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na"
                ),
            };
            conn.write_all(sent.as_bytes()).unwrap();
            held.push(conn);
        }
    }
    let open = "tessera_http_connections_open";
    let deadline = Instant::now() + PATIENCE;
    // 300, and the connection asking.
    while metric_from("127.0.0.3", to, &key, open) < 301.0 {
        assert!(
            Instant::now() < deadline,
            "the server did not take the 300 connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let fds2 = open_fds(pid);
    let (worst, median) = healthz_latency("127.0.0.2", to, 20);
    eprintln!(
        "five addresses, 300 stalled connections: {fds2} fds, VmRSS {}, /healthz worst \
         {worst:?} median {median:?}",
        mib(memory(pid).0)
    );
    for mut conn in held {
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    }
    let closed = started.elapsed();
    // (Timed from before the first opened; tokio's timers tick in whole
    // milliseconds.)
    assert!(
        closed + Duration::from_millis(5) >= Duration::from_secs(5),
        "closed before their timeouts: {closed:?}"
    );
    let deadline = Instant::now() + PATIENCE;
    while open_fds(pid) > fds0 + 2 {
        assert!(
            Instant::now() < deadline,
            "{} fds still open (from {fds0})",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss3, hwm3) = memory(pid);
    eprintln!(
        "all 300 closed by the server {closed:?} after they opened; {} fds, VmRSS {}, VmHWM {}",
        open_fds(pid),
        mib(rss3),
        mib(hwm3)
    );
}

#[test]
fn deep_specs_on_a_real_server_are_refused_while_healthz_stays_quick() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (key, _) = boot(&data);
    let server = Server::start_with(&data, &[]);
    let (to, pid) = (addr(&server), server.pid());
    let (worst, median) = healthz_latency("127.0.0.2", to, 20);
    eprintln!("/healthz before: worst {worst:?} median {median:?}");
    let deep = format!(
        "name: j\nparams: {}{}\ntasks: []\n",
        "[".repeat(40_000),
        "]".repeat(40_000)
    );
    let request = post("/api/v1/projects/p/jobs", &key, "application/yaml", &deep);
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let (code, answer, _) = exchange("127.0.0.1", to, &request);
                    assert_eq!(code, 422, "{answer}");
                    assert!(answer.contains("nests deeper than 64 levels"), "{answer}");
                }
            })
        })
        .collect();
    let (worst, median) = healthz_latency("127.0.0.2", to, 20);
    for t in flood {
        t.join().unwrap();
    }
    let (rss, hwm) = memory(pid);
    eprintln!(
        "/healthz while 40 specs nested 40,000 deep were refused: worst {worst:?} median \
         {median:?}; VmRSS {}, VmHWM {}",
        mib(rss),
        mib(hwm)
    );
}
