//! What the worker tells the server of the attempts it holds: their
//! events, attempts lost by their transfers, and a low disk at once.

use super::{Key, Running};
use serde_json::json;
use std::time::Duration;
use tessera_exec::{ExecEvent, Executor};

impl Running {
    /// Reports an attempt lost by its transfers (it uses up no retry).
    pub(super) fn report_lost(&mut self, (task, attempt): Key, reason: String) {
        if !self.held.contains((task, attempt)) {
            return;
        }
        eprintln!("tessera worker: attempt {attempt} of task {task} lost: {reason}");
        // Still listed as running in this beat: the lost report follows.
        self.say_if_disk_low();
        self.held.remove((task, attempt));
        let path = self.events_path((task, attempt));
        let body = json!({ "events": [{"kind": "lost", "reason": reason}] });
        for _ in 0..5 {
            match self.conn.post(&path, &body) {
                Ok(_) | Err(Some(_)) => return,
                Err(None) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// With `--data http`, when the disk is below `--min-free-mb`: tells
    /// the server at once (a heartbeat) rather than at the next beat, so
    /// the slot a lost attempt frees is not filled here again meanwhile.
    pub(super) fn say_if_disk_low(&mut self) {
        let Some(cache) = &self.cache else { return };
        if !cache.check_disk() {
            return;
        }
        let body = json!({
            "running": self.held.as_json(),
            "holds": cache.holds(),
            "disk_low": true,
        });
        if let Ok(v) = self
            .conn
            .post(&format!("/workers/{}/heartbeat", self.id()), &body)
        {
            let orders = v["orders"].as_array().cloned().unwrap_or_default();
            self.obey(orders);
        }
    }

    /// Sends one event of an attempt this worker holds; a fenced answer
    /// kills the attempt here.
    pub(super) fn report(&mut self, event: ExecEvent) {
        let (task, attempt) = event.attempt();
        if !self.held.contains((task, attempt)) {
            return; // given up already
        }
        let body = match &event {
            ExecEvent::Started { pid, .. } => json!({"kind": "started", "pid": pid}),
            ExecEvent::Progress { progress, .. } => {
                json!({"kind": "progress", "done": progress.done, "total": progress.total})
            }
            ExecEvent::Exited { result, usage, .. } => {
                self.held.remove((task, attempt));
                json!({"kind": "exited", "error": result.as_ref().err(), "usage": usage})
            }
            ExecEvent::Lost { .. } => return,
        };
        let path = self.events_path((task, attempt));
        // Lost reports are retried a few times: the server may be restarting.
        for _ in 0..5 {
            match self.conn.post(&path, &json!({ "events": [body] })) {
                Ok(_) => return,
                Err(Some(why)) => {
                    eprintln!("tessera worker: refused (409): {why}; killing attempt {attempt} of task {} of job {}", task.index, task.job.0);
                    self.held.remove((task, attempt));
                    self.exec.kill(task, attempt);
                    return;
                }
                Err(None) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Where the events of attempt `key` go.
    fn events_path(&self, (task, attempt): Key) -> String {
        format!(
            "/workers/{}/attempts/{}/{}/{attempt}/events",
            self.id(),
            task.job.0,
            task.index
        )
    }
}
