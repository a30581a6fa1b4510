//! Generic DAGs through the API: array tasks of real scripts with a fan-in,
//! template parameters, and the features this server refuses (images, GPUs).

use crate::harness::Server;
use axum::http::StatusCode;

const ARRAY_JOB: &str = r#"
name: squares
params:
  suffix: txt
tasks:
  - name: part
    array: { count: 5 }
    action:
      kind: script
      script: |
        echo "$TESSERA_ARRAY_INDEX of $TESSERA_ARRAY_COUNT" > "$TESSERA_JOB_DIR/part-${array.index}.${params.suffix}"
  - name: gather
    deps: [{ selector: part }]
    action:
      kind: script
      script: |
        set -e
        cd "$TESSERA_JOB_DIR"
        got=$(cat part-*.${params.suffix} | sort -n | tr '\n' ',')
        echo "$got"
        test "$got" = "0 of 5,1 of 5,2 of 5,3 of 5,4 of 5,"
"#;

#[tokio::test]
async fn an_array_of_scripts_fans_in_on_a_task_that_reads_every_element() {
    let s = Server::start();
    let key = s.admin_key.clone();
    s.project("g", &key).await;
    let r = s
        .post_yaml("/api/v1/projects/g/jobs", &key, ARRAY_JOB)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let job = s.wait_job(id, &key).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    let tasks = s
        .get(&format!("/api/v1/jobs/{id}/tasks"), &key)
        .await
        .json();
    let tasks = tasks.as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["part-0", "part-1", "part-2", "part-3", "part-4", "gather"]
    );
    // The stored spec is the compiled one: no array, templates substituted.
    assert!(tasks[3]["spec"].get("array").is_none(), "{}", tasks[3]);
    assert_eq!(tasks[3]["spec"]["env"]["TESSERA_ARRAY_INDEX"], "3");
    let script = tasks[3]["spec"]["action"]["script"].as_str().unwrap();
    assert!(script.contains("part-3.txt"), "{script}");
    // A dependency on the array is one selector over its elements.
    assert_eq!(tasks[5]["spec"]["deps"][0]["selector"], "part-*");
    assert_eq!(tasks[5]["spec"]["deps"].as_array().unwrap().len(), 1);

    let log = s
        .get(&format!("/api/v1/jobs/{id}/tasks/5/logs"), &key)
        .await;
    assert_eq!(log.text(), "0 of 5,1 of 5,2 of 5,3 of 5,4 of 5,\n");
}

#[tokio::test]
async fn images_gpus_and_unknown_parameters_are_refused_with_422() {
    let s = Server::start();
    let key = s.admin_key.clone();
    s.project("g", &key).await;
    let cases = [
        (
            "name: i\ntasks:\n  - {name: x, image: \"alpine:3\", action: {kind: command, argv: [\"true\"]}}\n",
            "invalid job: task \"x\" names the container image \"alpine:3\"; container tasks need \
             a Docker engine, and this server runs without one (start it with --docker, or remove \
             `image` to run the command on the host)",
        ),
        (
            "name: g\ntasks:\n  - {name: x, resources: {gpus: 1}, action: {kind: noop}}\n",
            "invalid job: task \"x\" asks for gpus: 1, but this machine offers no GPUs; \
             remove `resources.gpus`",
        ),
        (
            "name: p\nparams: {a: b}\ntasks:\n  - {name: x, action: {kind: script, script: \"echo ${params.c}\"}}\n",
            "invalid job: task \"x\" uses ${params.c}, but the job has no parameter \"c\"",
        ),
        (
            "name: a\ntasks:\n  - {name: x, array: {count: 100001}, action: {kind: noop}}\n",
            "invalid job: task \"x\" is an array of 100001 tasks; at most 100000 are allowed",
        ),
    ];
    for (yaml, message) in cases {
        let r = s.post_yaml("/api/v1/projects/g/jobs", &key, yaml).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.code(), "invalid_spec");
        assert_eq!(r.message(), message);
    }
}
