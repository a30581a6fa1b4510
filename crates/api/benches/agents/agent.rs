//! One agent: a thread that registers, leases and reports, and one that
//! heartbeats, as `tessera worker` does (without running anything).

use super::{cpu, WAIT_MS};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_types::AttemptUsage;

/// What the agents measured, shared by all of them.
#[derive(Default)]
pub struct Stats {
    /// Lease requests sent with a free slot and answered with work, µs,
    /// counted from the later of the request and the run's start (a
    /// request left waiting from before the job was posted waited for
    /// nothing the run measures).
    pub lease_us: Mutex<Vec<u64>>,
    /// When the current run started.
    pub epoch: Mutex<Option<Instant>>,
    /// Event POSTs, µs.
    pub event_us: Mutex<Vec<u64>>,
    pub attempts: AtomicU64,
    pub heartbeats: AtomicU64,
    pub errors: AtomicU64,
    /// The agents' thread ids (for their cpu time).
    pub tids: Mutex<Vec<u32>>,
}

impl Stats {
    pub fn reset(&self) {
        *self.epoch.lock().unwrap() = Some(Instant::now());
        self.lease_us.lock().unwrap().clear();
        self.event_us.lock().unwrap().clear();
        self.attempts.store(0, Ordering::Relaxed);
        self.heartbeats.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
    }
}

/// One agent's connection: its own keep-alive connection per thread.
struct Conn {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Conn {
    fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.to_string(),
            token: token.to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(40))
                .build(),
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.agent
            .post(&format!("{}/api/v1{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(body.clone())
            .map_err(|e| e.to_string())?
            .into_json()
            .map_err(|e| e.to_string())
    }
}

/// Starts agent `n`: registers, then on this thread leases and reports;
/// a second thread heartbeats. Both end when `stop` is set (the lease loop
/// after its current long-poll) or the server goes away.
pub fn spawn_agent(
    n: usize,
    base: String,
    token: String,
    slots: u32,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    std::thread::Builder::new()
        .name(format!("agent-{n}"))
        .spawn(move || {
            stats.tids.lock().unwrap().push(cpu::tid());
            let conn = Conn::new(&base, &token);
            let info = json!({
                "name": format!("agent-{n}"), "slots": slots, "cpus": slots,
                "memory_mb": 1024, "disk_free_mb": 1024, "labels": {}, "executors": ["local"],
            });
            let reg = conn.post("/workers", &info).expect("register");
            let id = reg["id"].as_str().unwrap().to_string();
            let lease = Duration::from_millis(reg["lease_ms"].as_u64().unwrap());
            let held: Arc<Mutex<Vec<Value>>> = Arc::default();
            heartbeat(
                n,
                &base,
                &token,
                &id,
                lease,
                held.clone(),
                stats.clone(),
                stop.clone(),
            );
            let usage = serde_json::to_value(AttemptUsage::default()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let answer = match conn.post(
                    &format!("/workers/{id}/lease"),
                    &json!({"wait_ms": WAIT_MS}),
                ) {
                    Ok(a) => a,
                    Err(_) if stop.load(Ordering::Relaxed) => return,
                    Err(e) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("agent-{n}: lease: {e}");
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                let work = answer["attempts"].as_array().cloned().unwrap_or_default();
                if work.is_empty() {
                    continue;
                }
                let from = stats.epoch.lock().unwrap().map_or(t0, |e| e.max(t0));
                stats
                    .lease_us
                    .lock()
                    .unwrap()
                    .push(from.elapsed().as_micros() as u64);
                held.lock().unwrap().extend(
                    work.iter()
                        .map(|a| json!([a["job"], a["index"], a["attempt"]])),
                );
                // Each attempt "starts" and "exits" at once: nothing runs.
                for a in &work {
                    let path = format!(
                        "/workers/{id}/attempts/{}/{}/{}/events",
                        a["job"], a["index"], a["attempt"]
                    );
                    for event in [
                        json!({"kind": "started", "pid": 1}),
                        json!({"kind": "exited", "error": null, "usage": usage}),
                    ] {
                        let t = Instant::now();
                        if let Err(e) = conn.post(&path, &json!({ "events": [event] })) {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("agent-{n}: events: {e}");
                        }
                        stats
                            .event_us
                            .lock()
                            .unwrap()
                            .push(t.elapsed().as_micros() as u64);
                    }
                    let key = json!([a["job"], a["index"], a["attempt"]]);
                    held.lock().unwrap().retain(|h| *h != key);
                    stats.attempts.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .unwrap();
}

#[allow(clippy::too_many_arguments)]
fn heartbeat(
    n: usize,
    base: &str,
    token: &str,
    id: &str,
    lease: Duration,
    held: Arc<Mutex<Vec<Value>>>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let conn = Conn::new(base, token);
    let path = format!("/workers/{id}/heartbeat");
    std::thread::Builder::new()
        .name(format!("agent-{n}-hb"))
        .spawn(move || {
            stats.tids.lock().unwrap().push(cpu::tid());
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(lease / 3);
                let running = Value::Array(held.lock().unwrap().clone());
                let body = json!({ "draining": false, "running": running });
                match conn.post(&path, &body) {
                    Ok(_) => stats.heartbeats.fetch_add(1, Ordering::Relaxed),
                    Err(_) if stop.load(Ordering::Relaxed) => return,
                    Err(e) => {
                        eprintln!("agent-{n}: heartbeat: {e}");
                        stats.errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        })
        .unwrap();
}
