//! A container's state, read from its job: what `docker ps` and `docker
//! inspect` show, and the exit code `docker wait` gives.
//!
//! | job / task                         | `State.Status` | exit code |
//! |------------------------------------|----------------|-----------|
//! | waiting for its `waitfor`s, queued, being started | `created` | - |
//! | running                            | `running`      | -         |
//! | suspended                          | `paused`       | -         |
//! | ended, its program exited N        | `exited`       | N         |
//! | killed, stopped, removed by force  | `exited`       | 137       |
//! | a dependency failed: never started | `exited`       | [`NEVER_RAN`] |

use tessera_store::{AttemptRecord, JobRecord, TaskRecord};
use tessera_types::{AttemptOutcome, JobState, Millis, TaskState};

/// The exit code of a container that never ran because a container it
/// waits for did not end as it must (`State.Error` names which): 125,
/// the code the docker CLI uses when the engine could not run a container.
pub const NEVER_RAN: i64 = 125;

/// The exit code of a container killed (`docker kill`, `stop`, `rm -f`):
/// 128 + SIGKILL, as the engine reports it.
pub const KILLED: i64 = 137;

/// A container: its job, its one task and that task's latest attempt.
#[derive(Clone, Debug)]
pub struct Container {
    pub job: JobRecord,
    pub task: TaskRecord,
    /// Its first attempt (when it first started).
    pub first: Option<AttemptRecord>,
    /// Its latest attempt.
    pub last: Option<AttemptRecord>,
    /// What it waits for, while its dependencies hold it back.
    pub waiting: Option<String>,
}

impl Container {
    /// The container's id as the API gives it: its job's id.
    pub fn id(&self) -> String {
        self.job.id.to_string()
    }

    /// `created`, `running`, `paused` or `exited`.
    pub fn status(&self) -> &'static str {
        match self.job.state {
            JobState::Running
                if self.task.state == TaskState::Running && self.process_started() =>
            {
                if self.job.suspended {
                    "paused"
                } else {
                    "running"
                }
            }
            JobState::Pending | JobState::Running => "created",
            _ => "exited",
        }
    }

    /// Whether the latest attempt's process has started (the executor
    /// reported it): a container is `running` from then, not from when
    /// the scheduler handed it to the executor.
    fn process_started(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|a| a.is_open() && a.pid.is_some())
    }

    /// Whether `docker ps` without `-a` lists it: running, paused, or
    /// created and on its way (waiting or queued).
    pub fn is_live(&self) -> bool {
        !self.job.state.is_terminal()
    }

    /// The exit code, once it has ended.
    pub fn exit_code(&self) -> Option<i64> {
        if !self.job.state.is_terminal() {
            return None;
        }
        if self.task.state == TaskState::Skipped {
            return Some(NEVER_RAN);
        }
        Some(match self.last.as_ref().and_then(|a| a.outcome.as_ref()) {
            Some(AttemptOutcome::Succeeded) => 0,
            Some(AttemptOutcome::Failed { message }) => status_in(message).unwrap_or(1),
            Some(AttemptOutcome::Cancelled | AttemptOutcome::TimedOut) => KILLED,
            Some(AttemptOutcome::Lost { .. }) | None => {
                if self.job.state == JobState::Succeeded {
                    0
                } else if self.job.state == JobState::Cancelled {
                    KILLED
                } else {
                    1
                }
            }
        })
    }

    /// Why it ended as it did, when that was not its own exit.
    pub fn error(&self) -> String {
        if self.task.state == TaskState::Skipped {
            let why = self.task.reason.as_deref().unwrap_or("a dependency failed");
            return format!("never started: {why}");
        }
        match self.last.as_ref().and_then(|a| a.outcome.as_ref()) {
            Some(AttemptOutcome::Failed { message }) if status_in(message).is_none() => {
                message.clone()
            }
            _ => String::new(),
        }
    }

    pub fn started_at(&self) -> Option<Millis> {
        self.last.as_ref().map(|a| a.started_at)
    }

    pub fn finished_at(&self) -> Option<Millis> {
        if !self.job.state.is_terminal() {
            return None;
        }
        self.last
            .as_ref()
            .and_then(|a| a.ended_at)
            .or(self.job.finished_at)
    }

    /// `docker ps`'s STATUS column, as the engine words it, and what a
    /// waiting container waits for.
    pub fn status_line(&self, now: Millis) -> String {
        let ago = |t: Option<Millis>| human(now.saturating_sub(t.unwrap_or(now)));
        match self.status() {
            "running" => format!("Up {}", ago(self.started_at())),
            "paused" => format!("Up {} (Paused)", ago(self.started_at())),
            "created" => match &self.waiting {
                Some(w) => format!(
                    "Waiting for {}",
                    w.strip_prefix("waiting for ").unwrap_or(w)
                ),
                None if self.task.state == TaskState::Running => "Starting".into(),
                None => "Created (queued for a slot)".into(),
            },
            _ => format!(
                "Exited ({}) {} ago",
                self.exit_code().unwrap_or(-1),
                ago(self.finished_at())
            ),
        }
    }
}

/// The status in an executor's "exited with status N..." message.
fn status_in(message: &str) -> Option<i64> {
    let rest = message.split("exited with status ").nth(1)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// A duration as the engine writes it in `docker ps` ("3 seconds",
/// "About a minute", "5 minutes", "2 hours", "3 days").
pub fn human(ms: Millis) -> String {
    let s = ms / 1000;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// A time as Docker writes it (RFC 3339, UTC, nanoseconds: fixed width, so
/// two such strings compare as their times do); `None` is Go's zero time.
pub fn rfc3339(t: Option<Millis>) -> String {
    let Some(ms) = t else {
        return "0001-01-01T00:00:00Z".into();
    };
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        milli * 1_000_000
    )
}

/// The calendar date of a day counted from 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_fixed_width_nanoseconds() {
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(Some(1_700_000_000_123)),
            "2023-11-14T22:13:20.123000000Z"
        );
        assert_eq!(
            rfc3339(Some(951_782_400_000)),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn exit_statuses_are_read_from_the_executors_words() {
        assert_eq!(status_in("exited with status 3: oops"), Some(3));
        assert_eq!(status_in("exited with status 42"), Some(42));
        assert_eq!(status_in("cannot start sh: not found"), None);
    }

    #[test]
    fn durations_read_as_docker_ps_writes_them() {
        assert_eq!(human(500), "Less than a second");
        assert_eq!(human(3_000), "3 seconds");
        assert_eq!(human(90_000), "About a minute");
        assert_eq!(human(7_200_000), "2 hours");
    }
}
