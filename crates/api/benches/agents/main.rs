//! Many agents through the real worker protocol on loopback.
//!
//! `cargo bench -p tessera-api --bench agents`
//!
//! A real HTTP server in-process, as `tessera server --slots 0` runs it: the
//! driver's executor is [`Placed::remote`], attempts wait in a [`Pool`],
//! and the scheduler's capacity is the ready workers' slots. 50 agents, each
//! a thread with its own worker token (from `create_worker_token`, checked
//! by the server like any other), speak the real HTTP protocol: register,
//! long-poll `lease`, post each attempt's events (`started`, then `exited`,
//! one request each, as `tessera worker` does) and heartbeat every lease/3
//! (with the attempts they hold, on a thread of their own).
//!
//! The tasks are `true` commands the agents do NOT execute: this measures
//! the protocol, the pool and the scheduler (driver, store commits, HTTP,
//! JSON, token checks), not process starts. Figures, median of 3 runs each:
//! tasks/s from POST to the job's end for a fan-out (1 -> 20,000 -> 1) and
//! 2,000 chains of 5; the lease round trip (request sent with a free slot
//! until its answer with work, which includes waiting for the driver to hand
//! out the next attempt); the event POST round trip; and the server's cpu
//! (this process minus the agent threads and the bench's main thread).
//!
//! Then, if a release `tessera` binary is there (`TESSERA_BENCH_BIN`, else
//! `$CARGO_TARGET_DIR/release/tessera`, else `target/release/tessera`), the
//! same server with 50 real `tessera worker` processes (1 slot each) running
//! 2,000 `true` tasks: what real process starts cost on this machine.
//!
//! Settings: `BENCH_AGENTS` (50), `BENCH_AGENT_SLOTS` (1), `BENCH_FAN` (20000),
//! `BENCH_RUNS` (3), `BENCH_REAL_WORKERS` (50; 0 skips), `BENCH_REAL_TASKS`
//! (2000). Other load on the machine shows in every figure: the agents run
//! on the same cores as the server.

use jobs::median;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_api::{create_worker_token, new_api_key, AppState, Placed, Pool};
use tessera_driver::{Driver, DriverConfig, SystemClock};
use tessera_store::{Accounts, SqliteStore, Store};

mod agent;
mod cpu;
#[path = "../shared/jobs.rs"]
mod jobs;
mod real;

use agent::{spawn_agent, Stats};

/// How long an agent's lease request waits for work (as `tessera worker`).
const WAIT_MS: u64 = 20_000;
/// The lease the server gives (its default).
const LEASE: Duration = Duration::from_secs(10);
/// The longest a job may take before the bench gives up.
const JOB_LIMIT: Duration = Duration::from_secs(600);

struct Server {
    root: String,
    key: String,
    project: i64,
    data: PathBuf,
    runtime: tokio::runtime::Runtime,
    handle: tessera_driver::DriverHandle,
    /// Dropped after the runtime (see service_throughput.rs).
    _state: AppState,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
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

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("tessera.db");
    let driver_store = SqliteStore::open(&db).unwrap();
    let mut api_store = SqliteStore::open_secondary(&db).unwrap();
    let now = SystemClock::now();
    let user = api_store.create_user("bench", true, now).unwrap();
    let project = api_store.create_project("bench", user.id, now).unwrap();
    let (key, prefix, hash) = new_api_key();
    api_store
        .create_key(user.id, "bench", &prefix, &hash, now)
        .unwrap();

