//! `/metrics` as Prometheus and Grafana see it: a real `prometheus` process
//! runs `deploy/prometheus/prometheus.yml` (an admin's key in its key file)
//! and scrapes the API over loopback, while a job without the key is
//! refused; `promtool` lints the exposition, and the Grafana dashboard in
//! `deploy/grafana/` may only name exported metrics.

#[path = "api/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::Server;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prometheus gets to scrape and answer.
const PATIENCE: Duration = Duration::from_secs(30);

/// `name` on `PATH`, if it is there.
fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Prometheus kills and reaps its process when dropped, panics included.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    /// Prometheus running `deploy/prometheus/prometheus.yml` against
    /// `target` with `key` in the key file it names, plus a second job
    /// scraping the same target without a key.
    fn start(binary: &Path, dir: &Path, target: &str, key: &str) -> Prometheus {
        let port = free_port();
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/prometheus.yml");
        let example = std::fs::read_to_string(&example).expect("read the example config");
        let key_file = dir.join("tessera.key");
        std::fs::write(&key_file, key).expect("write the key file");
        let mut config = String::new();
        for line in example.lines() {
            let line = line
                .replace(
                    "/etc/prometheus/tessera.key",
                    &key_file.display().to_string(),
                )
                .replace("127.0.0.1:6543", target)
                .replace("scrape_interval: 15s", "scrape_interval: 1s")
                .replace("scrape_timeout: 10s", "scrape_timeout: 1s");
            config.push_str(&line);
            config.push('\n');
        }
        assert!(config.contains(&key_file.display().to_string()), "{config}");
        config.push_str(&format!(
            "  - job_name: anonymous\n    static_configs:\n      - targets: ['{target}']\n"
        ));
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let config = config_path;
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("create prometheus.log");
        let err = out.try_clone().expect("clone log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `data` of an API answer, or why there is none yet.
    fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let url = format!("{}{path_and_query}", self.url);
        let body: Value = ureq::get(&url)
            .timeout(Duration::from_secs(5))
            .call()
            .map_err(|e| e.to_string())?
            .into_json()
            .map_err(|e| e.to_string())?;
        match body["status"].as_str() {
            Some("success") => Ok(body["data"].clone()),
            _ => Err(body.to_string()),
        }
    }

    /// The value of an instant query's only sample, if it has exactly one.
    fn scalar(&self, promql: &str) -> Result<f64, String> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(promql)))?;
        match data["result"].as_array().map(Vec::as_slice) {
            Some([sample]) => sample["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("odd sample {sample}")),
            _ => Err(format!("{promql}: {data}")),
        }
    }

    /// Polls until `check` is `Ok`, at most [`PATIENCE`].
    fn wait_for<T>(&mut self, what: &str, mut check: impl FnMut(&Self) -> Result<T, String>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let last = match check(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} after {PATIENCE:?}; last: {last}\nprometheus log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The installed `prometheus`; `None` (skip) outside CI, a panic in CI
/// (`tessera_testkit::env`).
fn prometheus_or_skip() -> Option<PathBuf> {
    let found = installed("prometheus");
    if found.is_none() {
        tessera_testkit::env::skip(
            "prometheus is not on PATH",
            "apt-get install prometheus (.ci/run does)",
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_jobs_from_a_live_api() {
    let Some(binary) = prometheus_or_skip() else {
        return;
    };
    let s = Server::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the API");
    let target = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let api = tokio::spawn(tessera_api::serve(listener, s.state.clone(), shutdown));

    let key = s.admin_key.clone();
    s.project("scraped", &key).await;
    let spec = "name: n\ntasks:\n  - name: a\n    action: {kind: noop}\n";
    let r = s
        .post_yaml("/api/v1/projects/scraped/jobs", &key, spec)
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text());

    let dir = tempfile::tempdir().expect("tempdir");
    let dir_path = dir.path().to_path_buf();
    let checked = tokio::task::spawn_blocking(move || {
        let mut prom = Prometheus::start(&binary, &dir_path, &target, &key);
        let up = prom.wait_for("up == 1", |p| match p.scalar(r#"up{job="tessera"}"#)? {
            v if v == 1.0 => Ok(v),
            v => Err(format!("up is {v}")),
        });
        let jobs = prom.wait_for("tessera_jobs", |p| {
            match p.scalar(r#"sum(tessera_jobs{job="tessera"})"#)? {
                v if v == 1.0 => Ok(v),
                v => Err(format!("{v} jobs")),
            }
        });
        let project = prom.wait_for("tessera_project_jobs", |p| {
            p.scalar(r#"sum(tessera_project_jobs{job="tessera",project="scraped"})"#)
        });
        let build = prom.wait_for("tessera_build_info", |p| {
            p.scalar(r#"tessera_build_info{job="tessera"}"#)
        });
        // From the driver's feed: the no-op attempt was counted, and its
        // wait from ready to started observed.
        let attempts = prom.wait_for("tessera_attempts_total", |p| {
            match p.scalar(r#"tessera_attempts_total{job="tessera",outcome="succeeded"}"#)? {
                v if v == 1.0 => Ok(v),
                v => Err(format!("{v} succeeded attempts")),
            }
        });
        let waited = prom.wait_for("tessera_task_queue_wait_seconds_count", |p| {
            match p.scalar(r#"tessera_task_queue_wait_seconds_count{job="tessera"}"#)? {
                v if v == 1.0 => Ok(v),
                v => Err(format!("{v} waits observed")),
            }
        });
        let targets = prom.api("/api/v1/targets").expect("targets");
        let active = targets["activeTargets"].as_array().expect("activeTargets");
        let ours: Vec<_> = active
            .iter()
            .filter(|t| t["labels"]["job"] == "tessera")
            .collect();
        assert_eq!(ours.len(), 1, "{targets}");
        assert_eq!(ours[0]["health"], "up", "{}", ours[0]);
        assert_eq!(ours[0]["lastError"], "", "{}", ours[0]);
        // Without the key, the same target is refused.
        let refused = prom.wait_for("the anonymous scrape's error", |p| {
            let targets = p.api("/api/v1/targets")?;
            let anonymous = targets["activeTargets"]
                .as_array()
                .and_then(|a| a.iter().find(|t| t["labels"]["job"] == "anonymous"))
                .cloned()
                .ok_or("no anonymous target")?;
            match anonymous["lastError"].as_str() {
                Some(e) if !e.is_empty() => Ok(e.to_string()),
                _ => Err(format!("not scraped yet: {anonymous}")),
            }
        });
        assert!(refused.contains("401"), "{refused}");
        let anonymous_up = prom.scalar(r#"up{job="anonymous"}"#).expect("up");
        assert_eq!(anonymous_up, 0.0);
        (up, jobs, project, build, attempts, waited)
    })
    .await
    .expect("the Prometheus checks panicked");
    assert_eq!(checked, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0));

    let _ = stop.send(());
    api.await.expect("serve task").expect("serve");
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let Some(promtool) = installed("promtool") else {
        tessera_testkit::env::skip(
            "promtool is not on PATH",
            "apt-get install prometheus, which has it (.ci/run does)",
        );
        return;
    };
    let s = Server::start();
    let key = s.admin_key.clone();
    s.project("we \"quote\" \\ too", &key).await;
    let text = s.get("/metrics", &key).await;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text.body)
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        text.text()
    );
    assert!(
        text.text()
            .contains(r#"tessera_project_jobs{project="we \"quote\" \\ too",state="pending"} 0"#),
        "{}",
        text.text()
    );
}

/// Every `tessera_*` name in a PromQL expression (quoted strings skipped).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            while let Some(d) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut word = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    word.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            if word.starts_with("tessera_") {
                names.push(word);
            }
        }
    }
    names
}

