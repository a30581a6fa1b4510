use super::*;
use tessera_types::Condition;

fn t(name: &str) -> TaskSpec {
    TaskSpec::new(name, Action::Noop)
}

fn names(job: &JobSpec) -> Vec<&str> {
    job.tasks.iter().map(|t| t.name.as_str()).collect()
}

fn err(spec: JobSpec) -> String {
    compile(&spec).unwrap_err().to_string()
}

#[test]
fn specs_without_arrays_or_templates_compile_to_themselves() {
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new("a", Action::command(["echo", "$HOME", "${HOME}", "$$"]))
                .with_env("X", "${PATH}"),
            TaskSpec::new("b", Action::script("echo $$ ${HOME}")).after("a"),
        ],
    );
    assert_eq!(compile(&spec).unwrap(), spec);
}

#[test]
fn an_array_by_count_names_elements_by_padded_index_and_sets_env() {
    let spec = JobSpec::new("j", vec![t("enc").with_array(ArraySpec::count(11))]);
    let job = compile(&spec).unwrap();
    assert_eq!(job.tasks.len(), 11);
    assert_eq!(job.tasks[0].name, "enc-00");
    assert_eq!(job.tasks[10].name, "enc-10");
    let e = &job.tasks[7];
    assert_eq!(e.env[ARRAY_INDEX_ENV], "7");
    assert_eq!(e.env[ARRAY_COUNT_ENV], "11");
    assert!(job.tasks.iter().all(|t| t.array.is_none()));
}

#[test]
fn an_array_by_range_includes_both_ends() {
    let spec = JobSpec::new("j", vec![t("c").with_array(ArraySpec::range(8, 12))]);
    let job = compile(&spec).unwrap();
    assert_eq!(names(&job), ["c-08", "c-09", "c-10", "c-11", "c-12"]);
    assert_eq!(job.tasks[0].env[ARRAY_INDEX_ENV], "8");
    assert_eq!(job.tasks[0].env[ARRAY_COUNT_ENV], "5");
}

#[test]
fn a_dependency_on_an_array_name_fans_in_on_every_element() {
    let spec = JobSpec::new(
        "j",
        vec![
            t("prep"),
            t("enc").with_array(ArraySpec::count(3)).after("prep"),
            t("merge").after_if("enc", Condition::Any).after("prep"),
            t("one").after("enc-1"),
            t("glob").after("enc-*"),
        ],
    );
    let job = compile(&spec).unwrap();
    assert_eq!(
        names(&job),
        ["prep", "enc-0", "enc-1", "enc-2", "merge", "one", "glob"]
    );
    // Each element keeps the array's own dependencies.
    assert!(job.tasks[1..4]
        .iter()
        .all(|e| e.deps == t("x").after("prep").deps));
    // One selector for the whole array, not one dependency per element.
    assert_eq!(
        deps(&job.tasks[4]),
        [
            ("enc-*".to_string(), Condition::Any),
            ("prep".to_string(), Condition::Success),
        ]
    );
    assert_eq!(job.tasks[5].deps, t("x").after("enc-1").deps);
    assert_eq!(job.tasks[6].deps, t("x").after("enc-*").deps);
}

fn deps(t: &TaskSpec) -> Vec<(String, Condition)> {
    t.deps
        .iter()
        .map(|d| (d.selector.to_string(), d.condition))
        .collect()
}

#[test]
fn an_array_dependency_matches_its_elements_only_when_other_names_look_alike() {
    // "enc-all" and "enc-10" match enc-*: the array's selector is then a
    // regex for exactly its indices (8 to 12, two digits).
    let spec = JobSpec::new(
        "j",
        vec![
            t("enc").with_array(ArraySpec::range(8, 12)),
            t("enc-all").after("enc"),
            t("enc-0").after("enc"),
        ],
    );
    let job = compile(&spec).unwrap();
    let sel = "re:^enc-(?:0[8-9]|1[0-2])$".to_string();
    assert_eq!(deps(&job.tasks[5]), [(sel.clone(), Condition::Success)]);
    let mut s = crate::Scheduler::new(1);
    s.submit(tessera_types::JobId(1), &job, 0).unwrap();
    let why = s.why_waiting(tessera_types::TaskRef::new(tessera_types::JobId(1), 5), 0);
    assert_eq!(
        why.unwrap().to_string(),
        format!("waiting for 5 of 5 tasks matching {sel}: enc-08, enc-09, enc-10, enc-11, enc-12")
    );
    // An array may not wait for itself.
    let looped = JobSpec::new("j", vec![t("a").with_array(ArraySpec::count(1)).after("a")]);
    assert_eq!(
        compile(&looped).unwrap_err().to_string(),
        "task \"a\" depends on itself"
    );
}

