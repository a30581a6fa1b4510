//! Scheduling metrics from the driver's feed (see [`tessera_driver::Feed`]):
//! how long ready tasks wait for a slot, how long a committed start takes to
//! become a running process, attempts by outcome, their cpu time, what
//! workers spent moving their files (seconds and bytes), and the progress
//! units tasks report (frames, for encode chunks).
//!
//! The times are the driver's own commit times (milliseconds), not when
//! this thread happens to read them. Only what happens while the server
//! runs is counted: a task that was already ready when it started has no
//! known ready time and is not observed.

use super::histogram::{Histogram, LATENCY_BUCKETS};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_driver::FeedItem;
use tessera_types::{AttemptNo, Change, Millis, TaskRef, TaskState};
use tokio::sync::broadcast::{error::RecvError, Receiver};

#[derive(Default)]
pub(crate) struct Flow {
    inner: Mutex<Inner>,
}

struct Inner {
    ready_at: HashMap<TaskRef, Millis>,
    started_at: HashMap<(TaskRef, AttemptNo), Millis>,
    /// The last `done` each running attempt reported.
    progress: HashMap<(TaskRef, AttemptNo), u64>,
    queue_wait: Histogram,
    dispatch: Histogram,
    attempts: BTreeMap<&'static str, u64>,
    cpu_ms: u64,
    transfer_ms: u64,
    transfer_bytes: u64,
    progress_units: u64,
    lagged: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            ready_at: HashMap::new(),
            started_at: HashMap::new(),
            progress: HashMap::new(),
            queue_wait: Histogram::new(LATENCY_BUCKETS),
            dispatch: Histogram::new(LATENCY_BUCKETS),
            attempts: BTreeMap::new(),
            cpu_ms: 0,
            transfer_ms: 0,
            transfer_bytes: 0,
            progress_units: 0,
            lagged: 0,
        }
    }
}

/// Attempt outcomes, so every series exists from the first scrape.
const OUTCOMES: [&str; 5] = ["succeeded", "failed", "timed_out", "cancelled", "lost"];

/// Reads `feed` on a thread of its own until the driver is gone, into `flow`.
pub(crate) fn follow(mut feed: Receiver<Arc<FeedItem>>, flow: Arc<super::Metrics>) {
    let spawned = std::thread::Builder::new()
        .name("tessera-metrics".into())
        .spawn(move || loop {
            match feed.blocking_recv() {
                Ok(item) => flow.flow.apply(&item),
                Err(RecvError::Lagged(_)) => flow.flow.lagged(),
                Err(RecvError::Closed) => return,
            }
        });
    if let Err(e) = spawned {
        eprintln!("tessera-api: no scheduling metrics (cannot start their thread: {e})");
    }
}

impl Flow {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Items were dropped: the pending times can no longer be trusted.
    fn lagged(&self) {
        let mut m = self.lock();
        m.lagged += 1;
        m.ready_at.clear();
        m.started_at.clear();
        m.progress.clear();
    }

    pub(crate) fn apply(&self, item: &FeedItem) {
        let mut m = self.lock();
        match item {
            FeedItem::Changes { at, changes } => {
                for change in changes {
                    m.change(change, *at);
                }
            }
            FeedItem::Running { task, attempt, at } => {
                if let Some(start) = m.started_at.remove(&(*task, *attempt)) {
                    m.dispatch.observe(seconds(start, *at));
                }
            }
            FeedItem::Progress {
                task,
                attempt,
                progress,
            } => {
                let last = m.progress.insert((*task, *attempt), progress.done);
                m.progress_units += progress.done.saturating_sub(last.unwrap_or(0));
            }
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        let m = self.lock();
        m.queue_wait.render(
            out,
            "tessera_task_queue_wait_seconds",
            "Time from a task becoming ready (dependencies met, or retry backoff over) to its attempt starting.",
        );
        m.dispatch.render(
            out,
            "tessera_task_dispatch_seconds",
            "Time from an attempt's start being committed to its process running.",
        );
        super::family(
            out,
            "tessera_attempts_total",
            "counter",
            "Attempts ended since the server started, by outcome.",
        );
        for outcome in OUTCOMES {
            let n = m.attempts.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "tessera_attempts_total{{outcome=\"{outcome}\"}} {n}");
        }
        super::family(
            out,
            "tessera_attempt_cpu_seconds_total",
            "counter",
            "Cpu seconds of attempts ended since the server started.",
        );
        let _ = writeln!(
            out,
            "tessera_attempt_cpu_seconds_total {}",
            m.cpu_ms as f64 / 1000.0
        );
        super::family(
            out,
            "tessera_attempt_transfer_seconds_total",
            "counter",
            "Seconds workers without the shared filesystem spent moving attempts' files, for attempts ended since the server started.",
        );
        let _ = writeln!(
            out,
            "tessera_attempt_transfer_seconds_total {}",
            m.transfer_ms as f64 / 1000.0
        );
        super::family(
            out,
            "tessera_attempt_transfer_bytes_total",
            "counter",
            "Bytes workers without the shared filesystem moved for attempts ended since the server started.",
        );
        let _ = writeln!(
            out,
            "tessera_attempt_transfer_bytes_total {}",
            m.transfer_bytes
        );
        super::family(
            out,
            "tessera_progress_units_total",
            "counter",
            "Units of work running tasks reported done (frames for encode chunks; its rate is the encode fps).",
        );
        let _ = writeln!(out, "tessera_progress_units_total {}", m.progress_units);
        super::family(
            out,
            "tessera_feed_lagged_total",
            "counter",
            "Times the metrics fell behind the scheduler and dropped events.",
        );
        let _ = writeln!(out, "tessera_feed_lagged_total {}", m.lagged);
    }
}

