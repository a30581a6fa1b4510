//! The service end to end, measured: no-op tasks submitted through the real
//! HTTP API, scheduled by the real driver, committed to the real store, run by
//! the in-process no-op executor (named as such: it stands in for process
//! spawning, which is not what this measures). Each attempt reports a start
//! (with this process's pid) before it exits, as a process executor's do, so
//! the driver records starts as it does for real attempts.
//!
//! `cargo bench -p tessera-api --bench service_throughput`
//! (PostgreSQL too: `TESSERA_BENCH_POSTGRES=postgres://user:pass@host/db`;
//! the bench recreates a schema `tessera_bench` there.)
//!
//! Figures, each the median of 3 runs:
//! - tasks/s from POST to job end, fan-out 1 -> 20,000 -> 1 and 2,000 chains of 5;
//! - a 100,000-task DAG: POST time, then GET /jobs/{id} time while it runs;
//! - parent-finished -> child-started latency (p50/p99/max) over the chains,
//!   and over a chain of jobs each waiting on the one before (`after`)
//!   (attempt times are recorded in milliseconds, so this is ms-resolution;
//!   `cargo bench -p tessera-driver --bench job_hops` has microseconds).

#[path = "shared/jobs.rs"]
mod jobs;
use jobs::median;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_api::{new_api_key, AppState};
use tessera_driver::{Driver, DriverConfig, SystemClock};
use tessera_exec::{EventSink, ExecEvent, InProcessExecutor};
use tessera_store::{SqliteStore, Store};

struct Service {
    base: String,
    key: String,
    project: i64,
    runtime: tokio::runtime::Runtime,
    handle: tessera_driver::DriverHandle,
    /// A clone of the server's state, so that its store is dropped here,
    /// after the runtime: the synchronous PostgreSQL client blocks on a
    /// runtime of its own when dropped, which panics on a runtime thread.
    _state: AppState,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.handle.interrupt();
        let rt = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// The in-process executor, with a `Started` report before each attempt's
/// end, as process executors send.
fn reporting_noops(sink: EventSink) -> InProcessExecutor {
    InProcessExecutor::new(Arc::new(move |e| {
        if let ExecEvent::Exited { task, attempt, .. } = &e {
            sink(ExecEvent::Started {
                task: *task,
                attempt: *attempt,
                pid: std::process::id(),
                node: None,
            });
        }
        sink(e)
    }))
}

fn start(postgres: Option<&str>) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let (driver_store, mut api_store): (Box<dyn Store + Send>, Box<dyn tessera_api::ApiStore>) =
        match postgres {
            None => {
                let db = dir.path().join("tessera.db");
                let d = SqliteStore::open(&db).unwrap();
                (
                    Box::new(d),
                    Box::new(SqliteStore::open_secondary(&db).unwrap()),
                )
            }
            Some(url) => {
                let status = std::process::Command::new("psql")
                    .args([
                        url,
                        "-qAtX",
                        "-c",
                        "DROP SCHEMA IF EXISTS tessera_bench CASCADE; CREATE SCHEMA tessera_bench",
                    ])
                    .status()
                    .expect("psql");
                assert!(status.success(), "could not recreate schema tessera_bench");
                let sep = if url.contains('?') { '&' } else { '?' };
                let url = format!("{url}{sep}options=-c%20search_path%3Dtessera_bench");
                let d = tessera_store::PostgresStore::connect(&url).unwrap();
                (
                    Box::new(d),
                    Box::new(tessera_store::PostgresStore::connect_secondary(&url).unwrap()),
                )
            }
        };
    let now = SystemClock::now();
    let user = api_store.create_user("bench", true, now).unwrap();
    let project = api_store.create_project("bench", user.id, now).unwrap();
    let (key, prefix, hash) = new_api_key();
    api_store
        .create_key(user.id, "bench", &prefix, &hash, now)
        .unwrap();