#[test]
fn digit_ranges_match_exactly_their_numbers() {
    for (lo, hi) in [
        (0, 0),
        (0, 9),
        (3, 7),
        (0, 10),
        (5, 12),
        (0, 99),
        (1, 100),
        (7, 1000),
        (0, 2999),
        (123, 456),
        (99, 101),
        (10, 19),
        (950, 1049),
    ] {
        let width = hi.to_string().len();
        let re = regex::Regex::new(&format!("^(?:{})$", digits_between(lo, hi, width))).unwrap();
        for n in 0..10u64.pow(width as u32) {
            let text = format!("{n:0width$}");
            assert_eq!(
                re.is_match(&text),
                (lo..=hi).contains(&n),
                "{lo}..={hi}: {text}"
            );
        }
        assert!(
            !re.is_match(&format!("{hi}0")),
            "{lo}..={hi}: one digit more"
        );
    }
    assert_eq!(digits_between(5, 12, 2), "0[5-9]|1[0-2]");
    assert_eq!(digits_between(0, 2999, 4), "[0-2][0-9]{3}");
}

#[test]
fn array_on_array_compiles_to_one_selector_per_task() {
    // The attack: two arrays of 3,000, the second waiting for the first.
    // Compiled, each element of `b` names one selector (not 3,000).
    for dep in ["a", "a-*"] {
        let spec = JobSpec::new(
            "j",
            vec![
                t("a").with_array(ArraySpec::count(3000)),
                t("b").with_array(ArraySpec::count(3000)).after(dep),
            ],
        );
        let job = compile(&spec).unwrap();
        assert_eq!(job.tasks.len(), 6000);
        let deps: usize = job.tasks.iter().map(|t| t.deps.len()).sum();
        assert_eq!(deps, 3000, "{dep}");
        assert_eq!(job.tasks[5999].deps[0].selector.to_string(), "a-*");
    }
}

#[test]
fn numbers_that_make_no_sense_are_refused_with_what_to_do() {
    let refused = |task: TaskSpec| {
        compile(&JobSpec::new("j", vec![task]))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused(t("a").with_time_limit_ms(0)),
        "task \"a\": time_limit_ms must be at least 1 (omit it for no limit)"
    );
    assert_eq!(
        refused(t("a").with_retries(101, 10)),
        "task \"a\" asks for 101 retries; at most 100 are allowed"
    );
    let mut huge = t("a");
    huge.retry.backoff_ms = u64::MAX;
    assert_eq!(
        refused(huge),
        format!(
            "task \"a\": retry.backoff_ms is {} ms; at most 86400000 ms (a day) is allowed",
            u64::MAX
        )
    );
    let mut huge = t("a");
    huge.retry.backoff_max_ms = 86_400_001;
    assert!(refused(huge).contains("retry.backoff_max_ms is 86400001 ms"));
    let mut big = t("a");
    big.resources.memory_mb = u64::MAX;
    assert!(refused(big).contains("MiB of memory; at most 16777216 MiB (16 TiB)"));
    assert!(refused(t(&"/".repeat(67))).contains("as a folder name it takes 201 bytes"));
    assert_eq!(
        refused(t("a").with_cpu(0)),
        "task \"a\" asks for 0 cpu slots; ask for at least 1"
    );
    // An array at the very end of u64 expands and fans in exactly.
    let spec = JobSpec::new(
        "j",
        vec![
            t("z").with_array(ArraySpec::range(u64::MAX - 1, u64::MAX)),
            t("after").after("z"),
        ],
    );
    let job = compile(&spec).unwrap();
    assert_eq!(names(&job)[1], format!("z-{}", u64::MAX));
    assert_eq!(job.tasks[2].deps, t("x").after("z-*").deps);
    // At the limits: accepted.
    let mut edge = t(&"x".repeat(200))
        .with_time_limit_ms(1)
        .with_retries(100, 86_400_000);
    edge.retry.backoff_max_ms = 86_400_000;
    edge.resources.memory_mb = 16 * 1024 * 1024;
    compile(&JobSpec::new("j", vec![edge])).unwrap();
}

