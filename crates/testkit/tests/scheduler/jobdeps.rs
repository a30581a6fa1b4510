//! Jobs that wait on jobs (`JobSpec::after`), through the simulation
//! harness: the harness checks at every start that the job's parents have
//! ended as its conditions accept, and resolves selectors against the
//! shadow store as the driver does against the store.

use super::{fail, ok, t};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use tessera_core::ControlError;
use tessera_testkit::{Behaviour, Sim};
use tessera_types::{
    Condition, JobDependency, JobId, JobSpec, JobState, TaskRef, TaskSpec, TaskState,
};

fn job(name: &str, tasks: Vec<TaskSpec>) -> JobSpec {
    JobSpec::new(name, tasks)
}

fn one(name: &str) -> JobSpec {
    job(name, vec![t(&format!("{name}-task"))])
}

fn by_id(id: JobId) -> JobDependency {
    JobDependency::on_id(id)
}

fn by_name(selector: &str) -> JobDependency {
    JobDependency::on_name(selector).expect("selector")
}

/// Fails every attempt of the tasks named in `failing`, 10 ms each.
fn failing(failing: &[&str]) -> Behaviour {
    let names: HashSet<String> = failing.iter().map(|s| s.to_string()).collect();
    Behaviour::custom(move |spec, _| {
        if names.contains(&spec.name) {
            fail(10)
        } else {
            ok(10)
        }
    })
}

/// When the job's first attempt started.
fn first_start(sim: &Sim, job: JobId) -> Option<u64> {
    sim.starts.iter().find(|s| s.1.job == job).map(|s| s.0)
}

fn job_state(sim: &Sim, job: JobId) -> JobState {
    sim.shadow.job_state(job).expect("job")
}

