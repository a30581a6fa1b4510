//! `tessera server` as a process: the admin bootstrap, the client commands
//! against the REST API, a YAML flow of real commands, and a SIGKILL of the
//! server mid-job followed by a restart that finishes the job.

use crate::support::{run, tessera, Outcome};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A running `tessera server` on a free loopback port.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    /// What it printed on stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// With extra flags after the listen address and data directory.
    pub(crate) fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut child = tessera()
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut from, into) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut from, &mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                into.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&text);
            }
        });
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).expect("first line");
        // Keep draining what it prints later.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Server { child, url, stderr }
    }

    /// What the server printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (at most `limit`) for the exit; its exit code.
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<i32> {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(start.elapsed() < limit, "no exit {limit:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tessera ARGS` as a client of `server` with `key`.
fn client(server: &Server, key: &str, config: &Path, args: &[&str]) -> Outcome {
    let mut cmd: Command = tessera();
    cmd.env("TESSERA_SERVER", &server.url)
        .env("TESSERA_KEY", key)
        .env("XDG_CONFIG_HOME", config)
        .args(args);
    run(&mut cmd)
}

/// Polls `tessera job show` until `pred` holds (bounded).
fn wait_until(
    server: &Server,
    key: &str,
    config: &Path,
    job: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let out = client(server, key, config, &["job", "show", job]);
        if out.code == Some(0) && pred(&out.stdout) {
            return out.stdout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}:\n{}{}",
            out.stdout,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (state, attempt) of the task named `name` in `tessera job show` output.
fn row(show: &str, name: &str) -> Option<(String, u32)> {
    show.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[3] == name).then(|| (f[1].to_string(), f[2].parse().unwrap_or(0)))
    })
}

/// `slow` runs until the file `go` exists.
fn flow(go: &Path) -> String {
    format!(
        r#"
name: survive
tasks:
  - name: quick
    action: {{ kind: command, argv: ["sh", "-c", "echo quick"] }}
  - name: slow
    action: {{ kind: command, argv: ["sh", "-c", "while [ ! -e {go} ]; do sleep 0.05; done; echo slow done"] }}
    deps: [{{ selector: quick }}]
  - name: merge
    action: {{ kind: command, argv: ["sh", "-c", "echo merged job $TESSERA_JOB_ID"] }}
    deps: [{{ selector: "re:^(quick|slow)$" }}]
"#,
        go = go.display()
    )
}

#[test]
fn a_yaml_flow_survives_a_sigkill_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let mut boot = tessera();
    boot.args([
        "admin",
        "create-user",
        "ana",
        "--admin",
        "--project",
        "video",
        "--data-dir",
    ])
    .arg(&data);
    let created = run(&mut boot);
    created.expect_code(0);
    let key = created.stdout.trim().to_string();
    assert!(key.starts_with("tsk_"), "a key on stdout: {key:?}");

    let server = Server::start(&data);
    let flow = dir.path().join("flow.yaml");
    let go = dir.path().join("go");
    std::fs::write(&flow, self::flow(&go)).unwrap();
    let submitted = client(&server, &key, &config, &["submit", flow.to_str().unwrap()]);
    submitted.expect_code(0);
    assert!(
        submitted.stdout.starts_with("submitted job 1"),
        "{}",
        submitted.stdout
    );

    // Kill the server while `slow` runs (it cannot end before `go`).
    wait_until(&server, &key, &config, "1", "slow to run", |s| {
        row(s, "slow").is_some_and(|r| r.0 == "running")
    });
    server.sigkill();
    std::fs::write(&go, "").unwrap();

    let server = Server::start(&data);
    let shown = wait_until(&server, &key, &config, "1", "the job to finish", |s| {
        s.contains("— succeeded")
    });
    assert_eq!(
        row(&shown, "slow"),
        Some(("succeeded".into(), 2)),
        "slow ran again after the kill:\n{shown}"
    );
    assert_eq!(
        row(&shown, "quick"),
        Some(("succeeded".into(), 1)),
        "quick was not re-run:\n{shown}"
    );
    let logs = client(&server, &key, &config, &["job", "logs", "1", "merge"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout.trim(), "merged job 1");
    let listed = client(&server, &key, &config, &["jobs"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains(" succeeded ") && l.ends_with(" survive")),
        "{}",
        listed.stdout
    );
}

