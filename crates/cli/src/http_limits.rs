//! The `[http]` section of `tessera server`'s configuration: connection and
//! request limits (`tessera_api::limits` has each default and its reason).
//! Precedence as everywhere: defaults < file < environment < flags.

use crate::fail::{Failure, Result};
use clap::Args;
use serde::Deserialize;
use std::time::Duration;
use tessera_api::HttpLimits;

/// File descriptors kept back from connections for the database, logs,
/// the spawner and the tasks' pipes.
const FD_RESERVE: u64 = 256;

#[derive(Args, Debug, Default, Clone)]
pub struct HttpArgs {
    /// Milliseconds a client has to send a request's headers (also how long
    /// an idle kept-alive connection stays open) [default: 20000].
    #[arg(long, env = "TESSERA_HTTP_HEADER_TIMEOUT_MS", value_name = "MS")]
    pub http_header_timeout_ms: Option<u64>,
    /// Milliseconds a request body may send nothing before it is cut off
    /// (408) [default: 30000].
    #[arg(long, env = "TESSERA_HTTP_BODY_IDLE_MS", value_name = "MS")]
    pub http_body_idle_ms: Option<u64>,
    /// Milliseconds from a request's headers to its response's, for every
    /// route but uploads (408 beyond) [default: 120000].
    #[arg(long, env = "TESSERA_HTTP_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub http_request_timeout_ms: Option<u64>,
    /// Milliseconds a response write may make no progress before the
    /// connection is closed [default: 60000].
    #[arg(long, env = "TESSERA_HTTP_WRITE_STALL_MS", value_name = "MS")]
    pub http_write_stall_ms: Option<u64>,
    /// Open connections at most (lowered to what the file descriptor limit
    /// allows) [default: 4096].
    #[arg(long, env = "TESSERA_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// Open connections from one client address (IPv6: one /64) at most
    /// [default: 64].
    #[arg(long, env = "TESSERA_HTTP_MAX_PER_ADDRESS", value_name = "N")]
    pub http_max_per_address: Option<usize>,
}

/// `[http]` in the configuration file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    header_timeout_ms: Option<u64>,
    body_idle_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    write_stall_ms: Option<u64>,
    max_connections: Option<usize>,
    max_per_address: Option<usize>,
}

/// Flags and environment over the file over the defaults.
pub fn resolve(args: &HttpArgs, file: &HttpFile) -> Result<HttpLimits> {
    let d = HttpLimits::default();
    let ms = |flag: Option<u64>, file: Option<u64>, default: Duration| {
        flag.or(file).map_or(default, Duration::from_millis)
    };
    let limits = HttpLimits {
        header_read_timeout: ms(
            args.http_header_timeout_ms,
            file.header_timeout_ms,
            d.header_read_timeout,
        ),
        body_idle_timeout: ms(
            args.http_body_idle_ms,
            file.body_idle_ms,
            d.body_idle_timeout,
        ),
        request_timeout: ms(
            args.http_request_timeout_ms,
            file.request_timeout_ms,
            d.request_timeout,
        ),
        write_stall_timeout: ms(
            args.http_write_stall_ms,
            file.write_stall_ms,
            d.write_stall_timeout,
        ),
        max_connections: args
            .http_max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections),
        max_connections_per_address: args
            .http_max_per_address
            .or(file.max_per_address)
            .unwrap_or(d.max_connections_per_address),
    };
    limits.check().map_err(Failure::input)?;
    Ok(limits)
}

/// Raises this process's file descriptor limit to its hard limit and
/// lowers `limits.max_connections` to what it leaves after [`FD_RESERVE`];
/// a line saying so when it had to.
pub fn fit_to_descriptors(limits: &mut HttpLimits) -> Option<String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    let room = lim.rlim_cur.saturating_sub(FD_RESERVE).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    (limits.max_connections > room).then(|| {
        let line = format!(
            "http max_connections lowered from {} to {room}: the file descriptor limit is {} \
             (raise it with ulimit -n or LimitNOFILE=)",
            limits.max_connections, lim.rlim_cur
        );
        limits.max_connections = room;
        line
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let file: HttpFile =
            toml::from_str("header_timeout_ms = 5000\nmax_per_address = 8\n").unwrap();
        let args = HttpArgs {
            http_max_per_address: Some(3),
            ..Default::default()
        };
        let limits = resolve(&args, &file).unwrap();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(5));
        assert_eq!(limits.max_connections_per_address, 3);
        assert_eq!(
            limits.body_idle_timeout,
            tessera_api::limits::BODY_IDLE_TIMEOUT
        );
        let zero = HttpArgs {
            http_body_idle_ms: Some(0),
            ..Default::default()
        };
        let err = resolve(&zero, &HttpFile::default()).unwrap_err();
        assert_eq!(err.message, "http body_idle_timeout must be more than 0");
        assert!(toml::from_str::<HttpFile>("header_timeout = 1\n").is_err());
    }

    #[test]
    fn the_sample_configs_http_section_spells_the_defaults() {
        let sample = include_str!("../../../tessera.sample.toml");
        let section: String = sample
            .lines()
            .skip_while(|l| *l != "# [http]")
            .skip(1)
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(section.lines().count(), 6, "{section}");
        let file: HttpFile = toml::from_str(&section).unwrap();
        let limits = resolve(&HttpArgs::default(), &file).unwrap();
        assert_eq!(limits, HttpLimits::default());
    }
}
