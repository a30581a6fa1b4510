//! `--data http` attempts on the worker: their inputs are fetched on a
//! thread before they start, their outputs sent back after they end, and
//! only then is the end reported.

use super::{data, Msg, Running, Wire};
use std::sync::Arc;
use tessera_exec::{ExecEvent, Executor, StartRequest};

/// What the main loop keeps of an http attempt between fetch and send.
pub(super) struct Fetched {
    pub(super) plan: data::Plan,
    before: data::Snapshot,
    down: data::Moved,
}

impl Running {
    /// Fetches the inputs of an http attempt on a thread of its own; the
    /// main loop hears `Fetched` (then starts it) or `Sent` (lost, fenced).
    pub(super) fn fetch(&mut self, req: StartRequest, plan: data::Plan, cache: Arc<data::Cache>) {
        let key = (req.task, req.attempt);
        self.fetching.insert(key);
        let (conn, tx, id) = (self.conn.clone(), self.tx.clone(), self.id());
        std::thread::spawn(move || {
            let t = data::Transfer::new(&conn, &cache, id, key);
            let msg = match t.fetch(&plan) {
                Ok(down) => {
                    let before = data::snapshot(&plan);
                    Msg::Fetched(Box::new(req), Box::new(Fetched { plan, before, down }))
                }
                Err(stop) => {
                    cache.release(&plan);
                    Msg::Sent(key, stop_wire(stop))
                }
            };
            let _ = tx.send(msg);
        });
    }

    pub(super) fn fetched(&mut self, req: StartRequest, fetched: Fetched) {
        let key = (req.task, req.attempt);
        if !self.fetching.remove(&key) || !self.held.contains(key) {
            if let Some(cache) = &self.cache {
                cache.release(&fetched.plan);
            }
            return; // killed or given up meanwhile
        }
        self.http_attempts.insert(key, fetched);
        self.exec.start(req);
    }

    /// An event from the executor: an http attempt's end waits for its
    /// outputs to be sent back.
    pub(super) fn exec_event(&mut self, event: ExecEvent) {
        let key = event.attempt();
        let ExecEvent::Exited { result, usage, .. } = &event else {
            return self.report(event);
        };
        let (Some(fetched), Some(cache)) = (self.http_attempts.remove(&key), self.cache.clone())
        else {
            return self.report(event);
        };
        if !self.held.contains(key) {
            cache.release(&fetched.plan);
            return;
        }
        let (conn, tx, id) = (self.conn.clone(), self.tx.clone(), self.id());
        let (result, mut usage) = (result.clone(), *usage);
        std::thread::spawn(move || {
            let t = data::Transfer::new(&conn, &cache, id, key);
            let sent = t.send_back(&fetched.plan, &fetched.before, result.is_err());
            // Judged before the inputs are released (and may be evicted).
            let full = result
                .as_ref()
                .err()
                .and_then(|e| cache.full_disk_failure(e));
            cache.release(&fetched.plan);
            let wire = match sent {
                Ok(_) if full.is_some() => full.map(Wire::Lost),
                Ok(up) => {
                    usage.transfer_ms = fetched.down.ms + up.ms;
                    usage.transfer_bytes = fetched.down.bytes + up.bytes;
                    let (d, task) = (fetched.down, key.0);
                    eprintln!(
                        "tessera worker: attempt {} of task {task}: ran {} ms; fetched {} bytes \
                         in {} ms, sent {} bytes in {} ms",
                        key.1, usage.wall_ms, d.bytes, d.ms, up.bytes, up.ms
                    );
                    Some(Wire::Event(ExecEvent::Exited {
                        task: key.0,
                        attempt: key.1,
                        result,
                        usage,
                    }))
                }
                Err(stop) => stop_wire(stop),
            };
            let _ = tx.send(Msg::Sent(key, wire));
        });
    }
}

pub(super) fn stop_wire(stop: data::Stop) -> Option<Wire> {
    match stop {
        data::Stop::Fenced(why) => {
            eprintln!("tessera worker: refused (409): {why}");
            None
        }
        data::Stop::Lost(why) => Some(Wire::Lost(why)),
    }
}
