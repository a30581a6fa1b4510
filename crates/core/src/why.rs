//! Why a task has not started: a pure query over the scheduler's state.

use crate::fair::QuotaKind;
use crate::sched::{Job, Scheduler, Task};
use std::collections::HashMap;
use std::fmt;
use tessera_types::{Condition, JobId, Millis, ProjectId, TaskRef, TaskState};

/// At most this many open dependencies are named in a [`WaitReason`].
pub const MAX_NAMED: usize = 5;

/// A fan-in a task waits on: `open` of the `of` tasks `selector` matched
/// have not ended; the first few of those by name.
#[derive(Debug, Clone, PartialEq)]
pub struct FanInWait {
    pub selector: String,
    pub open: usize,
    pub of: usize,
    pub first: Vec<String>,
}

/// A job fan-in a job waits on: `open` of the `of` jobs `selector`
/// matched have not ended as `condition` needs; the first few of those
/// (`12 (split)`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobWait {
    pub selector: String,
    pub condition: Condition,
    pub open: usize,
    pub of: usize,
    pub first: Vec<String>,
}

/// What a waiting or ready task is waiting for.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitReason {
    /// Dependencies that have not ended. `count` tasks named alone (a
    /// selector that matches one task), the first few by name in `open`;
    /// then each fan-in over a selector that matches several tasks.
    Dependencies {
        count: usize,
        open: Vec<String>,
        fan_ins: Vec<FanInWait>,
    },
    /// Its job waits for other jobs (`JobSpec::after`): each open fan-in.
    Jobs(Vec<JobWait>),
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
            Self::Dependencies {
                count,
                open,
                fan_ins,
            } => {
                f.write_str("waiting for ")?;
                let mut sep = "";
                if *count > 0 {
                    let s = if *count == 1 { "y" } else { "ies" };
                    write!(f, "{count} dependenc{s}: ")?;
                    names(f, open, *count)?;
                    sep = "; ";
                }
                for w in fan_ins {
                    write!(
                        f,
                        "{sep}{} of {} tasks matching {}: ",
                        thousands(w.open),
                        thousands(w.of),
                        w.selector
                    )?;
                    names(f, &w.first, w.open)?;
                    sep = "; ";
                }
                Ok(())
            }
            Self::Jobs(waits) => {
                f.write_str("waiting for ")?;
                for (i, w) in waits.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    let verb = crate::after::verb(w.condition);
                    match w.first.as_slice() {
                        [only] if w.of == 1 => write!(f, "{sep}job {only} to {verb}")?,
                        first => {
                            write!(
                                f,
                                "{sep}{} of {} jobs matching {} to {verb}: ",
                                thousands(w.open),
                                thousands(w.of),
                                w.selector
                            )?;
                            names(f, first, w.open)?;
                        }
                    }
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

/// `names`, then "…" when there are more than it holds.
fn names(f: &mut fmt::Formatter<'_>, names: &[String], of: usize) -> fmt::Result {
    f.write_str(&names.join(", "))?;
    if of > names.len() {
        f.write_str(", …")?;
    }
    Ok(())
}

/// 2998 as "2,998".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Scheduler {
    /// Why `task` has not started, as of `now`; `None` when it is not
    /// waiting or ready (running, ended, or unknown). Changes nothing.
    pub fn why_waiting(&self, task: TaskRef, now: Millis) -> Option<WaitReason> {
        self.why(task, now, &mut HashMap::new())
    }

    /// What `job` waits for while its job dependencies hold it back
    /// (`None` once released, or for a job without any, or one it does not
    /// hold). Its waiting tasks give the same reason.
    pub fn why_job_waiting(&self, job: JobId) -> Option<WaitReason> {
        let j = self.jobs.get(&job).filter(|j| j.gated)?;
        let waits = j
            .after
            .iter()
            .filter(|f| f.barrier.open > 0)
            .map(|f| JobWait {
                selector: f.selector.clone(),
                condition: f.barrier.condition,
                open: f.barrier.open as usize,
                of: f.members.len(),
                first: f
                    .members
                    .iter()
                    .filter(|&&p| self.parent_end(p).is_none())
                    .take(MAX_NAMED)
                    .map(|&p| match self.jobs.get(&p) {
                        Some(pj) => format!("{p} ({})", pj.name),
                        None => p.to_string(),
                    })
                    .collect(),
            })
            .collect();
        Some(WaitReason::Jobs(waits))
    }

    /// [`why_waiting`](Self::why_waiting) for every waiting or ready task
    /// of `job`, in index order (empty for a job it does not hold). Each
    /// fan-in's open members are looked up once, however many tasks wait
    /// on it.
    pub fn why_waiting_job(&self, job: JobId, now: Millis) -> Vec<(u32, WaitReason)> {
        let Some(j) = self.jobs.get(&job) else {
            return Vec::new();
        };
        if let Some(why) = self.why_job_waiting(job) {
            return (0..j.tasks.len() as u32)
                .filter(|&i| j.tasks[i as usize].state == TaskState::Waiting)
                .map(|i| (i, why.clone()))
                .collect();
        }
        let mut seen = HashMap::new();
        (0..j.tasks.len() as u32)
            .filter_map(|i| Some((i, self.why(TaskRef::new(job, i), now, &mut seen)?)))
            .collect()
    }

    fn why(&self, task: TaskRef, now: Millis, seen: &mut Seen) -> Option<WaitReason> {
        let job = self.jobs.get(&task.job)?;
        let t = job.tasks.get(task.index as usize)?;
        match t.state {
            TaskState::Waiting if job.gated => return self.why_job_waiting(task.job),
            TaskState::Waiting => return Some(self.dependencies(job, t, seen)),
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

    /// What a waiting task's open fan-ins are waiting for.
    fn dependencies(&self, job: &Job, t: &Task, seen: &mut Seen) -> WaitReason {
        let mut single: Vec<u32> = Vec::new();
        let mut fan_ins = Vec::new();
        for &f in &t.waits_on {
            let fan = &job.fan_ins[f as usize];
            if fan.barrier.open == 0 {
                continue;
            }
            if let [only] = *fan.members {
                single.push(only);
                continue;
            }
            let w = seen.entry(f).or_insert_with(|| FanInWait {
                selector: job.selector(fan),
                open: fan.barrier.open as usize,
                of: fan.members.len(),
                first: fan
                    .members
                    .iter()
                    .map(|&m| &job.tasks[m as usize])
                    .filter(|m| !m.state.is_terminal())
                    .take(MAX_NAMED)
                    .map(|m| m.spec.name.clone())
                    .collect(),
            });
            fan_ins.push(w.clone());
        }
        single.sort_unstable();
        single.dedup();
        WaitReason::Dependencies {
            count: single.len(),
            open: single
                .iter()
                .take(MAX_NAMED)
                .map(|&p| job.tasks[p as usize].spec.name.clone())
                .collect(),
            fan_ins,
        }
    }
}

/// Fan-ins already described during one call, by index.
type Seen = HashMap<u32, FanInWait>;
