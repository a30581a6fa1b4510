//! Closed status enums with stable string forms (for the database and the
//! API) and the one function that says which task transitions are legal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a task is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Some dependency has not ended yet.
    Waiting,
    /// Dependencies met; queued for a slot (possibly backing off before a retry).
    Ready,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// A dependency ended in a way this task's condition rejects; it will not run.
    Skipped,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Waiting,
        TaskState::Ready,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Skipped,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }

    /// The one place that says which moves are legal.
    pub fn transition(self, to: TaskState) -> Result<TaskState, TransitionError> {
        use TaskState::*;
        let ok = match (self, to) {
            (Waiting, Ready | Skipped | Cancelled) => true,
            (Ready, Running | Cancelled) => true,
            // Running -> Ready is a retry (after a failure or a lost attempt).
            (Running, Succeeded | Failed | Cancelled | Ready) => true,
            // A user may retry what ended badly; it waits for its dependencies again.
            (Failed | Cancelled | Skipped, Waiting) => true,
            _ => false,
        };
        if ok {
            Ok(to)
        } else {
            Err(TransitionError {
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

/// Where a job is in its life. Suspension is a flag beside this, not a state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition from {from} to {to}")]
pub struct TransitionError {
    pub from: &'static str,
    pub to: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct ParseStateError(pub String);

macro_rules! string_forms {
    ($ty:ty, [$($v:ident),*]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = ParseStateError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s == <$ty>::$v.as_str() { return Ok(<$ty>::$v); })*
                Err(ParseStateError(s.to_string()))
            }
        }
    };
}

string_forms!(
    TaskState,
    [Waiting, Ready, Running, Succeeded, Failed, Cancelled, Skipped]
);
string_forms!(JobState, [Pending, Running, Succeeded, Failed, Cancelled]);

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    /// The program failed: a non-zero exit, a signal, or it could not start.
    Failed {
        message: String,
    },
    /// Killed for running past its time limit.
    TimedOut,
    /// Killed because the task or its job was cancelled.
    Cancelled,
    /// Nobody knows how it ended (the scheduler or its node went away). Does
    /// not count against the task's retries.
    Lost {
        reason: String,
    },
}

impl AttemptOutcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed { .. } => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Lost { .. } => "lost",
        }
    }

    /// A one-line description for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Succeeded => "succeeded".into(),
            Self::Failed { message } => format!("failed: {message}"),
            Self::TimedOut => "killed: time limit reached".into(),
            Self::Cancelled => "killed: cancelled".into(),
            Self::Lost { reason } => format!("lost: {reason}"),
        }
    }
}

/// What an attempt cost.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptUsage {
    pub wall_ms: u64,
    /// User + system CPU time of the attempt's process tree (as far as the
    /// executor can see it).
    pub cpu_ms: u64,
    pub max_rss_kb: u64,
    /// Time a worker without the shared filesystem spent fetching the
    /// attempt's inputs and sending back its outputs (0 elsewhere).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transfer_ms: u64,
    /// Bytes it fetched and sent for the attempt (cache hits excluded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transfer_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_strings_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>(), Ok(s));
        }
        assert!("bogus".parse::<JobState>().is_err());
    }

    #[test]
    fn illegal_moves_are_refused() {
        use TaskState::*;
        assert!(Waiting.transition(Running).is_err());
        assert!(Succeeded.transition(Ready).is_err());
        assert!(Running.transition(Ready).is_ok());
        let legal = TaskState::ALL
            .iter()
            .flat_map(|a| TaskState::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.transition(*b).is_ok())
            .count();
        assert_eq!(legal, 12);
    }
}

/// A user's role in a project. Owners manage members and keys; members
/// submit and control jobs; viewers read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Member,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Owner => "owner",
        }
    }

    /// Whether this role may do what `needed` may (owner > member > viewer).
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

string_forms!(Role, [Viewer, Member, Owner]);
