//! Projects: quotas, usage, and the accounts fair share reads.
//!
//! Every job belongs to a project (jobs of no project share one implicit
//! project). Each project keeps its own ready queue (see `dispatch.rs`) and
//! its own accounts: what it runs now (cpu, memory), its recent usage
//! (cpu-milliseconds with exponential decay, computed from the `now` passed
//! in) and the cpu time its attempts used within the quota window.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use tessera_types::{AttemptUsage, JobId, Millis, ProjectId, TaskRef};

/// How fair share and quotas measure time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Recent usage halves every this many ms (fair share's memory).
    pub usage_half_life_ms: Millis,
    /// The window `Quota::cpu_ms_per_window` counts over.
    pub quota_window_ms: Millis,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            usage_half_life_ms: 10 * 60 * 1000,
            quota_window_ms: 60 * 60 * 1000,
        }
    }
}

/// Limits on one project (`cpu_ms_per_window` counts over
/// [`Policy::quota_window_ms`]).
pub use tessera_types::Quota;

/// Which limit of a [`Quota`] holds a project back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    Cpu,
    Memory,
    CpuTime,
}

impl QuotaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::CpuTime => "cpu-time",
        }
    }
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A project's accounts, as of a given `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProjectUsage {
    pub running_cpu: u32,
    pub running_memory_mb: u64,
    /// Recent cpu-milliseconds, decayed (what fair share compares).
    pub decayed_cpu_ms: f64,
    /// Cpu-milliseconds charged within the quota window.
    pub window_cpu_ms: u64,
}

/// What an ended attempt is charged: its cpu time, or (when the executor
/// could not measure it) its wall time times the cpu slots it held.
pub(crate) fn charge(usage: &AttemptUsage, cpu: u32) -> u64 {
    if usage.cpu_ms > 0 {
        usage.cpu_ms
    } else {
        usage.wall_ms.saturating_mul(u64::from(cpu))
    }
}

#[derive(PartialEq, Eq)]
pub(crate) struct Queued {
    pub(crate) priority: i32,
    pub(crate) job: Reverse<JobId>,
    pub(crate) seq: Reverse<u64>,
    pub(crate) task: TaskRef,
}

