//! `tessera server --docker`: a task that names an image runs in a
//! container on this machine's Docker engine, shares the job's folder with
//! the host tasks, and runs as the server's user; without `--docker` the
//! same spec is refused at submission.

use crate::server::Server;
use crate::support::{bootstrap, client_of, docker_engine_present, image_flow, run};
use std::time::{Duration, Instant};

/// `inside` writes a file into the job's folder and prints its uid;
/// `outside`, a host process, reads the file back.
fn boxed() -> String {
    image_flow(r#"echo made-in-a-container > \"$TESSERA_JOB_DIR/handoff\"; id -u"#)
}

fn client(server: &Server, key: &str, args: &[&str]) -> crate::support::Outcome {
    run(&mut client_of(&server.url, key, args))
}

#[test]
fn an_image_task_runs_in_a_container_and_hands_files_to_host_tasks() {
    if !docker_engine_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    // `outside` runs in $TESSERA_JOB_DIR/tasks/outside: ../../handoff is
    // the file `inside` left in the job's folder.
    let flow = dir.path().join("flow.yaml");
    std::fs::write(&flow, boxed()).unwrap();

    // Without --docker: refused at submission, saying how to enable it.
    let server = Server::start_with(&data, &[]);
    let refused = client(&server, &key, &["submit", flow.to_str().unwrap()]);
    assert_eq!(
        refused.code,
        Some(3),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(refused.stderr.contains("--docker"), "{}", refused.stderr);
    drop(server);

    let server = Server::start_with(&data, &["--docker"]);
    client(&server, &key, &["submit", flow.to_str().unwrap()]).expect_code(0);
    let start = Instant::now();
    loop {
        let shown = client(&server, &key, &["job", "show", "1"]);
        if shown.stdout.contains("— succeeded") {
            break;
        }
        assert!(
            !shown.stdout.contains("— failed"),
            "{}\n{}",
            shown.stdout,
            client(&server, &key, &["job", "logs", "1", "inside", "--stderr"]).stdout
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            shown.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // As root, the container runs as the project's own task user (the
    // first project, id 1: uid 200001); otherwise as the server's user.
    // SAFETY: geteuid has no preconditions.
    let uid = match unsafe { libc::geteuid() } {
        0 => 200_001,
        me => me,
    };
    let inside = client(&server, &key, &["job", "logs", "1", "inside"]);
    assert_eq!(
        inside.stdout.trim(),
        uid.to_string(),
        "runs as the project's task user (root) or the server's user"
    );
    let outside = client(&server, &key, &["job", "logs", "1", "outside"]);
    assert_eq!(outside.stdout, "made-in-a-container\n");
}