/// Every `expr` (and template `query`) anywhere in the dashboard.
fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn grafana_dashboard_names_only_exported_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/tessera.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert!(dashboard["schemaVersion"].as_u64() >= Some(36));

    // The families /metrics declares, and how each may be suffixed.
    let s = Server::start();
    let exposition = s.get("/metrics", &s.admin_key).await.text();
    let mut exported = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            exported.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
    }

    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "too few expressions found: {exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no tessera metric in {expr:?}");
        for name in names {
            assert!(
                exported.contains(&name),
                "the dashboard uses {name} (in {expr:?}) but /metrics exports only {exported:?}"
            );
            used.insert(name);
        }
    }
    for wanted in [
        "tessera_jobs",
        "tessera_tasks",
        "tessera_http_requests_total",
        "tessera_submit_seconds_bucket",
        "tessera_project_jobs",
        "tessera_task_queue_wait_seconds_bucket",
        "tessera_task_dispatch_seconds_bucket",
        "tessera_progress_units_total",
        "tessera_project_running_cpu",
    ] {
        assert!(used.contains(wanted), "no panel shows {wanted}");
    }
}

#[test]
fn metric_names_skip_label_values() {
    assert_eq!(
        metric_names(r#"sum(rate(tessera_a_total{x="tessera_b"}[5m])) / tessera_c"#),
        ["tessera_a_total", "tessera_c"]
    );
}

/// Figures, not a check: `cargo test --release -p tessera-api --test
/// prometheus -- --ignored --nocapture scrape_time`.
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn scrape_time_with_ten_thousand_jobs() {
    use tessera_store::{Accounts, Store};
    use tessera_types::{Action, Change, JobSpec, JobState, TaskSpec};
    let s = Server::start();
    let mut db = s.store();
    let owner = db.user_by_name("root").expect("root").expect("root");
    let project = db.create_project("bench", owner.id, 1).expect("project").id;
    let tasks = (0..3)
        .map(|i| TaskSpec::new(format!("t{i}"), Action::Noop))
        .collect();
    let spec = JobSpec::new("bench", tasks);
    let started = Instant::now();
    for i in 0..10_000u64 {
        let job = db.create_job(Some(project), &spec, None, i).expect("job");
        if i % 10 != 0 {
            let done = Change::JobState {
                job,
                state: JobState::Succeeded,
            };
            db.apply(&[done], i).expect("finish");
        }
    }
    eprintln!("inserted 10,000 jobs in {:?}", started.elapsed());

    let old = |db: &tessera_store::SqliteStore| {
        let t = Instant::now();
        let jobs = db.recent_jobs(u32::MAX).expect("jobs").len();
        let tasks: usize = db
            .load_unfinished()
            .expect("unfinished")
            .iter()
            .map(|j| j.tasks.len())
            .sum();
        (t.elapsed(), jobs, tasks)
    };
    let new = |db: &tessera_store::SqliteStore| {
        let t = Instant::now();
        let counts = db.count_by_state().expect("counts");
        let projects = db.count_jobs_by_project().expect("by project");
        (t.elapsed(), counts, projects.len())
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    eprintln!(
        "old scan (recent_jobs + load_unfinished): {:?}, {:?}",
        median((0..9).map(|_| old(&db).0).collect()),
        old(&db)
    );
    eprintln!(
        "new GROUP BY queries: {:?}, {:?}",
        median((0..9).map(|_| new(&db).0).collect()),
        new(&db)
    );
    let t = Instant::now();
    db.count_jobs_by_project().expect("by project");
    eprintln!("  of which count_jobs_by_project: {:?}", t.elapsed());
    let mut scrapes = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let r = s.get("/metrics", &s.admin_key).await;
        scrapes.push(t.elapsed());
        assert_eq!(r.status.as_u16(), 200);
    }
    eprintln!(
        "GET /metrics in-process, median of 21: {:?}",
        median(scrapes)
    );
}