#[test]
fn the_client_says_clearly_when_it_is_refused_or_not_logged_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let mut boot = tessera();
    boot.args(["admin", "create-user", "bo", "--project", "p", "--data-dir"])
        .arg(&data);
    run(&mut boot).expect_code(0);
    let server = Server::start(&data);
    let bad = client(&server, "tsk_nope_nope", &config, &["jobs"]);
    assert_eq!(bad.code, Some(3), "{bad:?}");
    assert!(
        bad.stderr.starts_with("tessera: the server refused (401)"),
        "{}",
        bad.stderr
    );
    let mut nologin = tessera();
    nologin
        .env("XDG_CONFIG_HOME", &config)
        .env_remove("TESSERA_SERVER")
        .env_remove("TESSERA_KEY")
        .arg("jobs");
    let out = run(&mut nologin);
    assert_eq!(out.code, Some(3));
    assert!(out.stderr.contains("not logged in"), "{}", out.stderr);
}

/// A one-task job that runs `script`, waiting for `after` (YAML).
fn after_job(name: &str, script: &str, after: &str) -> String {
    format!(
        "name: {name}\nafter: {after}\ntasks:\n  - {{ name: t, action: {{ kind: command, argv: [sh, -c, {script:?}] }} }}\n"
    )
}

#[test]
fn jobs_waiting_on_jobs_are_shown_refused_and_survive_a_sigkill_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let mut boot = tessera();
    boot.args([
        "admin",
        "create-user",
        "ana",
        "--admin",
        "--project",
        "video",
        "--data-dir",
    ])
    .arg(&data);
    let created = run(&mut boot);
    created.expect_code(0);
    let key = created.stdout.trim().to_string();
    let server = Server::start(&data);
    let go = dir.path().join("go");
    let wait = format!("while [ ! -e {} ]; do sleep 0.05; done", go.display());
    let submit = |server: &Server, name: &str, yaml: String| {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        client(server, &key, &config, &["submit", file.to_str().unwrap()])
    };
    submit(&server, "split", after_job("split", &wait, "[]")).expect_code(0);
    submit(
        &server,
        "encode",
        after_job("encode1", "true", "[{job: 1}]"),
    )
    .expect_code(0);
    let merge = submit(
        &server,
        "merge",
        after_job("merge", "true", "[{job: 'encode*'}]"),
    );
    merge.expect_code(0);
    assert!(
        merge.stdout.starts_with("submitted job 3"),
        "{}",
        merge.stdout
    );

    let shown = client(&server, &key, &config, &["job", "show", "3"]);
    shown.expect_code(0);
    assert!(
        shown.stdout.contains("after encode* (success): job 2\n"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("waiting for job 2 (encode1) to succeed\n"),
        "{}",
        shown.stdout
    );
    let refused = submit(
        &server,
        "bad",
        after_job("bad", "true", "[{job: 'nothing*'}]"),
    );
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stderr.contains("(422)"), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("job dependency \"nothing*\" matches no job of this project"),
        "{}",
        refused.stderr
    );

    // Killed while split runs and the others wait: after the restart they
    // wait again, and run in order once split ends.
    wait_until(&server, &key, &config, "1", "split to run", |s| {
        row(s, "t").is_some_and(|r| r.0 == "running")
    });
    server.sigkill();
    let server = Server::start(&data);
    let shown = client(&server, &key, &config, &["job", "show", "3"]);
    assert!(
        shown
            .stdout
            .contains("waiting for job 2 (encode1) to succeed"),
        "{}",
        shown.stdout
    );
    std::fs::write(&go, "").unwrap();
    let shown = wait_until(&server, &key, &config, "3", "merge to finish", |s| {
        s.contains("— succeeded")
    });
    assert!(!shown.contains("waiting for"), "{shown}");
}
