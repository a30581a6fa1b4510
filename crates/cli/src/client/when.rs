//! Times as the client commands print them: how long ago, and how long.

use crate::progress::fmt_secs;

/// `12s ago`, `5m ago`, `3h ago`, `2d ago` (a clock behind the server's
/// reads as `just now`).
pub fn ago(at_ms: u64, now: u64) -> String {
    let s = now.saturating_sub(at_ms) / 1000;
    match s {
        0 => "just now".into(),
        1..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// A duration: `0.4s` under ten seconds, then `m:ss` or `h:mm:ss`.
pub fn took(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        fmt_secs(ms as f64 / 1000.0)
    }
}

/// From `start` to `end`, or to now while it runs (`1:02+`).
pub fn span(start: u64, end: Option<u64>, now: u64) -> String {
    match end {
        Some(end) => took(end.saturating_sub(start)),
        None => format!("{}+", took(now.saturating_sub(start))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = 100_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now + 5_000, now), "just now");
        assert_eq!(ago(now - 12_000, now), "12s ago");
        assert_eq!(ago(now - 300_000, now), "5m ago");
        assert_eq!(ago(now - 3 * 3_600_000, now), "3h ago");
        assert_eq!(ago(0, now), "1d ago");
        assert_eq!(took(420), "0.4s");
        assert_eq!(took(62_000), "1:02");
        assert_eq!(took(3_723_000), "1:02:03");
        assert_eq!(span(1_000, Some(3_500), now), "2.5s");
        assert_eq!(span(now - 75_000, None, now), "1:15+");
    }
}
