//! Talking to `serve` over real loopback TCP, from chosen source addresses
//! (any 127.x.y.z is this machine), byte by byte when a test needs to.

use crate::harness::Server;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// The longest any wait on the server in these tests may take (a loaded
/// 2-core machine included); waits end as soon as what they wait for is
/// seen.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `serve` on a free loopback port, stopped when dropped.
pub struct Listening {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Listening {
    pub async fn start(s: &Server) -> Listening {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tessera_api::serve(listener, s.state.clone(), async move {
            let _ = stopped.await;
        }));
        Listening {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Begins the shutdown; the task ends once the drain is over.
    pub fn stop(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("stopped once")
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A connection to `to` from the loopback address `from` (e.g. 127.0.0.2).
pub async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset); what it
/// sent, or a panic after [`PATIENCE`].
pub async fn until_closed(conn: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: still open after {PATIENCE:?}");
    got
}

/// One request with `Connection: close` from `from`: the whole answer and
/// how long it took.
pub async fn request(from: &str, to: SocketAddr, head: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut conn = connect_from(from, to).await;
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut conn, head).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// `GET /healthz` from `from`: its status line and how long it took.
pub async fn healthz(from: &str, to: SocketAddr) -> (String, Duration) {
    let (answer, took) = request(
        from,
        to,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    (answer.lines().next().unwrap_or("").to_string(), took)
}

/// The value of the exposition line that starts with `series` (name and
/// labels), read in-process with the admin's key.
pub async fn metric(s: &Server, series: &str) -> f64 {
    let text = s.get("/metrics", &s.admin_key).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}

/// Waits (at most [`PATIENCE`]) until `series` has value `want`.
pub async fn wait_metric(s: &Server, series: &str, want: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = metric(s, series).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
