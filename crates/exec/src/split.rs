//! [`Split`]: one executor for host processes and another for containers,
//! behind one [`Executor`]. An attempt whose request names an image goes to
//! the container executor; every other attempt to the host one. Kill,
//! suspend and resume follow the attempt to wherever it started.

use crate::{EventSink, ExecEvent, Executor, StartRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_types::{AttemptNo, AttemptUsage, TaskRef};

/// Which executor runs an attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Side {
    Host,
    Containers,
}

type Placed = Arc<Mutex<HashMap<(TaskRef, AttemptNo), Side>>>;

/// Routes attempts by whether they name an image.
pub struct Split<H, C> {
    host: H,
    /// `None`: no container executor; image attempts fail at once, saying so.
    containers: Option<C>,
    placed: Placed,
    sink: EventSink,
}

impl<H: Executor, C: Executor> Split<H, C> {
    /// Builds both executors around sinks that forward to `sink` (and let
    /// the split forget an attempt once it has exited). `make_containers`
    /// may fail (no engine): image attempts then fail with its message.
    pub fn new(
        sink: EventSink,
        make_host: impl FnOnce(EventSink) -> H,
        make_containers: impl FnOnce(EventSink) -> Option<C>,
    ) -> Self {
        let placed: Placed = Arc::default();
        let forward = |sink: EventSink, placed: Placed| -> EventSink {
            Arc::new(move |event: ExecEvent| {
                if let ExecEvent::Exited { task, attempt, .. }
                | ExecEvent::Lost { task, attempt, .. } = &event
                {
                    placed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&(*task, *attempt));
                }
                sink(event)
            })
        };
        Self {
            host: make_host(forward(sink.clone(), placed.clone())),
            containers: make_containers(forward(sink.clone(), placed.clone())),
            placed,
            sink,
        }
    }

    fn side(&self, task: TaskRef, attempt: AttemptNo) -> Option<Side> {
        self.placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(task, attempt))
            .copied()
    }

    fn on(&mut self, side: Option<Side>) -> Option<&mut dyn Executor> {
        match side? {
            Side::Host => Some(&mut self.host),
            Side::Containers => self.containers.as_mut().map(|c| c as &mut dyn Executor),
        }
    }
}

impl<H: Executor, C: Executor> Executor for Split<H, C> {
    fn start(&mut self, req: StartRequest) {
        let side = if req.image.is_some() {
            Side::Containers
        } else {
            Side::Host
        };
        if side == Side::Containers && self.containers.is_none() {
            (self.sink)(ExecEvent::Exited {
                task: req.task,
                attempt: req.attempt,
                result: Err(format!(
                    "could not start: the task names the image {:?} but this server has no \
                     Docker engine (start it with --docker)",
                    req.image.unwrap_or_default()
                )),
                usage: AttemptUsage::default(),
            });
            return;
        }
        self.placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((req.task, req.attempt), side);
        match self.on(Some(side)) {
            Some(exec) => exec.start(req),
            None => unreachable!("checked above"),
        }
    }

    fn kill(&mut self, task: TaskRef, attempt: AttemptNo) {
        let side = self.side(task, attempt);
        if let Some(exec) = self.on(side) {
            exec.kill(task, attempt);
        }
    }

    fn kill_all(&mut self) {
        self.host.kill_all();
        if let Some(c) = &mut self.containers {
            c.kill_all();
        }
    }

    fn suspend(&mut self, task: TaskRef, attempt: AttemptNo) {
        let side = self.side(task, attempt);
        if let Some(exec) = self.on(side) {
            exec.suspend(task, attempt);
        }
    }

    fn resume(&mut self, task: TaskRef, attempt: AttemptNo) {
        let side = self.side(task, attempt);
        if let Some(exec) = self.on(side) {
            exec.resume(task, attempt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InProcessExecutor;
    use std::sync::mpsc;
    use tessera_types::{Action, JobId};

    fn request(index: u32, image: Option<&str>) -> StartRequest {
        StartRequest {
            task: TaskRef::new(JobId(1), index),
            attempt: 1,
            name: format!("t{index}"),
            action: Action::Noop,
            env: Default::default(),
            workdir: "/nonexistent".into(),
            log_dir: "/nonexistent".into(),
            image: image.map(String::from),
            cpu: 1,
            memory_mb: 0,
            labels: Default::default(),
            placement: Default::default(),
            reach: Default::default(),
            user: None,
            mounts: Vec::new(),
        }
    }

    #[test]
    fn image_attempts_go_to_the_containers_and_fail_clearly_without_them() {
        let (tx, rx) = mpsc::channel();
        let sink: EventSink = Arc::new(move |e| drop(tx.send(e)));
        // Two in-process executors stand in for the host and the engine; the
        // container one marks its no-ops by failing them.
        let mut split: Split<InProcessExecutor, InProcessExecutor> =
            Split::new(sink.clone(), InProcessExecutor::new, |_| None);
        split.start(request(0, None));
        split.start(request(1, Some("alpine:3")));
        let events: Vec<ExecEvent> = rx.try_iter().collect();
        let ended = |i: u32| {
            events.iter().find_map(|e| match e {
                ExecEvent::Exited { task, result, .. } if task.index == i => Some(result.clone()),
                _ => None,
            })
        };
        assert_eq!(ended(0), Some(Ok(())));
        let err = ended(1).unwrap().unwrap_err();
        assert!(err.contains("no Docker engine"), "{err}");
        assert!(
            split.placed.lock().unwrap().is_empty(),
            "exited attempts are forgotten"
        );
    }
}
