//! Where attempts ran and what moving their files cost.

use super::{sample_spec, started, Backend};
use crate::{NodeUsage, StoreError};
use tessera_types::{AttemptOutcome, AttemptUsage, Change, NodeId, TaskRef};

fn start(task: TaskRef, attempt: u32, at: u64) -> Change {
    Change::AttemptStarted {
        task,
        attempt,
        node: NodeId::LOCAL,
        at,
    }
}

fn end(task: TaskRef, attempt: u32, usage: AttemptUsage, at: u64) -> Change {
    Change::AttemptEnded {
        task,
        attempt,
        outcome: AttemptOutcome::Succeeded,
        usage,
        at,
    }
}

fn usage(cpu_ms: u64, transfer_ms: u64, transfer_bytes: u64) -> AttemptUsage {
    AttemptUsage {
        wall_ms: 1_000,
        cpu_ms,
        max_rss_kb: 2_048,
        transfer_ms,
        transfer_bytes,
    }
}

pub fn attempts_record_their_node_and_transfers(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("nodes"), None, 1)
        .expect("create_job");
    let (t0, t1, t2) = (
        TaskRef::new(job, 0),
        TaskRef::new(job, 1),
        TaskRef::new(job, 2),
    );
    s.apply(&[start(t0, 1, 10), start(t1, 1, 10), start(t2, 1, 10)], 10)
        .expect("start");
    // One call for the turn; t1 is named twice and keeps its last entry.
    s.set_attempts_started(&[
        started(t0, 1, 100, Some("worker-a")),
        started(t1, 1, 101, Some("worker-a")),
        started(t2, 1, 102, None),
        started(t1, 1, 201, Some("worker-b")),
    ])
    .expect("started");
    let open: Vec<_> = s
        .open_attempts()
        .expect("open")
        .into_iter()
        .map(|a| (a.task.index, a.pid, a.node))
        .collect();
    assert_eq!(
        open,
        [
            (0, Some(100), Some("worker-a".to_string())),
            (1, Some(201), Some("worker-b".to_string())),
            (2, Some(102), None),
        ]
    );
    // Ended in its own batch, and started and ended in one batch (the
    // PostgreSQL batch writes those as one insert).
    s.apply(
        &[
            end(t0, 1, usage(700, 1_250, 9_000_000), 40),
            end(t2, 1, usage(300, 0, 0), 41),
            start(t1, 2, 42),
            end(t1, 2, usage(50, 30, 4_096), 43),
        ],
        43,
    )
    .expect("end");
    let all = s.attempts(job).expect("attempts");
    let got: Vec<_> = all
        .iter()
        .map(|a| (a.task.index, a.number, a.node.as_deref(), a.usage))
        .collect();
    assert_eq!(
        got,
        [
            (0, 1, Some("worker-a"), Some(usage(700, 1_250, 9_000_000))),
            (1, 1, Some("worker-b"), None),
            (1, 2, None, Some(usage(50, 30, 4_096))),
            (2, 1, None, Some(usage(300, 0, 0))),
        ]
    );
    assert_eq!(s.attempts_page(job, 0, 10).expect("page"), all);
}

pub fn starts_are_written_all_or_nothing(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("starts"), None, 1)
        .expect("create_job");
    let (t0, t1) = (TaskRef::new(job, 0), TaskRef::new(job, 1));
    s.apply(&[start(t0, 1, 10), start(t1, 1, 10)], 10)
        .expect("start");
    s.set_attempts_started(&[]).expect("nothing to write");
    let err = s
        .set_attempts_started(&[
            started(t0, 1, 100, Some("w")),
            started(t1, 7, 101, Some("w")),
            started(t1, 1, 102, Some("w")),
        ])
        .expect_err("attempt 7 was never started");
    assert!(
        matches!(err, StoreError::UnknownAttempt { task, attempt: 7 } if task == t1),
        "{err}"
    );
    let open: Vec<_> = s
        .open_attempts()
        .expect("open")
        .into_iter()
        .map(|a| (a.pid, a.node))
        .collect();
    assert_eq!(open, [(None, None), (None, None)], "nothing was written");
}

pub fn node_usage_groups_ended_attempts_by_node(b: &mut dyn Backend) {
    let mut s = b.create();
    let job = s
        .create_job(None, &sample_spec("node-usage"), None, 1)
        .expect("create_job");
    let (t0, t1, t2) = (
        TaskRef::new(job, 0),
        TaskRef::new(job, 1),
        TaskRef::new(job, 2),
    );
    assert_eq!(s.node_usage_since(0).expect("empty"), []);
    s.apply(
        &[
            start(t0, 1, 10),
            start(t1, 1, 10),
            start(t2, 1, 10),
            start(t0, 2, 10),
        ],
        10,
    )
    .expect("start");
    s.set_attempts_started(&[
        started(t0, 1, 1, Some("b-node")),
        started(t1, 1, 2, Some("a-node")),
        started(t2, 1, 3, Some("a-node")),
        started(t0, 2, 4, None),
    ])
    .expect("started");
    s.apply(
        &[
            end(t0, 1, usage(1_000, 500, 1_000_000), 100),
            end(t1, 1, usage(200, 10, 2_000), 200),
            end(t2, 1, usage(300, 20, 3_000), 300),
            end(t0, 2, usage(50, 0, 0), 300),
        ],
        300,
    )
    .expect("end");
    let row = |node: Option<&str>, attempts, cpu_ms, transfer_ms, transfer_bytes| NodeUsage {
        node: node.map(str::to_string),
        attempts,
        cpu_ms,
        transfer_ms,
        transfer_bytes,
    };
    assert_eq!(
        s.node_usage_since(0).expect("all"),
        [
            row(None, 1, 50, 0, 0),
            row(Some("a-node"), 2, 500, 30, 5_000),
            row(Some("b-node"), 1, 1_000, 500, 1_000_000),
        ]
    );
    // Ended at or after 200 only.
    assert_eq!(
        s.node_usage_since(200).expect("since 200"),
        [
            row(None, 1, 50, 0, 0),
            row(Some("a-node"), 2, 500, 30, 5_000)
        ]
    );
    assert_eq!(s.node_usage_since(301).expect("later"), []);
}
