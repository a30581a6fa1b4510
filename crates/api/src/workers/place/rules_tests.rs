//! Placement rules beyond labels: labels a node must not carry, the nodes
//! other jobs ran on (joined or kept away from), hard and soft.

use super::tests::{give, inner, node, req};
use super::*;
use tessera_types::PlaceRule;

fn ruled(job: i64, index: u32, rules: Vec<PlaceRule>) -> StartRequest {
    let mut r = req(job, index, 1, 0, &[]);
    r.placement.rules = rules;
    r
}

fn on_jobs(jobs: &[i64], not: bool, soft: bool) -> PlaceRule {
    PlaceRule {
        near: Near::Jobs(jobs.iter().map(|j| JobId(*j)).collect()),
        not,
        soft,
    }
}

#[test]
fn a_hard_not_label_keeps_the_attempt_off_the_nodes_that_carry_it() {
    let t0 = Instant::now();
    let not_eu = PlaceRule {
        near: Near::Label {
            key: "zone".into(),
            value: "eu".into(),
        },
        not: true,
        soft: false,
    };
    let nodes = vec![node("eu", 2, 0, &[("zone", "eu")]), node("us", 2, 0, &[])];
    let mut s = inner(nodes, vec![(ruled(1, 0, vec![not_eu.clone()]), None)], t0);
    assert_eq!(give(&mut s, 0, t0), Vec::<u32>::new(), "eu carries zone=eu");
    assert_eq!(give(&mut s, 1, t0), [0]);
    // Only nodes that carry it: unplaceable, with the rule in words.
    let s = inner(
        vec![node("eu", 2, 0, &[("zone", "eu")])],
        vec![(ruled(1, 0, vec![not_eu]), None)],
        t0,
    );
    let why = unplaceable(&s.queue[0].req, &s.workers, &s.ran_on).unwrap();
    assert!(why.contains("a node without zone=eu"), "{why}");
}

#[test]
fn a_hard_job_rule_joins_or_avoids_the_node_the_job_ran_on() {
    let t0 = Instant::now();
    let nodes = || vec![node("a", 2, 0, &[]), node("b", 2, 0, &[])];
    // Job 7 ran on b (handed there by placement).
    let mut s = inner(nodes(), vec![(req(7, 0, 1, 0, &[]), None)], t0);
    assert_eq!(give(&mut s, 1, t0), [0]);
    assert_eq!(s.ran_on[&JobId(7)], ["b"]);
    s.queue.push_back(Queued::new(
        ruled(8, 0, vec![on_jobs(&[7], false, false)]),
        None,
        t0,
    ));
    s.queue.push_back(Queued::new(
        ruled(9, 1, vec![on_jobs(&[7], true, false)]),
        None,
        t0,
    ));
    assert_eq!(give(&mut s, 0, t0), [1], "a takes only the one kept off b");
    assert_eq!(give(&mut s, 1, t0), [0], "b takes the one that joins job 7");
}

#[test]
fn a_hard_job_rule_waits_unplaceable_until_the_job_has_run_somewhere() {
    let t0 = Instant::now();
    let mut s = inner(
        vec![node("a", 2, 0, &[])],
        vec![(ruled(8, 0, vec![on_jobs(&[7], false, false)]), None)],
        t0,
    );
    assert_eq!(give(&mut s, 0, t0), Vec::<u32>::new());
    let why = unplaceable(&s.queue[0].req, &s.workers, &s.ran_on).unwrap();
    assert!(why.contains("the node job 7 ran on"), "{why}");
    // The store says job 7 ran on this server's own node: a, here.
    s.workers[0].local = true;
    let mut seeded = ruled(8, 0, vec![]);
    seeded.placement.ran_on = vec![(JobId(7), None)];
    s.seed_ran_on(&seeded);
    assert_eq!(unplaceable(&s.queue[0].req, &s.workers, &s.ran_on), None);
    assert_eq!(give(&mut s, 0, t0), [0]);
}

#[test]
fn a_soft_rule_prefers_for_a_while_and_never_blocks() {
    let t0 = Instant::now();
    let nodes = vec![node("a", 4, 0, &[]), node("b", 4, 0, &[])];
    let mut s = inner(nodes, vec![], t0);
    s.ran(JobId(7), "b");
    let soft = |index| ruled(8, index, vec![on_jobs(&[7], false, true)]);
    s.queue.push_back(Queued::new(soft(0), None, t0));
    assert_eq!(give(&mut s, 0, t0), Vec::<u32>::new(), "b is preferred");
    let later = t0 + PREFER_WAIT;
    assert_eq!(give(&mut s, 0, later), [0], "the preference is bounded");
    // A soft rule no node keeps (job 9 never ran): taken at once.
    let never = ruled(10, 1, vec![on_jobs(&[9], false, true)]);
    s.queue.push_back(Queued::new(never, None, t0));
    assert_eq!(unplaceable(&s.queue[0].req, &s.workers, &s.ran_on), None);
    assert_eq!(give(&mut s, 0, t0), [1]);
    // A soft != rule: the node it names is passed over while another could.
    let away = ruled(11, 2, vec![on_jobs(&[7], true, true)]);
    s.queue.push_back(Queued::new(away, None, t0));
    assert_eq!(give(&mut s, 1, t0), Vec::<u32>::new());
    assert_eq!(give(&mut s, 0, t0), [2]);
}

#[test]
fn a_ladders_packaging_runs_only_where_the_workdir_is() {
    let t0 = Instant::now();
    let op = |job: i64, index: u32, op: &str| {
        let mut r = req(job, index, 1, 0, &[]);
        r.action = Action::op(op, ["--workdir", "/d/encodes/x"]);
        r
    };
    let http = || {
        let mut n = node("far", 4, 0, &[]);
        n.info.data = "http".into();
        n
    };
    let shared = || {
        let mut n = node("near", 4, 0, &[]);
        n.info.data = "shared".into();
        n
    };
    // The chunks go anywhere; packaging and publish not to the http worker.
    let queue = || {
        vec![
            (op(1, 0, "encode-chunk"), None),
            (op(1, 1, "package"), None),
            (op(1, 2, "package-audio"), None),
            (op(1, 3, "publish"), None),
        ]
    };
    let mut s = inner(vec![http(), shared()], queue(), t0);
    assert_eq!(give(&mut s, 0, t0), [0], "http takes only the chunk");
    assert_eq!(give(&mut s, 1, t0), [1, 2, 3]);
    // The server's own slots see the workdir too.
    let mut local = node("server", 4, 0, &[]);
    local.local = true;
    local.info.data = "http".into();
    let mut s = inner(vec![http(), local], queue(), t0);
    assert_eq!(give(&mut s, 0, t0), [0]);
    assert_eq!(give(&mut s, 1, t0), [1, 2, 3]);
    // Only http workers: the packaging waits, saying why.
    let s = inner(vec![http()], queue(), t0);
    assert_eq!(unplaceable(&s.queue[0].req, &s.workers, &s.ran_on), None);
    let why = unplaceable(&s.queue[1].req, &s.workers, &s.ran_on).unwrap();
    assert!(
        why.contains("ABR ladder") && why.contains("--data shared"),
        "{why}"
    );
}