#[test]
fn params_and_array_fields_are_substituted_everywhere_they_may_appear() {
    let spec = JobSpec::new(
        "j",
        vec![
            TaskSpec::new(
                "a",
                Action::command([
                    "enc",
                    "--preset=${params.preset}",
                    "${array.index}/${array.count}",
                ]),
            )
            .with_array(ArraySpec::range(1, 2))
            .with_env("OUT", "${params.dir}/out-${array.index}.mkv"),
            TaskSpec::new(
                "s",
                Action::Script {
                    script: "echo ${params.preset} $HOME ${HOME} $$ $${params.preset}".into(),
                    shell: Some("${params.shell}".into()),
                },
            ),
            TaskSpec::new("o", Action::op("probe", ["${params.dir}/x.mkv"])),
        ],
    )
    .with_param("preset", "slow")
    .with_param("dir", "/media")
    .with_param("shell", "/bin/bash");
    let job = compile(&spec).unwrap();
    assert_eq!(
        job.tasks[1].action,
        Action::command(["enc", "--preset=slow", "2/2"])
    );
    assert_eq!(job.tasks[1].env["OUT"], "/media/out-2.mkv");
    assert_eq!(
        job.tasks[2].action,
        Action::Script {
            script: "echo slow $HOME ${HOME} $$ ${params.preset}".into(),
            shell: Some("/bin/bash".into()),
        }
    );
    assert_eq!(job.tasks[3].action, Action::op("probe", ["/media/x.mkv"]));
    assert_eq!(job.params, spec.params);
}

#[test]
fn template_mistakes_name_the_task_and_the_parameter() {
    let cmd = |arg: &str| TaskSpec::new("a", Action::command(["run", arg]));
    assert_eq!(
        err(JobSpec::new("j", vec![cmd("${params.presett}")]).with_param("preset", "x")),
        "task \"a\" uses ${params.presett}, but the job has no parameter \"presett\""
    );
    assert_eq!(
        err(JobSpec::new("j", vec![cmd("${array.index}")])),
        "task \"a\" uses ${array.index}, but it is not an array task"
    );
    assert_eq!(
        err(JobSpec::new(
            "j",
            vec![cmd("${array.idx}").with_array(ArraySpec::count(1))]
        )),
        "task \"a-0\" uses ${array.idx}; only ${array.index} and ${array.count} exist"
    );
    assert_eq!(
        err(JobSpec::new("j", vec![cmd("x${params.a")])),
        "task \"a\": \"${params.a\" has no closing \"}\""
    );
    let env = t("e").with_env("K", "${params.nope}");
    assert_eq!(
        err(JobSpec::new("j", vec![env])),
        "task \"e\" uses ${params.nope}, but the job has no parameter \"nope\""
    );
}

#[test]
fn arrays_are_checked_and_capped() {
    let arr = |a: ArraySpec| JobSpec::new("j", vec![t("x").with_array(a)]);
    assert_eq!(
        err(arr(ArraySpec::count(MAX_ARRAY + 1))),
        "task \"x\" is an array of 100001 tasks; at most 100000 are allowed"
    );
    assert_eq!(
        err(arr(ArraySpec::range(0, u64::MAX))),
        format!(
            "task \"x\" is an array of {} tasks; at most 100000 are allowed",
            u64::MAX
        )
    );
    assert_eq!(
        compile(&arr(ArraySpec::count(MAX_ARRAY)))
            .unwrap()
            .tasks
            .len(),
        100_000
    );
    assert_eq!(
        err(arr(ArraySpec::count(0))),
        "task \"x\": an array's count must be at least 1"
    );
    assert_eq!(
        err(arr(ArraySpec::range(5, 4))),
        "task \"x\": the array's end (4) is before its start (5)"
    );
    let both = ArraySpec {
        count: Some(3),
        ..ArraySpec::range(1, 2)
    };
    assert_eq!(
        err(arr(both)),
        "task \"x\": an array needs either `count: N` or both `start: A` and `end: B`"
    );
    assert_eq!(
        err(JobSpec::new(
            "j",
            vec![t("x").with_array(ArraySpec::count(2)), t("x")]
        )),
        "two tasks are named \"x\"; task names must be unique within a job"
    );
    assert_eq!(
        err(JobSpec::new(
            "j",
            vec![t("x").with_array(ArraySpec::count(2)), t("x-1")]
        )),
        "two tasks are named \"x-1\"; task names must be unique within a job"
    );
}

