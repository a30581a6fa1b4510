use crate::{EventSink, ExecError, ExecEvent, Executor, StartRequest};
use tessera_types::{Action, AttemptNo, AttemptUsage, TaskRef};

/// An executor without processes: it completes `Action::Noop` attempts at
/// once (the `Exited` event is sent from inside [`start`](Executor::start))
/// and fails every other action. For benchmarks and tests of the scheduler.
pub struct InProcessExecutor {
    sink: EventSink,
}

impl InProcessExecutor {
    pub fn new(sink: EventSink) -> Self {
        Self { sink }
    }
}

impl Executor for InProcessExecutor {
    fn start(&mut self, req: StartRequest) {
        let result = match req.action {
            Action::Noop => Ok(()),
            Action::Op { .. } | Action::Command { .. } | Action::Script { .. } => {
                Err(ExecError::NotNoop.to_string())
            }
        };
        let usage = AttemptUsage::default();
        (self.sink)(ExecEvent::Exited {
            task: req.task,
            attempt: req.attempt,
            result,
            usage,
        });
    }

    /// Nothing to kill: every attempt has already ended.
    fn kill(&mut self, _task: TaskRef, _attempt: AttemptNo) {}

    fn kill_all(&mut self) {}
}