impl Ord for Queued {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.priority, self.job, self.seq).cmp(&(o.priority, o.job, o.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

pub(crate) struct Project {
    pub(crate) id: Option<ProjectId>,
    pub(crate) quota: Quota,
    pub(crate) weight: f64,
    /// Ready tasks; entries whose task moved on are stale and skipped.
    pub(crate) queue: BinaryHeap<Queued>,
    pub(crate) running_cpu: u32,
    pub(crate) running_memory_mb: u64,
    /// Sum of cpu × start time over running attempts: with `running_cpu`
    /// it gives the cpu-ms they have used so far in O(1).
    running_since: u128,
    /// Decayed cpu-ms as of `usage_at`.
    usage: f64,
    usage_at: Millis,
    /// Charges (end time, cpu-ms) still inside the quota window, oldest first.
    window: VecDeque<(Millis, u64)>,
    window_sum: u64,
}

impl Project {
    pub(crate) fn new(id: Option<ProjectId>) -> Self {
        Self {
            id,
            quota: Quota::default(),
            weight: 1.0,
            queue: BinaryHeap::new(),
            running_cpu: 0,
            running_memory_mb: 0,
            running_since: 0,
            usage: 0.0,
            usage_at: 0,
            window: VecDeque::new(),
            window_sum: 0,
        }
    }

    pub(crate) fn occupy(&mut self, cpu: u32, memory_mb: u64, since: Millis) {
        // Saturating: specs are checked (MAX_MEMORY_MB), but a job restored
        // from before the check may ask for anything.
        self.running_cpu = self.running_cpu.saturating_add(cpu);
        self.running_memory_mb = self.running_memory_mb.saturating_add(memory_mb);
        self.running_since += u128::from(cpu) * u128::from(since);
    }

    pub(crate) fn vacate(&mut self, cpu: u32, memory_mb: u64, since: Millis) {
        self.running_cpu = self.running_cpu.saturating_sub(cpu);
        self.running_memory_mb = self.running_memory_mb.saturating_sub(memory_mb);
        self.running_since = self
            .running_since
            .saturating_sub(u128::from(cpu) * u128::from(since));
    }

    /// What fair share compares: recent usage, decayed, plus what running
    /// attempts have used so far (so a project is not favoured just because
    /// its attempts have not ended yet).
    pub(crate) fn share_usage(&self, now: Millis, policy: &Policy) -> f64 {
        let running =
            (u128::from(self.running_cpu) * u128::from(now)).saturating_sub(self.running_since);
        self.decayed(now, policy) + running as f64
    }

    /// Records `cpu_ms` used by an attempt that ended at `now`.
    pub(crate) fn charge(&mut self, cpu_ms: u64, now: Millis, policy: &Policy) {
        self.prune(now, policy);
        if cpu_ms == 0 {
            return;
        }
        self.usage = self.decayed(now, policy) + cpu_ms as f64;
        self.usage_at = self.usage_at.max(now);
        // Kept whether or not a quota is set, so a quota set later counts
        // what the window already holds.
        self.window
            .push_back((now.max(self.window.back().map_or(0, |b| b.0)), cpu_ms));
        // A worker reports the usage: no sum may wrap.
        self.window_sum = self.window_sum.saturating_add(cpu_ms);
    }

    pub(crate) fn decayed(&self, now: Millis, policy: &Policy) -> f64 {
        if self.usage == 0.0 {
            return 0.0;
        }
        let age = now.saturating_sub(self.usage_at) as f64;
        let half_life = policy.usage_half_life_ms.max(1) as f64;
        self.usage * (-age / half_life).exp2()
    }

    /// Cpu-ms charged within the window ending at `now` (without pruning).
    pub(crate) fn window_used(&self, now: Millis, policy: &Policy) -> u64 {
        let expired: u64 = self
            .window
            .iter()
            .take_while(|(at, _)| at.saturating_add(policy.quota_window_ms) <= now)
            .fold(0u64, |sum, (_, ms)| sum.saturating_add(*ms));
        self.window_sum.saturating_sub(expired)
    }

    /// Forgets charges that have left the window.
    pub(crate) fn prune(&mut self, now: Millis, policy: &Policy) {
        while let Some(&(at, ms)) = self.window.front() {
            if at.saturating_add(policy.quota_window_ms) > now {
                break;
            }
            self.window.pop_front();
            self.window_sum = self.window_sum.saturating_sub(ms);
        }
    }

    /// When the oldest charge leaves the window, if the project is held back
    /// by its cpu-time quota and has tasks queued (so a tick is worth it).
    pub(crate) fn window_frees_at(&self, policy: &Policy) -> Option<Millis> {
        let limit = self.quota.cpu_ms_per_window?;
        if self.queue.is_empty() || self.window_sum < limit {
            return None;
        }
        let &(at, _) = self.window.front()?;
        Some(at.saturating_add(policy.quota_window_ms))
    }

    /// The limit starting an attempt needing `cpu` and `memory_mb` would break:
    /// (which, in use, limit).
    pub(crate) fn over_quota(
        &self,
        cpu: u32,
        memory_mb: u64,
        now: Millis,
        policy: &Policy,
    ) -> Option<(QuotaKind, u64, u64)> {
        let q = &self.quota;
        if let Some(max) = q.max_cpu {
            if self.running_cpu.saturating_add(cpu) > max {
                return Some((QuotaKind::Cpu, self.running_cpu.into(), max.into()));
            }
        }
        if let Some(max) = q.max_memory_mb {
            if self.running_memory_mb.saturating_add(memory_mb) > max {
                return Some((QuotaKind::Memory, self.running_memory_mb, max));
            }
        }
        if let Some(max) = q.cpu_ms_per_window {
            let used = self.window_used(now, policy);
            if used >= max {
                return Some((QuotaKind::CpuTime, used, max));
            }
        }
        None
    }

    pub(crate) fn usage(&self, now: Millis, policy: &Policy) -> ProjectUsage {
        ProjectUsage {
            running_cpu: self.running_cpu,
            running_memory_mb: self.running_memory_mb,
            decayed_cpu_ms: self.decayed(now, policy),
            window_cpu_ms: self.window_used(now, policy),
        }
    }
}