    let pool = Pool::new(LEASE);
    let remote = pool.clone();
    let mut driver = Driver::new(
        Box::new(driver_store) as Box<dyn Store + Send>,
        move |sink| Placed::remote(remote, sink),
        DriverConfig::new(0, &data),
    );
    driver.recover(None).unwrap();
    let handle = driver.handle();
    {
        let handle = handle.clone();
        pool.on_capacity(move |slots| handle.set_capacity(slots));
    }
    std::thread::Builder::new()
        .name("tessera-driver".into())
        .spawn(move || driver.serve(&mut ()))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server-rt")
        .enable_all()
        .build()
        .unwrap();
    let state = AppState::new(Box::new(api_store), handle.clone(), data.clone()).with_workers(pool);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(tessera_api::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Server {
        root: format!("http://{addr}"),
        key,
        project: project.id.0,
        data,
        runtime,
        handle,
        _state: state,
        _dir: dir,
    }
}

impl Server {
    fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.root)
    }

    fn get(&self, path: &str) -> Value {
        ureq::get(&self.api(path))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(60))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap()
    }

    fn ready_workers(&self) -> usize {
        let nodes = self.get("/nodes");
        nodes["nodes"]
            .as_array()
            .map_or(0, |n| n.iter().filter(|n| n["state"] == "ready").count())
    }

    /// Waits (bounded) until `n` workers are ready.
    fn wait_ready(&self, n: usize, limit: Duration) {
        let t0 = Instant::now();
        while self.ready_workers() < n {
            assert!(
                t0.elapsed() < limit,
                "only {} of {n} workers registered within {limit:?}",
                self.ready_workers()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Submits `spec` and waits (bounded) for its success; the time from
    /// just before the POST to the job's `finished_at` (the server's clock,
    /// ms), so the polling interval does not count.
    fn run(&self, spec: &Value) -> Duration {
        let posted_ms = SystemClock::now();
        let t0 = Instant::now();
        let job: Value = ureq::post(&self.api(&format!("/projects/{}/jobs", self.project)))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(120))
            .send_json(spec.clone())
            .unwrap_or_else(|e| panic!("POST job: {e}"))
            .into_json()
            .unwrap();
        let id = job["id"].as_i64().unwrap();
        loop {
            let j = self.get(&format!("/jobs/{id}"));
            match j["state"].as_str() {
                Some("succeeded") => {
                    let end = j["finished_at"].as_u64().expect("finished_at");
                    return Duration::from_millis(end.saturating_sub(posted_ms));
                }
                Some("failed" | "cancelled") => panic!("job {id} ended {}", j["state"]),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
            assert!(t0.elapsed() < JOB_LIMIT, "job {id} did not finish");
        }
    }
}

/// What every task of these benches' jobs does.
fn action() -> Value {
    json!({ "kind": "command", "argv": ["true"] })
}

fn fan(n: usize) -> Value {
    jobs::fan(n, &action())
}

fn chains(c: usize, len: usize) -> Value {
    jobs::chains(c, len, &action())
}

/// The `q` quantile of `v`, in ms.
fn quantile_ms(v: &mut [u64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a whole number")),
        Err(_) => default,
    }
}

fn main() {
    let agents = env_usize("BENCH_AGENTS", 50);
    let slots = env_usize("BENCH_AGENT_SLOTS", 1) as u32;
    let fan_n = env_usize("BENCH_FAN", 20_000);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    if agents > 0 {
        protocol(agents, slots, fan_n, runs);
    } else {
        println!("== agents skipped (BENCH_AGENTS=0)");
    }
    real_workers();
}

/// The agents' figures.
fn protocol(agents: usize, slots: u32, fan_n: usize, runs: usize) {
    println!(
        "== {agents} agents x {slots} slot(s) through the worker protocol on loopback (SQLite); \
         tasks are `true` commands the agents do not run: protocol + scheduler, no process starts"
    );
    let s = start_server();
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    for n in 0..agents {
        let token = create_worker_token(&s.data, &format!("agent-{n}")).unwrap();
        spawn_agent(n, s.root.clone(), token, slots, stats.clone(), stop.clone());
    }
    s.wait_ready(agents, Duration::from_secs(120));
    let main_tid = cpu::tid();
    for (name, spec, n) in [
        (
            format!("fan-out 1 -> {fan_n} -> 1"),
            fan(fan_n),
            fan_n as f64 + 2.0,
        ),
        ("2000 chains of 5".to_string(), chains(2_000, 5), 10_000.0),
    ] {
        let mut rates = Vec::new();
        let mut server_cpu = Vec::new();
        let (mut lease, mut events) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            stats.reset();
            let client_tids: Vec<u32> = stats
                .tids
                .lock()
                .unwrap()
                .iter()
                .copied()
                .chain([main_tid])
                .collect();
            let before = cpu::Split::now(&client_tids);
            let took = s.run(&spec);
            let used = cpu::Split::now(&client_tids).since(&before);
            rates.push(n / took.as_secs_f64());
            server_cpu.push(used.server / took.as_secs_f64() * 100.0);
            println!(
                "   {name:<24} {:>7.0} tasks/s  {:>6.2} s  server cpu {:>5.2} s ({:>3.0}%)  agents' cpu {:>5.2} s  \
                 attempts {}  heartbeats {}  errors {}",
                n / took.as_secs_f64(),
                took.as_secs_f64(),
                used.server,
                used.server / took.as_secs_f64() * 100.0,
                used.clients,
                stats.attempts.load(Ordering::Relaxed),
                stats.heartbeats.load(Ordering::Relaxed),
                stats.errors.load(Ordering::Relaxed),
            );
            lease.append(&mut stats.lease_us.lock().unwrap());
            events.append(&mut stats.event_us.lock().unwrap());
        }
        println!(
            "   {name:<24} median {:>7.0} tasks/s  (target >= 2000)  server cpu median {:.0}% of a core\n   \
             {:<24} lease round trip p50 {:.2} ms p99 {:.2} ms; event POST p50 {:.2} ms p99 {:.2} ms",
            median(rates),
            median(server_cpu),
            "",
            quantile_ms(&mut lease, 0.5),
            quantile_ms(&mut lease, 0.99),
            quantile_ms(&mut events, 0.5),
            quantile_ms(&mut events, 0.99),
        );
    }
    stop.store(true, Ordering::Relaxed);
}

/// The real workers' figure.
fn real_workers() {
    let workers = env_usize("BENCH_REAL_WORKERS", 50);
    if workers == 0 {
        println!("== real workers skipped (BENCH_REAL_WORKERS=0)");
        return;
    }
    match real::binary() {
        None => println!(
            "== real workers skipped: no release tessera binary (cargo build --release -p tessera-cli, \
             or set TESSERA_BENCH_BIN)"
        ),
        Some(bin) => real::run(&bin, workers, env_usize("BENCH_REAL_TASKS", 2_000)),
    }
}
