use super::*;
use crate::limits::MAX_LINKS;

fn cpus(cpu: u32) -> Offer {
    Offer { cpu, images: false }
}

fn t(name: &str) -> TaskSpec {
    TaskSpec::new(name, Action::Noop)
}

fn strict(existing: &[&str], tasks: &[TaskSpec]) -> Result<Resolved, SpecError> {
    resolve(existing, tasks, cpus(4), Some(MAX_LINKS))
}

/// (selector, condition, members) of each fan-in `task` (a new-batch
/// index) waits on.
fn deps_of(
    r: &Resolved,
    tasks: &[TaskSpec],
    base: usize,
    task: usize,
) -> Vec<(String, Condition, Vec<u32>)> {
    r.waits_on[task]
        .iter()
        .map(|&f| {
            let f = &r.fan_ins[f as usize];
            let (by, dep) = f.named_by;
            let selector = tasks[by as usize - base].deps[dep as usize]
                .selector
                .to_string();
            (selector, f.condition, f.members.to_vec())
        })
        .collect()
}

#[test]
fn resolution_reports_precise_errors() {
    let err = |tasks: Vec<TaskSpec>| strict(&[], &tasks).unwrap_err().to_string();
    assert_eq!(
        err(vec![t("a"), t("a")]),
        "two tasks are named \"a\"; task names must be unique within a job"
    );
    assert_eq!(
        err(vec![t("a").after("b*")]),
        "task \"a\": dependency \"b*\" matches no task"
    );
    assert_eq!(
        err(vec![t("a").after("b"), t("b").after("a")]),
        "the dependencies form a cycle: \"a\" -> \"b\" -> \"a\" (each waits for the next, so \
         none can start)"
    );
    assert_eq!(err(vec![t("a").after("a")]), "task \"a\" depends on itself");
    assert!(err(vec![t("a").after("re:(")]).starts_with("task \"a\": invalid regex"));
    assert_eq!(
        err(vec![t("a").with_cpu(8)]),
        "task \"a\" asks for 8 cpu slots but only 4 exist"
    );
    // Two tasks a glob matches both wait on it: each waits for the other.
    assert_eq!(
        err(vec![t("x-1").after("x-*"), t("x-2").after("x-*")]),
        "the dependencies form a cycle: \"x-2\" -> \"x-1\" -> \"x-2\" (each waits for the \
         next, so none can start)"
    );
    // A cycle through a shared fan-in: a waits on b-*, b-1 on a.
    assert_eq!(
        err(vec![t("a").after("b-*"), t("b-0"), t("b-1").after("a")]),
        "the dependencies form a cycle: \"a\" -> \"b-1\" -> \"a\" (each waits for the next, so \
         none can start)"
    );
    // A longer cycle is named whole, beside a task outside it.
    let ring: Vec<TaskSpec> = (0..4)
        .map(|i| t(&format!("r{i}")).after(&format!("r{}", (i + 1) % 4)))
        .chain([t("free")])
        .collect();
    assert!(err(ring).contains("\"r0\" -> \"r1\" -> \"r2\" -> \"r3\" -> \"r0\""));
    // A ring of 40 is counted in its middle.
    let ring: Vec<TaskSpec> = (0..40)
        .map(|i| t(&format!("r{i}")).after(&format!("r{}", (i + 1) % 40)))
        .collect();
    assert!(err(ring).contains("-> (29 more) ->"));
}

#[test]
fn fan_in_over_a_glob_and_regex_resolves_every_match_once() {
    let tasks = vec![
        t("enc-1"),
        t("enc-2"),
        t("audio"),
        t("merge")
            .after("enc-*")
            .after("re:^(enc-1|audio)$")
            .after_if("audio", Condition::Any),
    ];
    let r = strict(&[], &tasks).unwrap();
    assert_eq!(
        deps_of(&r, &tasks, 0, 3),
        vec![
            ("enc-*".into(), Condition::Success, vec![0, 1]),
            ("re:^(enc-1|audio)$".into(), Condition::Success, vec![0, 2]),
            ("audio".into(), Condition::Any, vec![2]),
        ]
    );
    assert_eq!(r.links, 5 + 3);
    // An expansion sees the existing tasks.
    let more = vec![t("verify").after("merge")];
    let r2 = strict(&["enc-1", "enc-2", "audio", "merge"], &more).unwrap();
    assert_eq!(
        deps_of(&r2, &more, 4, 0),
        vec![("merge".into(), Condition::Success, vec![3])]
    );
    assert_eq!(r2.fan_ins[0].waiters, vec![4]);
}

#[test]
fn a_glob_that_matches_its_own_task_leaves_it_out() {
    let tasks = vec![
        t("encode-0"),
        t("encode-1"),
        t("encode-all").after("encode-*"),
    ];
    let r = strict(&[], &tasks).unwrap();
    assert_eq!(
        deps_of(&r, &tasks, 0, 2),
        vec![("encode-*".into(), Condition::Success, vec![0, 1])]
    );
    // Only itself: nothing to wait for.
    let r = strict(&[], &[t("solo-all").after("solo-*")]).unwrap();
    assert!(r.waits_on[0].is_empty());
}

#[test]
fn many_tasks_waiting_on_one_selector_share_one_fan_in() {
    const N: usize = 3000;
    let mut tasks: Vec<TaskSpec> = (0..N).map(|i| t(&format!("a-{i:04}"))).collect();
    tasks.extend((0..N).map(|i| t(&format!("b-{i:04}")).after("a-*")));
    let r = strict(&[], &tasks).unwrap();
    assert_eq!(r.fan_ins.len(), 1);
    assert_eq!(r.fan_ins[0].members.len(), N);
    assert_eq!(r.fan_ins[0].waiters.len(), N);
    assert_eq!(r.links, 2 * N, "linear, not N² = {}", N * N);
}

#[test]
fn distinct_selectors_over_many_tasks_are_refused_beyond_the_link_budget() {
    // 100 distinct globs (`[aX]-*`, X a different letter each), each
    // matching 20,001 tasks: 2,000,100 links.
    let mut tasks: Vec<TaskSpec> = (0..20_001).map(|i| t(&format!("a-{i:05}"))).collect();
    tasks.extend((0..100u32).map(|i| {
        let other = char::from_u32(0x100 + i).unwrap();
        t(&format!("b-{i}")).after(&format!("[a{other}]-*"))
    }));
    let err = strict(&[], &tasks).unwrap_err();
    assert!(
        matches!(err, SpecError::TooManyLinks { links, max: MAX_LINKS } if links > MAX_LINKS),
        "{err}"
    );
    assert!(err.to_string().contains("more than 2000000 links"), "{err}");
    // A job restored after a restart is not held to it.
    assert!(resolve(&[], &tasks, cpus(4), None).is_ok());
}

#[test]
fn distinct_patterns_are_refused_beyond_the_matching_budget() {
    let mut tasks: Vec<TaskSpec> = (0..100_000).map(|i| t(&format!("a-{i}"))).collect();
    tasks.extend((0..201).map(|i| t(&format!("b-{i}")).after(&format!("re:^a-{i}$"))));
    let err = strict(&[], &tasks).unwrap_err().to_string();
    assert_eq!(
        err,
        "the job's glob and regex dependencies need 201 distinct patterns x 100201 task names \
         = 20140401 matches, more than the 20000000 allowed; use fewer distinct patterns"
    );
}
