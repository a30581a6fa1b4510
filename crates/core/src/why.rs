//! Why a task has not started: a pure query over the scheduler's state.

use crate::fair::QuotaKind;
use crate::sched::Scheduler;
use std::fmt;
use tessera_types::{Millis, ProjectId, TaskRef, TaskState};

/// At most this many open dependencies are named in a [`WaitReason`].
pub const MAX_NAMED: usize = 5;

/// What a waiting or ready task is waiting for.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitReason {
    /// Dependencies that have not ended: how many, and the first few names.
    Dependencies { count: usize, open: Vec<String> },
    /// A retry is backing off until then.
    BackingOff { until: Millis },
    /// The scheduler starts nothing new (draining or interrupted).
    Paused,
    /// Its job is suspended: nothing of it starts until it is resumed.
    Suspended,
    /// Its project is at a quota limit; the project waits, others go on.
    /// `used` and `limit` are cpu slots, MiB, or cpu-ms within the window.
    Quota {
        project: Option<ProjectId>,
        what: QuotaKind,
        used: u64,
        limit: u64,
    },
    /// Not enough cpu slots free.
    NoSlot { free: u32, needed: u32 },
    /// Slots and quota allow it, but other ready tasks go first: higher
    /// priority in its project, or a fairer project's task waiting for slots.
    Queued,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dependencies { count, open } => {
                let s = if *count == 1 { "y" } else { "ies" };
                write!(f, "waiting for {count} dependenc{s}: {}", open.join(", "))?;
                if *count > open.len() {
                    f.write_str(", …")?;
                }
                Ok(())
            }
            Self::BackingOff { until } => write!(f, "backing off before a retry until {until}"),
            Self::Paused => f.write_str("the scheduler is paused"),
            Self::Suspended => f.write_str("its job is suspended"),
            Self::Quota {
                project,
                what,
                used,
                limit,
            } => {
                match project {
                    Some(p) => write!(f, "project {p}")?,
                    None => f.write_str("the default project")?,
                }
                match what {
                    QuotaKind::Cpu => write!(f, " is at its cpu quota ({used} of {limit})"),
                    QuotaKind::Memory => {
                        write!(f, " is at its memory quota ({used} of {limit} MiB)")
                    }
                    QuotaKind::CpuTime => write!(
                        f,
                        " is at its cpu-time quota ({:.1} of {:.1} cpu-seconds this window)",
                        *used as f64 / 1000.0,
                        *limit as f64 / 1000.0
                    ),
                }
            }
            Self::NoSlot { free, needed } => {
                write!(f, "no slot free: it needs {needed} cpu, {free} free")
            }
            Self::Queued => f.write_str("queued behind other ready tasks"),
        }
    }
}

impl Scheduler {
    /// Why `task` has not started, as of `now`; `None` when it is not
    /// waiting or ready (running, ended, or unknown). Changes nothing.
    pub fn why_waiting(&self, task: TaskRef, now: Millis) -> Option<WaitReason> {
        let job = self.jobs.get(&task.job)?;
        let t = job.tasks.get(task.index as usize)?;
        match t.state {
            TaskState::Waiting => {
                let mut open: Vec<u32> = t
                    .parents
                    .iter()
                    .map(|&(p, _)| p)
                    .filter(|&p| !job.tasks[p as usize].state.is_terminal())
                    .collect();
                open.sort_unstable();
                open.dedup();
                let names = open
                    .iter()
                    .take(MAX_NAMED)
                    .map(|&p| job.tasks[p as usize].spec.name.clone())
                    .collect();
                return Some(WaitReason::Dependencies {
                    count: open.len(),
                    open: names,
                });
            }
            TaskState::Ready => {}
            _ => return None,
        }
        if t.not_before > now {
            return Some(WaitReason::BackingOff {
                until: t.not_before,
            });
        }
        if self.paused {
            return Some(WaitReason::Paused);
        }
        if job.suspended {
            return Some(WaitReason::Suspended);
        }
        let proj = &self.projects[job.project];
        // Its own needs first, then the head of its project's queue: a
        // project whose next task is held by its quota waits as a whole.
        let own = (t.spec.resources.cpu, t.spec.resources.memory_mb);
        let head = proj
            .queue
            .iter()
            .filter(|q| {
                self.task(q.task)
                    .is_some_and(|h| h.state == TaskState::Ready && h.queued == q.seq.0)
            })
            .max()
            .and_then(|q| self.task(q.task))
            .map(|h| (h.spec.resources.cpu, h.spec.resources.memory_mb));
        for (cpu, mem) in std::iter::once(own).chain(head) {
            if let Some((what, used, limit)) = proj.over_quota(cpu, mem, now, &self.policy) {
                return Some(WaitReason::Quota {
                    project: proj.id,
                    what,
                    used,
                    limit,
                });
            }
        }
        let free = self.capacity - self.used.min(self.capacity);
        if free < own.0 {
            return Some(WaitReason::NoSlot {
                free,
                needed: own.0,
            });
        }
        Some(WaitReason::Queued)
    }
}
