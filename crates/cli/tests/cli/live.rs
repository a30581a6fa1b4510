//! The client's live commands against a real server process (`job logs
//! --follow`, `job watch`), and a graceful shutdown (SIGTERM) that stops
//! running work and a restart that resumes it.

use crate::server::Server;
use crate::support::{bootstrap, client_of, run, tessera, Running};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `talk` says "first", waits until the file `go` exists, says "second".
fn flow(go: &Path) -> String {
    format!(
        r#"
name: live
tasks:
  - name: talk
    action: {{ kind: script, script: "echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second" }}
  - name: after
    action: {{ kind: command, argv: ["true"] }}
    deps: [{{ selector: talk }}]
"#,
        go = go.display()
    )
}

/// Its first run outlasts any test; the run after a restart ends at once.
const LONG: &str = r#"
name: long
tasks:
  - name: nap
    action: { kind: script, script: "if [ -e \"$TESSERA_JOB_DIR/ran-once\" ]; then echo again; else touch \"$TESSERA_JOB_DIR/ran-once\"; sleep 3600; fi" }
"#;

fn client(server: &Server, key: &str, args: &[&str]) -> Command {
    client_of(&server.url, key, args)
}

fn submit(server: &Server, key: &str, dir: &Path, yaml: &str) {
    let flow = dir.join("flow.yaml");
    std::fs::write(&flow, yaml).unwrap();
    run(&mut client(
        server,
        key,
        &["submit", flow.to_str().unwrap()],
    ))
    .expect_code(0);
}

/// How long a live client may take to end once its job has.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn logs_follow_and_watch_stream_a_running_job_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let server = Server::start_with(&data, &[]);
    let go = dir.path().join("go");
    submit(&server, &key, dir.path(), &flow(&go));
    // Both follow `talk` while it waits, and end with the job once it is
    // let go.
    let mut follow = Running::spawn_stdout(client(
        &server,
        &key,
        &["job", "logs", "1", "talk", "--follow"],
    ));
    follow.wait_for_line("first", CLIENT_LIMIT);
    let mut watch = Running::spawn_stdout(client(&server, &key, &["job", "watch", "1"]));
    watch.wait_for_line("job live: running", CLIENT_LIMIT);
    std::fs::write(&go, "").unwrap();
    let watch = watch.finish(CLIENT_LIMIT);
    let (watched, err) = (&watch.stdout, &watch.stderr);
    assert_eq!(watch.code, Some(0), "{watched}\n{err}");
    assert!(
        watched.contains("task 0 (talk) attempt 1 succeeded"),
        "{watched}"
    );
    assert!(watched.contains("task 1 (after) running"), "{watched}");
    let last = watched.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("ended: succeeded  (+"),
        "each line says when, after the watch began: {watched}"
    );
    let logged = follow.finish(CLIENT_LIMIT);
    assert_eq!(logged.code, Some(0), "{}\n{}", logged.stdout, logged.stderr);
    assert_eq!(logged.stdout, "first\nsecond\n");
}

#[test]
fn sigterm_stops_running_work_at_once_and_a_restart_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let mut server = Server::start_with(&data, &[]);
    submit(&server, &key, dir.path(), LONG);
    let marker = data.join("jobs/1/ran-once");
    let start = Instant::now();
    while !marker.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "nap never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A watcher holds a stream open: shutdown must not wait for it.
    let mut watcher = Running::spawn_stdout(client(&server, &key, &["job", "watch", "1"]));
    watcher.wait_for_line("job long: running", CLIENT_LIMIT);

    // Neither the hour-long task nor the open stream holds the exit up (a
    // bound on a hang), and no request was cut off by the drain timeout.
    let code = server.terminate(Duration::from_secs(60));
    assert_eq!(code, Some(0), "the server did not exit cleanly on SIGTERM");
    let printed = server.stderr();
    assert!(
        !printed.contains("stopping anyway"),
        "shutdown waited for the drain timeout (the event stream was not closed): {printed}"
    );
    let watched = watcher.finish(CLIENT_LIMIT);
    assert_eq!(watched.code, Some(4));
    let err = &watched.stderr;
    assert!(err.contains("closed the event stream"), "{err}");

    server = Server::start_with(&data, &[]);
    let start = Instant::now();
    loop {
        let out = run(&mut client(&server, &key, &["job", "show", "1"]));
        if out.stdout.contains("— succeeded") {
            let nap = out
                .stdout
                .lines()
                .find(|l| l.ends_with("nap") || l.contains(" nap "));
            let fields: Vec<&str> = nap.unwrap().split_whitespace().collect();
            assert_eq!(
                fields[..4],
                ["0", "succeeded", "2", "nap"],
                "{}",
                out.stdout
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not resumed:\n{}{}",
            out.stdout,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = run(&mut client(&server, &key, &["job", "logs", "1", "nap"]));
    assert_eq!(logs.stdout, "again\n");
    drop(server);
}

#[test]
fn secrets_stay_out_of_what_the_server_prints() {
    // A database URL's password, in an error about that database.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tessera();
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--database",
            "postgres://tessera:hunter2-secret@127.0.0.1:1/nowhere",
        ]);
    let out = run(&mut cmd);
    assert_ne!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(
        printed.contains("127.0.0.1"),
        "says which database: {printed}"
    );
    assert!(
        !printed.contains("hunter2"),
        "the password leaked: {printed}"
    );

    // API keys (right, wrong) and a task's env value, through a whole job.
    let data = dir.path().join("data2");
    let key = bootstrap(&data);
    let mut child = tessera()
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let with = |k: &str, args: &[&str]| run(&mut client_of(&url, k, args));
    let flow = dir.path().join("env.yaml");
    std::fs::write(
        &flow,
        "name: env\ntasks:\n  - {name: t, env: {TOKEN: env-secret-value}, action: {kind: script, script: 'test -n \"$TOKEN\"'}}\n",
    )
    .unwrap();
    with(&key, &["submit", flow.to_str().unwrap()]).expect_code(0);
    let (head, secret) = key.rsplit_once('_').unwrap();
    let wrong = format!("{head}_{}", "z".repeat(secret.len()));
    assert_eq!(with(&wrong, &["jobs"]).code, Some(3));
    let start = Instant::now();
    while !with(&key, &["job", "show", "1"])
        .stdout
        .contains("— succeeded")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "job 1 did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    child.wait().unwrap();
    let printed = format!("{first}{rest}{err}");
    assert!(!printed.contains(secret), "a key leaked: {printed}");
    assert!(
        !printed.contains("zzzzzzzz"),
        "a wrong key leaked: {printed}"
    );
    assert!(
        !printed.contains("env-secret-value"),
        "an env value leaked: {printed}"
    );
}
