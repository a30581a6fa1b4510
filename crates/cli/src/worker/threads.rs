//! The worker's two helper threads (the lease long-poll and the
//! heartbeat) and the set of attempts they and the main loop share.

use super::data::Cache;
use super::{Conn, Msg};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_types::{AttemptNo, JobId, TaskRef};

/// The attempts this worker is responsible for: in from the moment the
/// lease answer arrives (the heartbeat reports them as running), out when
/// they end or are given up.
#[derive(Clone, Default)]
pub(super) struct Held(Arc<Mutex<HashSet<(TaskRef, AttemptNo)>>>);

impl Held {
    fn with<T>(&self, f: impl FnOnce(&mut HashSet<(TaskRef, AttemptNo)>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
    pub(super) fn insert(&self, key: (TaskRef, AttemptNo)) {
        self.with(|h| h.insert(key));
    }
    pub(super) fn remove(&self, key: (TaskRef, AttemptNo)) -> bool {
        self.with(|h| h.remove(&key))
    }
    pub(super) fn contains(&self, key: (TaskRef, AttemptNo)) -> bool {
        self.with(|h| h.contains(&key))
    }
    pub(super) fn len(&self) -> usize {
        self.with(|h| h.len())
    }
    pub(super) fn clear(&self) {
        self.with(|h| h.clear());
    }
    /// As the heartbeat's `running`: `[[job, index, attempt], ...]`.
    pub(super) fn as_json(&self) -> Value {
        self.with(|h| {
            h.iter()
                .map(|(t, a)| json!([t.job.0, t.index, a]))
                .collect()
        })
    }
}

/// `(task, attempt)` of an assignment or an order.
pub(super) fn key_of(v: &Value) -> Option<(TaskRef, AttemptNo)> {
    let task = TaskRef::new(JobId(v["job"].as_i64()?), v["index"].as_u64()? as u32);
    Some((task, v["attempt"].as_u64()? as AttemptNo))
}

pub(super) fn spawn_poller(
    conn: Arc<Conn>,
    id: Arc<Mutex<String>>,
    draining: Arc<AtomicBool>,
    held: Held,
    cache: Option<Arc<Cache>>,
    tx: Sender<Msg>,
) {
    std::thread::spawn(move || loop {
        if draining.load(Ordering::SeqCst) {
            return;
        }
        if cache.as_ref().is_some_and(|c| c.check_disk()) {
            // Too little disk: take nothing until there is more.
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        let me = id.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut body = json!({"wait_ms": 20_000});
        if let Some(c) = &cache {
            body["holds"] = c.holds();
        }
        match conn.post(&format!("/workers/{me}/lease"), &body) {
            Ok(v) => {
                let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
                let (work, orders) = (list("attempts"), list("orders"));
                if !orders.is_empty() && tx.send(Msg::Orders(orders)).is_err() {
                    return;
                }
                for key in work.iter().filter_map(key_of) {
                    held.insert(key);
                }
                if !work.is_empty() && tx.send(Msg::Work(work)).is_err() {
                    return;
                }
            }
            Err(Some(why)) => {
                if tx.send(Msg::Fenced(me.clone(), why)).is_err() {
                    return;
                }
                wait_for_new_id(&id, &me);
            }
            Err(None) => std::thread::sleep(Duration::from_secs(1)),
        }
    });
}

pub(super) fn spawn_heartbeat(
    conn: Arc<Conn>,
    id: Arc<Mutex<String>>,
    draining: Arc<AtomicBool>,
    held: Held,
    cache: Option<Arc<Cache>>,
    lease: Duration,
    tx: Sender<Msg>,
) {
    std::thread::spawn(move || loop {
        std::thread::sleep(lease / 3);
        let me = id.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut body = json!({
            "draining": draining.load(Ordering::SeqCst),
            "running": held.as_json(),
        });
        if let Some(c) = &cache {
            body["holds"] = c.holds();
            body["disk_low"] = json!(c.disk_low());
        }
        match conn.post(&format!("/workers/{me}/heartbeat"), &body) {
            Ok(v) => {
                let orders = v["orders"].as_array().cloned().unwrap_or_default();
                if !orders.is_empty() && tx.send(Msg::Orders(orders)).is_err() {
                    return;
                }
            }
            Err(Some(why)) => {
                if tx.send(Msg::Fenced(me.clone(), why)).is_err() {
                    return;
                }
                wait_for_new_id(&id, &me);
            }
            Err(None) => {}
        }
    });
}

/// After a fenced answer: waits (bounded) until the main thread registered again.
fn wait_for_new_id(id: &Mutex<String>, old: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until && *id.lock().unwrap_or_else(PoisonError::into_inner) == old {
        std::thread::sleep(Duration::from_millis(50));
    }
}