impl Inner {
    fn change(&mut self, change: &Change, at: Millis) {
        match change {
            Change::Task { task, state, .. } => match state {
                TaskState::Ready => {
                    self.ready_at.insert(*task, at);
                }
                s if s.is_terminal() => {
                    self.ready_at.remove(task);
                }
                _ => {}
            },
            Change::AttemptStarted { task, attempt, .. } => {
                if let Some(ready) = self.ready_at.remove(task) {
                    self.queue_wait.observe(seconds(ready, at));
                }
                self.started_at.insert((*task, *attempt), at);
            }
            Change::AttemptEnded {
                task,
                attempt,
                outcome,
                usage,
                ..
            } => {
                self.started_at.remove(&(*task, *attempt));
                self.progress.remove(&(*task, *attempt));
                *self.attempts.entry(outcome.kind()).or_insert(0) += 1;
                self.cpu_ms += usage.cpu_ms;
                self.transfer_ms += usage.transfer_ms;
                self.transfer_bytes += usage.transfer_bytes;
            }
            _ => {}
        }
    }
}

fn seconds(from: Millis, to: Millis) -> f64 {
    to.saturating_sub(from) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_types::{AttemptOutcome, AttemptUsage, JobId, NodeId, Progress};

    fn task(state: TaskState) -> Change {
        Change::Task {
            task: TaskRef::new(JobId(1), 0),
            state,
            attempt: 0,
            failures: 0,
            not_before: 0,
            reason: None,
        }
    }

    #[test]
    fn a_task_is_timed_from_ready_to_started_to_running() {
        let flow = Flow::default();
        let t = TaskRef::new(JobId(1), 0);
        let changes = |at, changes| FeedItem::Changes { at, changes };
        flow.apply(&changes(1000, vec![task(TaskState::Ready)]));
        flow.apply(&changes(
            1003,
            vec![Change::AttemptStarted {
                task: t,
                attempt: 1,
                node: NodeId(0),
                at: 1003,
            }],
        ));
        flow.apply(&FeedItem::Running {
            task: t,
            attempt: 1,
            at: 1010,
        });
        for done in [10, 25] {
            flow.apply(&FeedItem::Progress {
                task: t,
                attempt: 1,
                progress: Progress { done, total: 50 },
            });
        }
        flow.apply(&changes(
            2000,
            vec![Change::AttemptEnded {
                task: t,
                attempt: 1,
                outcome: AttemptOutcome::Succeeded,
                usage: AttemptUsage {
                    wall_ms: 990,
                    cpu_ms: 1500,
                    max_rss_kb: 1,
                    transfer_ms: 250,
                    transfer_bytes: 4_000_000,
                },
                at: 2000,
            }],
        ));
        let mut out = String::new();
        flow.render(&mut out);
        // 3 ms of queue wait: in the 0.005 bucket, not the 0.0025 one.
        assert!(
            out.contains("tessera_task_queue_wait_seconds_bucket{le=\"0.0025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_task_queue_wait_seconds_bucket{le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_task_dispatch_seconds_sum 0.007\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_attempts_total{outcome=\"succeeded\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_attempts_total{outcome=\"lost\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_attempt_cpu_seconds_total 1.5\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_attempt_transfer_seconds_total 0.25\n"),
            "{out}"
        );
        assert!(
            out.contains("tessera_attempt_transfer_bytes_total 4000000\n"),
            "{out}"
        );
        assert!(out.contains("tessera_progress_units_total 25\n"), "{out}");
        let m = flow.lock();
        assert!(m.ready_at.is_empty() && m.started_at.is_empty() && m.progress.is_empty());
    }
}