    let mut driver = Driver::new(
        driver_store,
        reporting_noops,
        DriverConfig::new(64, dir.path().join("data")),
    );
    driver.recover(None).unwrap();
    let handle = driver.handle();
    std::thread::spawn(move || driver.serve(&mut ()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = AppState::new(api_store, handle.clone(), dir.path().join("data"));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(tessera_api::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Service {
        base: format!("http://{addr}/api/v1"),
        key,
        project: project.id.0,
        runtime,
        handle,
        _state: state,
        _dir: dir,
    }
}

impl Service {
    fn post(&self, path: &str, body: &Value) -> Value {
        ureq::post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(120))
            .send_json(body.clone())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .into_json()
            .unwrap()
    }

    fn put(&self, path: &str, body: &Value) -> Value {
        ureq::put(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(120))
            .send_json(body.clone())
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"))
            .into_json()
            .unwrap()
    }

    fn get(&self, path: &str) -> Value {
        ureq::get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(120))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap()
    }

    /// Submits and waits for the end; returns (POST time, total time, job id).
    fn run(&self, spec: &Value) -> (Duration, Duration, i64) {
        let t0 = Instant::now();
        let job = self.post(&format!("/projects/{}/jobs", self.project), spec);
        let posted = t0.elapsed();
        let id = job["id"].as_i64().unwrap();
        loop {
            let j = self.get(&format!("/jobs/{id}"));
            match j["state"].as_str() {
                Some("succeeded") => break,
                Some("failed" | "cancelled") => panic!("job {id} ended {}", j["state"]),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "job {id} did not finish"
            );
        }
        (posted, t0.elapsed(), id)
    }
}

/// What every task of these benches' jobs does.
fn action() -> Value {
    json!({ "kind": "noop" })
}

fn fan(n: usize) -> Value {
    jobs::fan(n, &action())
}

fn chains(c: usize, len: usize) -> Value {
    jobs::chains(c, len, &action())
}

/// Child start minus parent end, in ms, over the chain edges of job `id`.
fn hop_latencies(s: &Service, id: i64) -> Vec<u64> {
    let tasks = s.get(&format!("/jobs/{id}/tasks"));
    let attempts = s.get(&format!("/jobs/{id}/attempts"));
    let names: Vec<String> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let mut times = std::collections::HashMap::new();
    for a in attempts.as_array().unwrap() {
        let i = a["task"].as_u64().or_else(|| a["index"].as_u64()).unwrap() as usize;
        times.insert(
            names[i].clone(),
            (
                a["started_at"].as_u64().unwrap(),
                a["ended_at"].as_u64().unwrap_or(0),
            ),
        );
    }
    let mut out = Vec::new();
    for name in &names {
        let (chain, pos) = name.split_once('-').unwrap();
        let pos: usize = pos.parse().unwrap();
        if pos == 0 {
            continue;
        }
        let parent = format!("{chain}-{}", pos - 1);
        out.push(times[name].0.saturating_sub(times[&parent].1));
    }
    out.sort_unstable();
    out
}

/// Child start minus parent end, in ms, over a chain of `n` one-task jobs
/// POSTed each `after` the one before. The project's quota holds every job
/// back until the whole chain is submitted, so each hop is the scheduler's
/// and not the POST's.
fn job_hop_latencies(s: &Service, n: usize) -> Vec<u64> {
    let quota = format!("/projects/{}/quota", s.project);
    s.put(&quota, &json!({ "max_cpu": 0 }));
    let mut ids: Vec<i64> = Vec::with_capacity(n);
    for i in 0..n {
        let mut spec =
            json!({ "name": format!("hop-{i}"), "tasks": [{ "name": "t", "action": action() }] });
        if let Some(parent) = ids.last() {
            spec["after"] = json!([{ "job": parent }]);
        }
        ids.push(
            s.post(&format!("/projects/{}/jobs", s.project), &spec)["id"]
                .as_i64()
                .unwrap(),
        );
    }
    s.put(&quota, &json!({}));
    let last = *ids.last().unwrap();
    let t0 = Instant::now();
    while s.get(&format!("/jobs/{last}"))["state"] != "succeeded" {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the job chain did not finish"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let times: Vec<(u64, u64)> = ids
        .iter()
        .map(|id| {
            let a = &s.get(&format!("/jobs/{id}/attempts"))[0];
            (
                a["started_at"].as_u64().unwrap(),
                a["ended_at"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut out: Vec<u64> = times
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].1))
        .collect();
    out.sort_unstable();
    out
}

fn report(label: &str, postgres: Option<&str>) {
    println!("== {label}");
    let s = start(postgres);
    for (name, spec, n) in [
        ("fan-out 1 -> 20000 -> 1", fan(20_000), 20_002.0),
        ("2000 chains of 5", chains(2_000, 5), 10_000.0),
    ] {
        let mut rates = Vec::new();
        let mut last = 0;
        for _ in 0..3 {
            let (_, total, id) = s.run(&spec);
            rates.push(n / total.as_secs_f64());
            last = id;
        }
        println!(
            "   {name:<26} median {:>8.0} tasks/s  (runs: {:?})",
            median(rates.clone()),
            rates.iter().map(|r| *r as u64).collect::<Vec<_>>()
        );
        let _ = last;
    }
    // Dependency-hop latency on an otherwise idle scheduler: one chain, so no
    // child waits behind other ready tasks (that would be queueing, not
    // dispatch latency).
    let (_, _, id) = s.run(&chains(1, 300));
    let lat = hop_latencies(&s, id);
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    println!(
        "   parent end -> child start, lone chain: p50 {} ms  p99 {} ms  max {} ms  ({} hops, ms resolution)",
        p(0.5),
        p(0.99),
        lat[lat.len() - 1],
        lat.len()
    );
    let lat = job_hop_latencies(&s, 300);
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    println!(
        "   parent end -> child start, chain of jobs (`after`): p50 {} ms  p99 {} ms  max {} ms  ({} hops, ms resolution)",
        p(0.5),
        p(0.99),
        lat[lat.len() - 1],
        lat.len()
    );
    let big = fan(100_000);
    let t0 = Instant::now();
    let job = s.post(&format!("/projects/{}/jobs", s.project), &big);
    let posted = t0.elapsed();
    let id = job["id"].as_i64().unwrap();
    let t1 = Instant::now();
    let view = s.get(&format!("/jobs/{id}"));
    let get_ms = t1.elapsed();
    println!(
        "   100,002-task DAG: POST {:.2} s; GET /jobs/{{id}} while running {:.0} ms (state {})",
        posted.as_secs_f64(),
        get_ms.as_secs_f64() * 1000.0,
        view["state"]
    );
    loop {
        if s.get(&format!("/jobs/{id}"))["state"] == "succeeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "100k job did not finish"
        );
    }
    println!(
        "   100,002-task DAG done {:.1} s after POST ({:.0} tasks/s)",
        t0.elapsed().as_secs_f64(),
        100_002.0 / t0.elapsed().as_secs_f64()
    );
}

fn main() {
    report("SQLite", None);
    if let Ok(url) = std::env::var("TESSERA_BENCH_POSTGRES") {
        report("PostgreSQL", Some(&url));
    } else {
        println!("(PostgreSQL skipped: set TESSERA_BENCH_POSTGRES)");
    }
}