#[test]
fn a_split_encodes_merge_flow_runs_in_order_and_says_what_it_waits_for() {
    let mut sim = Sim::new(8, Behaviour::fixed(10));
    let split = sim.submit(&one("split"));
    let encodes: Vec<JobId> = (1..=3)
        .map(|i| sim.submit(&one(&format!("encode{i}")).after_job(by_id(split))))
        .collect();
    let merge = sim.submit(&one("merge").after_job(by_name("encode*")));
    assert_eq!(
        sim.sched.why_job_waiting(encodes[0]).unwrap().to_string(),
        "waiting for job 1 (split) to succeed"
    );
    assert_eq!(
        sim.sched.why_job_waiting(merge).unwrap().to_string(),
        "waiting for 3 of 3 jobs matching encode* to succeed: 2 (encode1), 3 (encode2), \
         4 (encode3)"
    );
    let why = sim.sched.why_waiting(TaskRef::new(merge, 0), 0).unwrap();
    assert_eq!(why, sim.sched.why_job_waiting(merge).unwrap());
    sim.run(1000);
    assert_eq!(job_state(&sim, merge), JobState::Succeeded);
    // Each hop costs nothing: a child starts in the step its parent ends.
    assert_eq!(first_start(&sim, encodes[2]), Some(10));
    assert_eq!(first_start(&sim, merge), Some(20));
    assert_eq!(sim.sched.job_links(), 0);
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_failed_encode_skips_the_merge_and_the_skip_cascades() {
    let mut sim = Sim::new(4, failing(&["encode2-task"]));
    let split = sim.submit(&one("split"));
    for i in 1..=3 {
        sim.submit(&one(&format!("encode{i}")).after_job(by_id(split)));
    }
    let merge = sim.submit(&one("merge").after_job(by_name("encode*")));
    let publish = sim.submit(&one("publish").after_job(by_id(merge)));
    let cleanup =
        sim.submit(&one("cleanup").after_job(by_id(merge).with_condition(Condition::Any)));
    let alarm =
        sim.submit(&one("alarm").after_job(by_name("encode*").with_condition(Condition::Failure)));
    sim.run(1000);
    assert_eq!(job_state(&sim, merge), JobState::Cancelled);
    let reason = sim.shadow.log.iter().find_map(|c| match c {
        tessera_types::Change::Task { task, reason, .. } if task.job == merge => reason.clone(),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("job 3 (encode2) ended failed and this job waits for it to succeed")
    );
    assert_eq!(first_start(&sim, merge), None, "nothing of it ran");
    assert_eq!(
        job_state(&sim, publish),
        JobState::Cancelled,
        "skips cascade"
    );
    assert_eq!(job_state(&sim, cleanup), JobState::Succeeded, "any runs");
    // `failure` needs every match to fail: two succeeded.
    assert_eq!(job_state(&sim, alarm), JobState::Cancelled);
    assert_eq!(sim.sched.job_links(), 0);
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_crash_forgets_ended_parents_and_the_store_tells_them_again() {
    let mut sim = Sim::new(2, Behaviour::fixed(10));
    let split = sim.submit(&one("split"));
    let fine = sim.submit(&one("fine"));
    sim.run(2);
    assert_eq!(job_state(&sim, split), JobState::Succeeded);
    sim.crash_and_restore();
    // Neither is held now; the harness tells the scheduler their ends.
    assert_eq!(sim.sched.job_state(split), None);
    let encode = sim.submit(&one("encode").after_job(by_id(split)));
    let other = sim.submit(&one("other").after_job(by_name("s*")));
    assert_eq!(first_start(&sim, encode), Some(sim.now), "released at once");
    assert_eq!(first_start(&sim, other), Some(sim.now));
    let handler =
        sim.submit(&one("handler").after_job(by_id(fine).with_condition(Condition::Failure)));
    assert_eq!(
        job_state(&sim, handler),
        JobState::Cancelled,
        "fine succeeded"
    );
    sim.run(100);
    assert_eq!(job_state(&sim, encode), JobState::Succeeded);
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_crash_while_children_wait_restores_their_waits() {
    let mut sim = Sim::new(1, Behaviour::fixed(10));
    let a = sim.submit(&one("a"));
    let b = sim.submit(&one("b").after_job(by_id(a)));
    let c = sim.submit(&one("c").after_job(by_id(b)));
    sim.crash_and_restore();
    assert_eq!(
        sim.sched.why_job_waiting(c).unwrap().to_string(),
        "waiting for job 2 (b) to succeed"
    );
    sim.run(1);
    sim.crash_and_restore(); // b was released (its task runs): it is not held back again
    sim.run(100);
    assert_eq!(job_state(&sim, c), JobState::Succeeded);
    assert!(first_start(&sim, b) >= Some(10) && first_start(&sim, c) > first_start(&sim, b));
    assert_eq!(sim.sched.job_links(), 0);
    sim.assert_log_matches_scheduler();
}

#[test]
fn retries_after_a_crash_recheck_parents_and_skipped_children_stay_skipped() {
    let fails = std::rc::Rc::new(std::cell::Cell::new(true));
    let f = fails.clone();
    let behaviour = Behaviour::custom(move |spec, _| {
        if spec.name == "split-task" && f.get() {
            fail(10)
        } else {
            ok(10)
        }
    });
    let mut sim = Sim::new(2, behaviour);
    let split = sim.submit(&one("split"));
    let encode = sim.submit(&one("encode").after_job(by_id(split)));
    sim.run(100);
    assert_eq!(job_state(&sim, encode), JobState::Cancelled);
    sim.crash_and_restore();
    let err = sim.retry(encode).unwrap_err();
    assert_eq!(
        err,
        ControlError::ParentRejects {
            job: encode,
            why: "job 1 (split) ended failed and this job waits for it to succeed".into()
        }
    );
    fails.set(false);
    sim.retry(split).expect("split retried");
    sim.run(100);
    assert_eq!(job_state(&sim, split), JobState::Succeeded);
    assert_eq!(
        job_state(&sim, encode),
        JobState::Cancelled,
        "stays skipped"
    );
    sim.crash_and_restore();
    sim.retry(encode).expect("its parent succeeded now");
    sim.run(100);
    assert_eq!(job_state(&sim, encode), JobState::Succeeded);
    sim.assert_log_matches_scheduler();
}

#[test]
fn cancelling_a_waiting_child_leaves_nothing_indexed() {
    let mut sim = Sim::new(1, Behaviour::fixed(10));
    let a = sim.submit(&one("a"));
    let b = sim.submit(&one("b").after_job(by_id(a)));
    let c = sim.submit(&one("c").after_job(by_id(b).with_condition(Condition::Any)));
    assert_eq!(sim.sched.job_links(), 2);
    sim.cancel(b);
    assert_eq!(job_state(&sim, b), JobState::Cancelled);
    assert_eq!(first_start(&sim, c), None, "c still waits for a slot");
    sim.run(100);
    assert_eq!(
        job_state(&sim, c),
        JobState::Succeeded,
        "any accepts cancelled"
    );
    assert_eq!(sim.sched.job_links(), 0);
    sim.assert_log_matches_scheduler();
}

#[test]
fn a_parent_with_ten_thousand_children_wakes_them_in_one_step() {
    let mut sim = Sim::new(64, Behaviour::fixed(10));
    let split = sim.submit(&one("split"));
    let children: Vec<JobId> = (0..10_000)
        .map(|i| sim.submit(&one(&format!("c{i}")).after_job(by_id(split))))
        .collect();
    assert_eq!(sim.sched.job_links(), 10_000);
    let merge = sim.submit(&one("merge").after_job(by_name("c*")));
    assert_eq!(sim.sched.job_links(), 20_000);
    let events = sim.run(1);
    assert_eq!(events, 1);
    assert_eq!(
        sim.sched.job_links(),
        10_000,
        "children released, merge waits"
    );
    let started = children
        .iter()
        .filter(|&&c| first_start(&sim, c) == Some(10))
        .count();
    assert_eq!(started, 64, "every slot taken by a released child");
    sim.run(100_000);
    assert_eq!(job_state(&sim, merge), JobState::Succeeded);
    assert_eq!(sim.sched.job_links(), 0);
}

/// One job of a random graph: its name (`g{group}-{i}`), its job
/// dependencies and how many tasks it chains.
#[derive(Clone, Debug)]
struct PlannedJob {
    name: String,
    after: Vec<JobDependency>,
    tasks: usize,
}

/// Jobs in groups `g0-*`, `g1-*`...: each may wait on earlier jobs by id
/// or on a whole earlier group by glob, with random conditions; each task
/// fails or succeeds by its name (so the outcome is the same whatever the
/// timing); `gaps[i]` events run before job i is submitted.
fn arb_graph() -> impl Strategy<Value = (Vec<PlannedJob>, HashSet<String>, Vec<usize>)> {
    (2usize..14, 1usize..4).prop_flat_map(|(n, size)| {
        let deps = proptest::collection::vec(
            proptest::collection::vec((any::<u16>(), 0u8..5, any::<bool>()), 0..3),
            n,
        );
        let shapes = proptest::collection::vec((1usize..4, any::<u8>()), n);
        let gaps = proptest::collection::vec(0usize..4, n);
        (deps, shapes, gaps).prop_map(move |(deps, shapes, gaps)| {
            let mut jobs = Vec::new();
            let mut fails = HashSet::new();
            for (i, (ds, (tasks, fate))) in deps.into_iter().zip(shapes).enumerate() {
                let group = i / size;
                let mut after = Vec::new();
                for (p, c, glob) in ds {
                    let condition = match c {
                        0 => Condition::Any,
                        1 => Condition::Failure,
                        _ => Condition::Success,
                    };
                    let dep = if glob && group > 0 {
                        by_name(&format!("g{}-*", p as usize % group))
                    } else if i > 0 {
                        by_id(JobId(1 + (p as usize % i) as i64))
                    } else {
                        continue;
                    };
                    after.push(dep.with_condition(condition));
                }
                for k in 0..tasks {
                    if (fate >> k) % 4 == 0 {
                        fails.insert(format!("j{i}-t{k}"));
                    }
                }
                jobs.push(PlannedJob {
                    name: format!("g{group}-{i}"),
                    after,
                    tasks,
                });
            }
            (jobs, fails, gaps)
        })
    })
}

fn spec_of(i: usize, p: &PlannedJob) -> JobSpec {
    let tasks = (0..p.tasks)
        .map(|k| {
            let task = t(&format!("j{i}-t{k}"));
            if k == 0 {
                task
            } else {
                task.after(&format!("j{i}-t{}", k - 1))
            }
        })
        .collect();
    let mut spec = JobSpec::new(&p.name, tasks);
    spec.after = p.after.clone();
    spec
}

/// Runs the graph (crashing after each count of events in `crashes`);
/// returns every job's and task's final state.
fn simulate(
    jobs: &[PlannedJob],
    fails: &HashSet<String>,
    gaps: &[usize],
    crashes: &[usize],
) -> (Sim, BTreeMap<JobId, (JobState, Vec<TaskState>)>) {
    let fails = fails.clone();
    let behaviour = Behaviour::custom(move |spec, _| {
        if fails.contains(&spec.name) {
            fail(3)
        } else {
            ok(1 + spec.name.len() as u64 % 7)
        }
    });
    let mut sim = Sim::new(2, behaviour);
    let mut crashes = crashes.iter();
    for (i, p) in jobs.iter().enumerate() {
        sim.run(gaps[i]);
        if i % 3 == 2 {
            if let Some(&k) = crashes.next() {
                sim.run(k);
                sim.crash_and_restore();
            }
        }
        sim.submit(&spec_of(i, p));
    }
    for &k in crashes {
        sim.run(k);
        sim.crash_and_restore();
    }
    sim.run(1_000_000);
    let end = sim
        .shadow
        .jobs
        .iter()
        .map(|(id, j)| (*id, (j.state, j.tasks.iter().map(|t| t.state).collect())))
        .collect();
    (sim, end)
}

fn accepts(c: Condition, s: JobState) -> bool {
    match c {
        Condition::Success => s == JobState::Succeeded,
        Condition::Failure => s == JobState::Failed,
        Condition::Any => s.is_terminal(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random job graphs with job dependencies, random failures and random
    /// crashes: no task starts before its job's parents allow (checked by
    /// the harness at every start), every job ends, a job whose parents'
    /// ends its conditions reject is skipped (cancelled, nothing of it
    /// run), one whose parents allow it runs as its tasks' fates say,
    /// nothing stays indexed, and crashes change no decision.
    #[test]
    fn job_graphs_keep_their_conditions_through_failures_and_crashes(
        (jobs, fails, gaps) in arb_graph(),
        crashes in proptest::collection::vec(0usize..12, 0..4),
    ) {
        let (sim, with_crashes) = simulate(&jobs, &fails, &gaps, &crashes);
        let (_, without) = simulate(&jobs, &fails, &gaps, &[]);
        prop_assert_eq!(&with_crashes, &without, "a crash changed a decision");
        prop_assert_eq!(sim.sched.job_links(), 0);
        sim.assert_log_matches_scheduler();
        for (i, p) in jobs.iter().enumerate() {
            let id = JobId(i as i64 + 1);
            let j = &sim.shadow.jobs[&id];
            prop_assert!(j.state.is_terminal(), "job {} ended: {:?}", id, j.state);
            let mut allowed = true;
            for (d, planned) in j.spec.after.iter().zip(&p.after) {
                prop_assert_eq!(&d.job, &planned.job);
                if let tessera_types::JobSelector::Name(g) = &d.job {
                    // A glob over an earlier group matches all of it.
                    let prefix = g.to_string().trim_end_matches('*').to_string();
                    let group: Vec<JobId> = jobs[..i].iter().enumerate()
                        .filter(|(_, q)| q.name.starts_with(&prefix))
                        .map(|(k, _)| JobId(k as i64 + 1))
                        .collect();
                    prop_assert_eq!(&d.resolved, &group);
                }
                for parent in &d.resolved {
                    allowed &= accepts(d.condition, sim.shadow.jobs[parent].state);
                }
            }
            let ran = sim.starts.iter().any(|s| s.1.job == id);
            if allowed {
                let failed = (0..p.tasks).any(|k| fails.contains(&format!("j{i}-t{k}")));
                let want = if failed { JobState::Failed } else { JobState::Succeeded };
                prop_assert_eq!(j.state, want, "job {} with its parents' consent", id);
                prop_assert!(ran);
            } else {
                prop_assert_eq!(j.state, JobState::Cancelled, "job {} skipped", id);
                prop_assert!(!ran, "job {} ran though skipped", id);
                prop_assert!(j.tasks.iter().all(|t| t.state == TaskState::Skipped));
            }
        }
    }

    /// The same graphs with cancels and retries of jobs at random moments
    /// (a retry may be refused while a parent rejects the job): every start
    /// is still checked, and once nothing is left to do every job has
    /// ended and nothing waits or stays indexed.
    #[test]
    fn cancels_and_retries_at_random_moments_leave_nothing_waiting(
        (jobs, fails, gaps) in arb_graph(),
        moves in proptest::collection::vec((0usize..8, any::<u8>(), any::<bool>()), 0..6),
        crash in proptest::option::of(0usize..10),
    ) {
        let fails = fails.clone();
        let mut sim = Sim::new(2, Behaviour::custom(move |spec, _| {
            if fails.contains(&spec.name) { fail(3) } else { ok(2) }
        }));
        for (i, p) in jobs.iter().enumerate() {
            sim.run(gaps[i]);
            sim.submit(&spec_of(i, p));
        }
        for (k, target, cancel) in moves {
            sim.run(k);
            let job = JobId(1 + (target as usize % jobs.len()) as i64);
            if cancel {
                sim.cancel(job);
            } else {
                let _ = sim.retry(job);
            }
            if crash == Some(k) {
                sim.crash_and_restore();
            }
        }
        sim.run(1_000_000);
        prop_assert_eq!(sim.sched.job_links(), 0);
        for (id, j) in &sim.shadow.jobs {
            prop_assert!(j.state.is_terminal(), "job {} ended: {:?}", id, j.state);
        }
        sim.assert_log_matches_scheduler();
    }
}