#[test]
fn images_gpus_and_empty_scripts_are_refused_clearly() {
    assert_eq!(
        err(JobSpec::new(
            "j",
            vec![TaskSpec::new("x", Action::command(["true"])).with_image("alpine:3")]
        )),
        "task \"x\" names the container image \"alpine:3\"; container tasks need a Docker \
         engine, and this server runs without one (start it with --docker, or remove `image` to run \
         the command on the host)"
    );
    // With a Docker executor, the scheduler takes it.
    let mut sched = crate::Scheduler::new(4);
    let imaged = JobSpec::new(
        "j",
        vec![TaskSpec::new("x", Action::command(["true"])).with_image("alpine:3")],
    );
    assert!(sched.compile(&imaged).is_err());
    sched.set_images(true);
    assert_eq!(
        sched.compile(&imaged).unwrap().tasks[0].image.as_deref(),
        Some("alpine:3")
    );
    assert_eq!(
        err(JobSpec::new("j", vec![t("g").with_gpus(2)])),
        "task \"g\" asks for gpus: 2, but this machine offers no GPUs; remove `resources.gpus`"
    );
    // Labels are recorded, not enforced.
    assert!(compile(&JobSpec::new("j", vec![t("l").with_label("zone", "a")])).is_ok());
    assert_eq!(
        err(JobSpec::new(
            "j",
            vec![TaskSpec::new("s", Action::script(" \n"))]
        )),
        "task \"s\": a script needs some text"
    );
}

#[test]
fn the_scheduler_refuses_uncompiled_arrays_and_checks_capacity_when_compiling() {
    let spec = JobSpec::new("j", vec![t("x").with_array(ArraySpec::count(2))]);
    let mut s = crate::Scheduler::new(2);
    assert_eq!(
        s.submit(tessera_types::JobId(1), &spec, 0)
            .unwrap_err()
            .to_string(),
        "task \"x\" is an array task, but arrays are expanded only when a job is submitted \
         (an expansion may not add array tasks)"
    );
    let big = JobSpec::new(
        "j",
        vec![t("x").with_cpu(3).with_array(ArraySpec::count(2))],
    );
    assert_eq!(
        s.validate(&big).unwrap_err().to_string(),
        "task \"x-0\" asks for 3 cpu slots but only 2 exist"
    );
    let compiled = s.compile(&spec).unwrap();
    assert_eq!(
        s.submit(tessera_types::JobId(1), &compiled, 0)
            .unwrap()
            .commands
            .len(),
        2
    );
}

#[test]
fn the_yaml_forms_parse() {
    let yaml = r#"
name: j
params: { preset: fast }
tasks:
  - name: enc
    array: { count: 3 }
    action: { kind: script, script: "echo ${params.preset} $TESSERA_ARRAY_INDEX" }
    resources: { cpu: 1, labels: { zone: a } }
  - name: tail
    array: { start: 5, end: 9 }
    action: { kind: command, argv: [echo, "${array.index}"] }
  - name: merge
    deps: [{ selector: enc }]
    action: { kind: noop }
"#;
    let spec: JobSpec = serde_yaml::from_str(yaml).unwrap();
    let job = compile(&spec).unwrap();
    assert_eq!(job.tasks.len(), 9);
    assert_eq!(job.tasks[8].deps, t("x").after("enc-*").deps);
    assert_eq!(job.tasks[3].action, Action::command(["echo", "5"]));
}

#[test]
fn the_readme_job_spec_compiles() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("A job spec:\n\n```yaml\n")
        .expect("the README shows a job spec");
    let body = &readme[start..];
    let yaml = &body[body.find('\n').unwrap()..];
    let yaml = &yaml[yaml.find("```yaml\n").unwrap() + 8..];
    let yaml = &yaml[..yaml.find("```").unwrap()];
    let spec: JobSpec = serde_yaml::from_str(yaml).unwrap();
    let job = compile(&spec).unwrap();
    assert_eq!(job.tasks.len(), 12);
    assert_eq!(job.tasks[0].action, Action::command(["echo", "hello"]));
    let fan_in: Vec<String> = job.tasks[11]
        .deps
        .iter()
        .map(|d| d.selector.to_string())
        .collect();
    assert_eq!(fan_in.len(), 1, "{fan_in:?}: one selector for the array");
}

#[test]
fn mounts_need_an_image_and_plain_paths() {
    let mut sched = crate::Scheduler::new(4);
    sched.set_images(true);
    let mount = |target: &str| tessera_types::Mount {
        volume: "storage".into(),
        subpath: None,
        target: target.into(),
        read_only: false,
    };
    let mut host = TaskSpec::new("host", Action::command(["true"]));
    host.mounts = vec![mount("/uploads")];
    let err = sched
        .compile(&JobSpec::new("j", vec![host.clone()]))
        .unwrap_err();
    assert!(err.to_string().contains("names no image"), "{err}");
    let mut boxed = host.clone();
    boxed.image = Some("img".into());
    sched
        .compile(&JobSpec::new("j", vec![boxed.clone()]))
        .unwrap();
    boxed.mounts = vec![mount("uploads")];
    let err = sched.compile(&JobSpec::new("j", vec![boxed])).unwrap_err();
    assert!(
        err.to_string().contains("must be an absolute path"),
        "{err}"
    );
}
