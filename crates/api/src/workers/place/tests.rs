use super::*;
use crate::workers::pool::{Inner, NodeInfo};
use std::collections::BTreeMap;
use tessera_types::{Action, TaskRef};

pub(super) fn req(
    job: i64,
    index: u32,
    cpu: u32,
    memory_mb: u64,
    labels: &[(&str, &str)],
) -> StartRequest {
    StartRequest {
        task: TaskRef::new(JobId(job), index),
        attempt: 1,
        name: format!("t{index}"),
        action: Action::Command {
            argv: vec!["true".into()],
        },
        env: BTreeMap::new(),
        workdir: "/nonexistent".into(),
        log_dir: "/nonexistent".into(),
        image: None,
        cpu,
        memory_mb,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        placement: Default::default(),
        reach: Default::default(),
        user: None,
        mounts: Vec::new(),
    }
}

pub(super) fn node(name: &str, slots: u32, memory_mb: u64, labels: &[(&str, &str)]) -> Worker {
    let info = NodeInfo {
        name: name.into(),
        slots,
        memory_mb,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    Worker::new(name.into(), "token".into(), info, 0)
}

/// A pool's state with these nodes and queued requests (queued at `t0`).
pub(super) fn inner(
    nodes: Vec<Worker>,
    queue: Vec<(StartRequest, Option<&str>)>,
    t0: Instant,
) -> Inner {
    let mut inner = Inner::default();
    inner.workers = nodes;
    for (r, input) in queue {
        inner
            .queue
            .push_back(Queued::new(r, input.map(PathBuf::from), t0));
    }
    inner
}

/// The task indices node `who` is given at `now` (leases recorded).
pub(super) fn give(inner: &mut Inner, who: usize, now: Instant) -> Vec<u32> {
    inner
        .assign(who, now)
        .into_iter()
        .map(|r| r.task.index)
        .collect()
}

#[test]
fn cpu_must_fit_the_free_slots_and_smaller_attempts_go_past_a_big_one() {
    let t0 = Instant::now();
    let mut s = inner(
        vec![node("a", 2, 0, &[])],
        vec![
            (req(1, 0, 1, 0, &[]), None),
            (req(1, 1, 2, 0, &[]), None),
            (req(1, 2, 0, 0, &[]), None), // 0 cpu takes a slot
            (req(1, 3, 1, 0, &[]), None),
        ],
        t0,
    );
    assert_eq!(give(&mut s, 0, t0), [0, 2]);
    assert_eq!(s.workers[0].used(), 2);
    assert_eq!(give(&mut s, 0, t0), Vec::<u32>::new(), "full");
    s.workers[0].leases.clear();
    assert_eq!(give(&mut s, 0, t0), [1], "the 2-cpu one first, in order");
}

#[test]
fn memory_must_fit_what_the_leases_leave_when_the_node_stated_its_memory() {
    let t0 = Instant::now();
    let mut s = inner(
        vec![node("a", 4, 1000, &[]), node("b", 4, 0, &[])],
        vec![
            (req(1, 0, 1, 600, &[]), None),
            (req(1, 1, 1, 500, &[]), None),
            (req(1, 2, 1, 400, &[]), None),
            (req(1, 3, 1, 0, &[]), None),
            (req(1, 4, 1, 5000, &[]), None),
        ],
        t0,
    );
    // 600 + 400 fill a's 1000 MiB; unstated memory always fits; 5000 never.
    assert_eq!(give(&mut s, 0, t0 + SPREAD_WAIT), [0, 2, 3]);
    // b stated no memory: nothing is checked.
    assert_eq!(give(&mut s, 1, t0 + SPREAD_WAIT), [1, 4]);
}

#[test]
fn labels_must_all_be_carried_by_the_node() {
    let t0 = Instant::now();
    let mut s = inner(
        vec![
            node("plain", 4, 0, &[]),
            node("gpu", 4, 0, &[("gpu", "a100"), ("zone", "x")]),
        ],
        vec![
            (req(1, 0, 1, 0, &[("gpu", "a100")]), None),
            (req(2, 0, 1, 0, &[("gpu", "h100")]), None),
            (req(3, 0, 1, 0, &[]), None),
            (req(4, 0, 1, 0, &[("gpu", "a100"), ("zone", "x")]), None),
        ],
        t0,
    );
    let jobs = |s: &mut Inner, who: usize| -> Vec<i64> {
        s.assign(who, t0)
            .into_iter()
            .map(|r| r.task.job.0)
            .collect()
    };
    assert_eq!(jobs(&mut s, 0), [3]);
    assert_eq!(jobs(&mut s, 1), [1, 4]);
    assert_eq!(s.queue.len(), 1, "h100 waits");
}

#[test]
fn the_node_holding_the_input_is_preferred_for_a_bounded_time() {
    let t0 = Instant::now();
    let mut holder = node("holder", 1, 0, &[]);
    holder.holds.insert(PathBuf::from("/media/a.mkv"));
    let mut s = inner(
        vec![holder, node("other", 2, 0, &[])],
        vec![
            (req(1, 0, 1, 0, &[]), Some("/media/a.mkv")),
            (req(2, 1, 1, 0, &[]), Some("/media/a.mkv")),
            (req(3, 2, 1, 0, &[]), Some("/media/b.mkv")),
        ],
        t0,
    );
    let soon = t0 + Duration::from_millis(500);
    // The holder has a free slot: a.mkv's attempts are left for it.
    assert_eq!(give(&mut s, 1, soon), [2]);
    assert_eq!(give(&mut s, 0, soon), [0]);
    // The holder is full now: nobody is waited for.
    assert_eq!(s.index("other"), Some(1));
    assert_eq!(give(&mut s, 1, soon), [1]);

    // A free holder is waited for at most LOCALITY_WAIT.
    let mut holder = node("holder", 1, 0, &[]);
    holder.holds.insert(PathBuf::from("/media/a.mkv"));
    let mut s = inner(
        vec![holder, node("other", 1, 0, &[])],
        vec![(req(1, 0, 1, 0, &[]), Some("/media/a.mkv"))],
        t0,
    );
    assert_eq!(give(&mut s, 1, soon), Vec::<u32>::new());
    assert_eq!(give(&mut s, 1, t0 + LOCALITY_WAIT), [0]);
}

#[test]
fn chunks_of_one_job_spread_across_nodes_for_a_bounded_time() {
    let t0 = Instant::now();
    let queue = || (0..6).map(|i| (req(7, i, 1, 0, &[]), None)).collect();
    let mut s = inner(
        vec![node("a", 2, 0, &[]), node("b", 2, 0, &[])],
        queue(),
        t0,
    );
    // a could take two, but b (free, running none of job 7) gets the second.
    assert_eq!(give(&mut s, 0, t0), [0]);
    assert_eq!(give(&mut s, 1, t0), [1, 2]);
    assert_eq!(give(&mut s, 0, t0), [3], "b is full: a takes it");
    // Both idle again: a takes one, b would run the next.
    s.workers[0].leases.clear();
    s.workers[1].leases.clear();
    assert_eq!(give(&mut s, 0, t0), [4]);
    // Past the bound a takes what it can hold even though b is idle.
    assert_eq!(give(&mut s, 0, t0 + SPREAD_WAIT), [5]);
    assert_eq!(s.workers[0].used(), 2);
    assert_eq!(s.workers[1].used(), 0);

    // A node that cannot run the job (labels) is not waited for.
    let mut s = inner(
        vec![node("a", 2, 0, &[("gpu", "x")]), node("b", 2, 0, &[])],
        (0..2)
            .map(|i| (req(8, i, 1, 0, &[("gpu", "x")]), None))
            .collect(),
        t0,
    );
    assert_eq!(give(&mut s, 0, t0), [0, 1]);
}

#[test]
fn draining_nodes_take_nothing_and_are_not_waited_for() {
    let t0 = Instant::now();
    let mut s = inner(
        vec![node("a", 2, 0, &[]), node("b", 2, 0, &[])],
        (0..2).map(|i| (req(1, i, 1, 0, &[]), None)).collect(),
        t0,
    );
    s.workers[1].state = NodeState::Draining;
    assert_eq!(give(&mut s, 1, t0), Vec::<u32>::new());
    assert_eq!(give(&mut s, 0, t0), [0, 1]);
}

#[test]
fn attempts_no_ready_node_can_take_are_reported_with_the_reason() {
    let t0 = Instant::now();
    let mut s = inner(
        vec![node("a", 2, 1000, &[("zone", "x")]), node("b", 4, 0, &[])],
        vec![
            (req(1, 0, 1, 0, &[("gpu", "a100")]), None),
            (req(1, 1, 3, 0, &[("zone", "x")]), None),
            (req(1, 2, 1, 2000, &[("zone", "x")]), None),
            (req(1, 3, 4, 5000, &[]), None),
        ],
        t0,
    );
    s.review();
    let why: Vec<Option<&str>> = s.queue.iter().map(|q| q.unplaceable.as_deref()).collect();
    assert_eq!(
        why[0],
        Some(
            "it needs the labels gpu=a100, which no ready node carries; start a worker with \
             --labels gpu=a100"
        )
    );
    assert_eq!(
        why[1],
        Some("it needs 3 cpu slots; the largest ready node it may run on has 2")
    );
    assert_eq!(
        why[2],
        Some("it needs 2000 MiB of memory; the largest ready node it may run on has 1000 MiB")
    );
    assert_eq!(why[3], None, "b (4 slots, memory unstated) can take it");
    // A worker with the label registers: the first one is placeable again.
    s.workers.push(node("g", 1, 0, &[("gpu", "a100")]));
    s.review();
    assert_eq!(s.queue[0].unplaceable, None);
    // Nothing ready at all.
    for w in &mut s.workers {
        w.state = NodeState::Lost;
    }
    s.review();
    assert!(s.queue[3]
        .unplaceable
        .as_deref()
        .is_some_and(|w| w.starts_with("no node is ready")));
}

#[test]
fn an_image_attempt_goes_only_to_a_node_that_offers_docker() {
    let t0 = Instant::now();
    let boxed = |index| StartRequest {
        image: Some("tessera-local:dev".into()),
        ..req(1, index, 1, 0, &[])
    };
    let mut docker = node("d", 2, 0, &[]);
    docker.info.executors = vec!["local".into(), DOCKER.into()];
    let mut plain = node("p", 2, 0, &[]);
    plain.info.executors = vec!["local".into()];
    let mut s = inner(
        vec![plain, docker],
        vec![(boxed(0), None), (req(1, 1, 1, 0, &[]), None)],
        t0,
    );
    let reason = |s: &Inner, i: usize| unplaceable(&s.queue[i].req, &s.workers, &s.ran_on);
    assert_eq!(reason(&s, 0), None, "d could take it");
    assert_eq!(give(&mut s, 0, t0), [1], "p never gets the image attempt");
    assert_eq!(give(&mut s, 1, t0), [0]);

    // Only nodes without docker: unplaceable, saying how to fix it.
    let mut s = inner(vec![node("p", 2, 0, &[])], vec![(boxed(0), None)], t0);
    assert_eq!(give(&mut s, 0, t0), Vec::<u32>::new());
    let why = reason(&s, 0).unwrap();
    assert!(
        why.contains(
            "tessera-local:dev, and no ready node offers docker; start a worker with --docker"
        ),
        "{why}"
    );
    // Docker somewhere, but not with the labels it needs.
    let labelled_image = StartRequest {
        image: Some("x".into()),
        ..req(1, 0, 1, 0, &[("gpu", "a100")])
    };
    let mut d = node("d", 2, 0, &[]);
    d.info.executors = vec![DOCKER.into()];
    let s = inner(
        vec![d, node("g", 2, 0, &[("gpu", "a100")])],
        vec![(labelled_image, None)],
        t0,
    );
    let why = reason(&s, 0).unwrap();
    assert!(
        why.contains("gpu=a100, which no ready node that offers docker carries"),
        "{why}"
    );
}

#[test]
fn a_retry_prefers_any_other_node_than_the_ones_its_task_ended_badly_on_for_a_bounded_time() {
    let t0 = Instant::now();
    let soon = t0 + Duration::from_millis(500);
    let retry = |avoid: &[&str]| {
        let mut r = req(1, 3, 1, 0, &[]);
        r.attempt = 2;
        Queued::new(r, None, t0).avoiding(avoid.iter().map(|n| n.to_string()).collect())
    };
    let mut s = inner(
        vec![node("full", 1, 0, &[]), node("b", 1, 0, &[])],
        vec![],
        t0,
    );
    s.queue.push_back(retry(&["full"]));
    // The node it was lost on leaves it, even while b is busy (b could run it).
    s.workers[1].leases.insert(
        (TaskRef::new(JobId(9), 0), 1),
        Lease {
            cpu: 1,
            memory_mb: 0,
            since: t0,
        },
    );
    assert_eq!(give(&mut s, 0, soon), Vec::<u32>::new());
    // Other work still goes to it.
    s.queue
        .push_back(Queued::new(req(1, 4, 1, 0, &[]), None, t0));
    assert_eq!(give(&mut s, 0, soon), [4]);
    s.workers[0].leases.clear();
    s.workers[1].leases.clear();
    assert_eq!(give(&mut s, 1, soon), [3], "any other node takes it");

    // Past RETRY_WAIT the node it failed on takes it after all.
    let mut s = inner(
        vec![node("full", 1, 0, &[]), node("b", 1, 0, &[])],
        vec![],
        t0,
    );
    s.queue.push_back(retry(&["full"]));
    assert_eq!(give(&mut s, 0, t0 + RETRY_WAIT), [3]);

    // Nowhere else to go: a one-node cluster retries at once, and so does
    // a node whose peers cannot run it, are not ready, or failed it too.
    let mut s = inner(vec![node("full", 1, 0, &[])], vec![], t0);
    s.queue.push_back(retry(&["full"]));
    assert_eq!(give(&mut s, 0, soon), [3]);
    let mut s = inner(
        vec![
            node("full", 1, 0, &[]),
            node("tiny", 0, 0, &[]),
            node("gone", 1, 0, &[]),
            node("low", 1, 0, &[]),
            node("failed-too", 1, 0, &[]),
        ],
        vec![],
        t0,
    );
    s.workers[2].state = NodeState::Lost;
    s.workers[3].disk_low = true;
    s.queue.push_back(retry(&["failed-too", "full"]));
    assert_eq!(give(&mut s, 0, soon), [3]);
}

#[test]
fn the_pool_remembers_where_a_task_ended_badly_until_it_succeeds() {
    let mut s = Inner::default();
    let task = TaskRef::new(JobId(1), 2);
    assert!(s.avoid(task).is_empty());
    s.ended_badly(task, "w1");
    s.ended_badly(task, "w2");
    s.ended_badly(task, "w1");
    assert_eq!(s.avoid(task), ["w2", "w1"], "once each, latest last");
    for i in 0..20 {
        s.ended_badly(task, &format!("n{i}"));
    }
    assert_eq!(s.avoid(task).len(), 8, "bounded per task");
    s.ended_well(task);
    assert!(s.avoid(task).is_empty());
}
