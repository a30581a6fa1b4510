//! What one client may hold of the server: the connection and request
//! limits, each a named default with its reason, set in one place
//! ([`HttpLimits`]) and changed by the operator through `tessera server`'s
//! configuration (`[http]` in the file, `TESSERA_HTTP_*`, `--http-*`).

use std::time::Duration;

/// Time a client has to send a request's headers once the server waits
/// for them: a new connection's first request, and each next request on a
/// kept-alive connection (so it is also how long an idle kept-alive
/// connection stays open). A browser or `tessera worker` sends its headers
/// in one packet; 20 s covers a slow mobile link, and a connection that
/// says nothing is closed instead of holding a file descriptor forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Time a request body may go without sending a byte while the server
/// waits for it. Uploads (up to 8 GiB) may take as long as they like as
/// long as they keep sending; one that stops is cut off (408) and what it
/// sent is removed.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Time from a request's headers to its response's headers, for every
/// route but the streamed uploads (which [`BODY_IDLE_TIMEOUT`] guards
/// instead). The longest legitimate wait is a worker's lease long-poll
/// (30 s) or a 64 MiB DAG over a slow link; 120 s bounds a body trickled
/// a byte at a time. Event streams and followed logs are not affected:
/// their response headers go out at once and the stream that follows is
/// long-lived by design (see [`WRITE_STALL_TIMEOUT`], [`TCP_KEEPALIVE`]).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Time a response write may make no progress (the client stopped reading,
/// or vanished behind a full send buffer) before the connection is closed.
/// Event streams write a keep-alive comment every 15 s, so a dead client
/// of a stream is noticed within this plus 15 s.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// TCP keep-alive probes on every connection: idle time before the first
/// probe, then one every interval, [`TCP_KEEPALIVE_PROBES`] unanswered
/// probes close it. Notices a client that vanished without a word (power
/// cut, network gone) on connections that write nothing for a long time,
/// such as a followed log of a quiet task: about 2 minutes.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
pub const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const TCP_KEEPALIVE_PROBES: u32 = 4;

/// Open connections from one client address (an IPv6 client: its /64) at
/// most. A browser opens 6 per server, a worker 2 or 3; 64 leaves room for
/// a few people behind one NAT while a single host can no longer take
/// every file descriptor. Over it, a new connection gets a 503 and is
/// closed.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;

/// Open connections in all at most (lowered at start to what the process's
/// file descriptor limit allows, leaving room for the database, logs and
/// tasks). Over it, a new connection gets a 503 and is closed.
pub const MAX_CONNECTIONS: usize = 4096;

/// Bytes of a request's head (request line, query string included, and
/// headers) at most; larger is answered 431 by hyper. hyper also refuses
/// more than 100 header fields (431).
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// The connection and request limits of one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub request_timeout: Duration,
    pub write_stall_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_idle_timeout: BODY_IDLE_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            write_stall_timeout: WRITE_STALL_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

impl HttpLimits {
    /// Refuses limits that would stop the server from working at all.
    pub fn check(&self) -> Result<(), String> {
        let timeouts = [
            ("header_read_timeout", self.header_read_timeout),
            ("body_idle_timeout", self.body_idle_timeout),
            ("request_timeout", self.request_timeout),
            ("write_stall_timeout", self.write_stall_timeout),
        ];
        for (name, t) in timeouts {
            if t.is_zero() {
                return Err(format!("http {name} must be more than 0"));
            }
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return Err(
                "http max_connections and max_connections_per_address must be at least 1".into(),
            );
        }
        Ok(())
    }
}
