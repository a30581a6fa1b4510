//! A project's limits: what the scheduler enforces, the store keeps and the
//! API shows.

/// Limits on one project. `None` means no limit. A task that would break a
/// limit does not start: it stays ready and its project waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Cpu slots its running attempts may hold at once.
    pub max_cpu: Option<u32>,
    /// Memory (MiB, as the tasks state it) its running attempts may hold at once.
    pub max_memory_mb: Option<u64>,
    /// Cpu time (ms) its attempts that ended within the scheduler's quota
    /// window may have used; no new attempt starts while it is used up.
    /// Attempts are charged when they end, so running ones may overshoot it.
    pub cpu_ms_per_window: Option<u64>,
}

impl Quota {
    /// True when it limits nothing.
    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }
}
