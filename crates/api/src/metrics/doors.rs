//! Counters of the server's doors: connections open and refused, requests
//! cut off by a timeout, argon2 verifications run and key checks refused
//! (throttled, or the verifier's queue full), spec parses refused.

use super::family;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_service::Secret;

/// A timeout that ended a request or a connection.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Timeout {
    /// No complete request head in time.
    Header,
    /// A request body that stopped sending.
    Body,
    /// No response head within the request deadline.
    Request,
    /// A response write that made no progress.
    Write,
}

#[derive(Default)]
pub(crate) struct Doors {
    open: AtomicU64,
    refused_address: AtomicU64,
    refused_server: AtomicU64,
    timeouts: [AtomicU64; 4],
    /// Per [`Secret`]: argon2 runs, checks refused for failures, refused busy.
    argon2: [AtomicU64; 3],
    throttled: [AtomicU64; 3],
    busy: [AtomicU64; 3],
    spec_busy: AtomicU64,
}

fn bump(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

impl Doors {
    pub(crate) fn opened(&self) {
        bump(&self.open);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, per_address: bool) {
        bump(if per_address {
            &self.refused_address
        } else {
            &self.refused_server
        });
    }

    pub(crate) fn timed_out(&self, kind: Timeout) {
        bump(&self.timeouts[kind as usize]);
    }

    pub(crate) fn argon2_run(&self, secret: Secret) {
        bump(&self.argon2[secret as usize]);
    }

    pub(crate) fn throttled(&self, secret: Secret) {
        bump(&self.throttled[secret as usize]);
    }

    pub(crate) fn verifier_busy(&self, secret: Secret) {
        bump(&self.busy[secret as usize]);
    }

    pub(crate) fn spec_busy(&self) {
        bump(&self.spec_busy);
    }

    pub(crate) fn render(&self, out: &mut String) {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        family(
            out,
            "tessera_http_connections_open",
            "gauge",
            "HTTP connections open now.",
        );
        let _ = writeln!(out, "tessera_http_connections_open {}", get(&self.open));
        family(
            out,
            "tessera_http_connections_refused_total",
            "counter",
            "HTTP connections refused (503) because their address or the server held the most allowed.",
        );
        for (reason, n) in [
            ("per_address", &self.refused_address),
            ("server", &self.refused_server),
        ] {
            let _ = writeln!(
                out,
                "tessera_http_connections_refused_total{{reason=\"{reason}\"}} {}",
                get(n)
            );
        }
        family(
            out,
            "tessera_http_timeouts_total",
            "counter",
            "Requests or connections ended by a timeout, by which: header read, body idle, request deadline, stalled write.",
        );
        for (kind, n) in ["header", "body", "request", "write"]
            .iter()
            .zip(&self.timeouts)
        {
            let _ = writeln!(
                out,
                "tessera_http_timeouts_total{{kind=\"{kind}\"}} {}",
                get(n)
            );
        }
        let secrets = ["user_key", "worker_token", "new_key"];
        for (name, help, counts) in [
            (
                "tessera_auth_argon2_total",
                "argon2 runs, by what for: checking a user key or a worker token, hashing a new key.",
                &self.argon2,
            ),
            (
                "tessera_auth_throttled_total",
                "Secret checks refused (429) after too many wrong secrets for one prefix.",
                &self.throttled,
            ),
            (
                "tessera_auth_busy_total",
                "Secret checks refused (503) because the verifier's queue was full.",
                &self.busy,
            ),
        ] {
            family(out, name, "counter", help);
            for (kind, n) in secrets.iter().zip(counts) {
                let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {}", get(n));
            }
        }
        family(
            out,
            "tessera_spec_parse_busy_total",
            "counter",
            "Job spec submissions refused (503) because the spec parser's queue was full.",
        );
        let _ = writeln!(
            out,
            "tessera_spec_parse_busy_total {}",
            get(&self.spec_busy)
        );
    }
}
