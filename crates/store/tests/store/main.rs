//! The store's tests, one binary: the conformance suite on each backend,
//! each backend's own behaviour (locking, schema versions, secondary
//! connections) and throughput benchmarks (`#[ignore]`d).
//!
//! PostgreSQL tests need a server: set `TESSERA_TEST_POSTGRES` to a URL of a
//! database the tests may create schemas in (see `postgres.rs`).

/// One `#[test]` per conformance test, each on a fresh backend from `$make`
/// (a function returning `Option<impl Backend>`; `None` skips), and a test
/// that the list here is the whole suite.
macro_rules! conformance_tests {
    ($make:ident) => {
        conformance_tests!(@ $make;
            create_and_load_round_trip,
            expansion_appends_tasks,
            apply_is_all_or_nothing,
            task_changes_are_recorded,
            suspension_and_priority_persist,
            load_unfinished_excludes_terminal_jobs,
            state_survives_reopen,
            a_finished_job_loads_back_as_it_was,
            find_job_by_key_returns_newest,
            attempts_record_outcome_and_usage,
            names_are_unique_and_not_blank,
            projects_start_with_their_owner,
            members_are_added_changed_and_removed,
            api_keys_are_created_found_revoked_and_touched,
            jobs_belong_to_projects,
            counts_group_by_state_and_project,
            pages_follow_index_order,
            quotas_are_kept_per_project,
            usage_since_charges_ended_attempts,
            attempts_record_their_node_and_transfers,
            starts_are_written_all_or_nothing,
            node_usage_groups_ended_attempts_by_node,
            job_dependencies_and_names_round_trip,
        );
    };
    (@ $make:ident; $($name:ident),* $(,)?) => {
        mod conformance_tests {
            use tessera_store::conformance;
            $(#[test]
            fn $name() {
                if let Some(mut backend) = super::$make() {
                    conformance::$name(&mut backend);
                }
            })*

            #[test]
            fn every_conformance_test_is_run_here() {
                let here = [$(stringify!($name)),*];
                let all: Vec<_> = conformance::TESTS.iter().map(|(n, _)| *n).collect();
                assert_eq!(here.as_slice(), all.as_slice());
            }
        }
    };
}

/// Prints how many changes per second `apply` commits to `store`, in
/// batches of 1000 shaped like a real run (a task's life: ready, running,
/// attempt started, attempt ended, succeeded). Not a timed assertion.
fn bench_apply(label: &str, store: &mut dyn tessera_store::Store) {
    use tessera_types::{
        Action, AttemptOutcome, AttemptUsage, Change, JobSpec, NodeId, TaskRef, TaskSpec, TaskState,
    };
    let tasks_per_job = 2_000u32;
    let jobs = 10;
    let mut batches = Vec::new();
    for j in 0..jobs {
        let tasks = (0..tasks_per_job)
            .map(|i| TaskSpec::new(format!("t{i}"), Action::Noop))
            .collect();
        let job = store
            .create_job(None, &JobSpec::new(format!("bench-{j}"), tasks), None, 0)
            .unwrap();
        let mut changes = Vec::new();
        for i in 0..tasks_per_job {
            let task = TaskRef::new(job, i);
            let t = |state, attempt| Change::Task {
                task,
                state,
                attempt,
                failures: 0,
                not_before: 0,
                reason: None,
            };
            changes.push(t(TaskState::Ready, 0));
            changes.push(t(TaskState::Running, 1));
            changes.push(Change::AttemptStarted {
                task,
                attempt: 1,
                node: NodeId::LOCAL,
                at: 1,
            });
            let usage = AttemptUsage {
                wall_ms: 10,
                cpu_ms: 9,
                max_rss_kb: 1000,
                ..Default::default()
            };
            changes.push(Change::AttemptEnded {
                task,
                attempt: 1,
                outcome: AttemptOutcome::Succeeded,
                usage,
                at: 2,
            });
            changes.push(t(TaskState::Succeeded, 1));
        }
        batches.extend(changes.chunks(1_000).map(<[Change]>::to_vec));
    }
    let total: usize = batches.iter().map(Vec::len).sum();
    let start = std::time::Instant::now();
    for batch in &batches {
        store.apply(batch, 3).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "bench_apply_throughput ({label}): {total} changes in {} batches of 1000 in {secs:.3}s = {:.0} changes/s",
        batches.len(),
        total as f64 / secs
    );
}

mod postgres;
mod sqlite;
