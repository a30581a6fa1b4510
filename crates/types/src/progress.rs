//! A task reports progress by printing lines of the form
//! `#tessera-progress <done> <total>` on its standard output. The executor
//! recognises them and turns them into progress events; everything else on
//! stdout is ordinary log output.

/// The prefix that marks a progress line.
pub const PROGRESS_PREFIX: &str = "#tessera-progress ";

/// Units of work done out of a total (frames for encodes). `total` may be 0
/// when unknown.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// The line a task prints to report progress (without the newline).
pub fn progress_line(p: Progress) -> String {
    format!("{PROGRESS_PREFIX}{} {}", p.done, p.total)
}

/// Parses a progress line; `None` for any other line.
pub fn parse_progress_line(line: &str) -> Option<Progress> {
    let rest = line.trim_end().strip_prefix(PROGRESS_PREFIX)?;
    let mut it = rest.split_ascii_whitespace();
    let done = it.next()?.parse().ok()?;
    let total = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(Progress { done, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_round_trip_and_reject_noise() {
        let p = Progress {
            done: 12,
            total: 340,
        };
        assert_eq!(parse_progress_line(&progress_line(p)), Some(p));
        assert_eq!(
            parse_progress_line("#tessera-progress 1 2\n"),
            Some(Progress { done: 1, total: 2 })
        );
        assert_eq!(parse_progress_line("frame=12"), None);
        assert_eq!(parse_progress_line("#tessera-progress x 2"), None);
        assert_eq!(parse_progress_line("#tessera-progress 1 2 3"), None);
    }
}
