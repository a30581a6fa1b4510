//! One attempt's container, from creation to removal: create, start,
//! report `Started`, follow the output, obey kill/pause/unpause in the order
//! they were asked, wait for the exit, judge it, remove the container and
//! report `Exited`.

use crate::error::{is_not_found, is_refusal, reason, start_reason};
use crate::usage::{self, Sampled};
use crate::{logs, DockerError};
use bollard::errors::Error as EngineError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_exec::{last_line, EventSink, ExecError, ExecEvent};
use tessera_types::{AttemptNo, AttemptUsage, TaskRef};
use tokio::sync::mpsc;

/// How often, and how far apart, an exit by `SIGKILL` under a memory
/// limit is checked for the out-of-memory flag.
const OOM_TRIES: u32 = 10;
const OOM_PAUSE: Duration = Duration::from_millis(100);

/// What the executor asks of a running attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Kill,
    Pause,
    Unpause,
}

/// Running attempts, each with the channel its orders go through. An entry
/// lives from `start` until its container is removed, just before `Exited`.
pub(crate) type Running = Arc<Mutex<HashMap<(TaskRef, AttemptNo), mpsc::UnboundedSender<Control>>>>;

pub(crate) fn lock(
    running: &Running,
) -> std::sync::MutexGuard<'_, HashMap<(TaskRef, AttemptNo), mpsc::UnboundedSender<Control>>> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The engine, twice: `calls` with a timeout for requests that answer at
/// once, `streams` without a practical one for those that last as long as
/// the container (logs, wait, stats).
#[derive(Clone)]
pub(crate) struct Engine {
    pub calls: Docker,
    pub streams: Docker,
    /// Where it listens, for messages.
    pub host: String,
}

pub(crate) struct Attempt {
    pub engine: Engine,
    pub task: TaskRef,
    pub attempt: AttemptNo,
    pub container: String,
    pub body: ContainerCreateBody,
    pub stdout_log: File,
    pub stderr_log: File,
    pub stderr_path: PathBuf,
    pub memory_mb: u64,
    pub started: Instant,
    pub running: Running,
    pub sink: EventSink,
}

impl Attempt {
    /// Runs the attempt to its end and reports it.
    pub(crate) async fn run(self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut sampled = Sampled::default();
        let result = self.drive(&mut control, &mut sampled).await;
        self.remove().await;
        lock(&self.running).remove(&(self.task, self.attempt));
        let usage = AttemptUsage {
            wall_ms: self.started.elapsed().as_millis() as u64,
            cpu_ms: sampled.cpu_ns / 1_000_000,
            max_rss_kb: sampled.peak_bytes / 1024,
            ..Default::default()
        };
        (self.sink)(ExecEvent::Exited {
            task: self.task,
            attempt: self.attempt,
            result,
            usage,
        });
    }

    async fn drive(
        &self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        sampled: &mut Sampled,
    ) -> Result<(), String> {
        self.create().await.map_err(|e| e.to_string())?;
        let (mut killed, mut paused) = (false, false);
        while let Ok(order) = control.try_recv() {
            match order {
                Control::Kill => killed = true,
                Control::Pause => paused = true,
                Control::Unpause => paused = false,
            }
        }
        if killed {
            return Err(killed_message());
        }
        let docker = &self.engine.calls;
        if let Err(e) = docker.start_container(&self.container, None).await {
            return Err(self.start_error(&e));
        }
        let pid = match docker.inspect_container(&self.container, None).await {
            Ok(info) => info.state.and_then(|s| s.pid).unwrap_or(0),
            Err(_) => 0,
        };
        (self.sink)(ExecEvent::Started {
            task: self.task,
            attempt: self.attempt,
            pid: u32::try_from(pid).unwrap_or(0),
            node: None,
        });
        let samples = Arc::new(Mutex::new(Sampled::default()));
        let sampler = tokio::spawn(usage::sample(
            self.engine.streams.clone(),
            self.container.clone(),
            samples.clone(),
        ));
        if paused {
            self.order(Control::Pause, &mut paused).await;
        }

        let (task, attempt, sink) = (self.task, self.attempt, self.sink.clone());
        let (stdout, stderr) = (clone_file(&self.stdout_log)?, clone_file(&self.stderr_log)?);
        let output = logs::pump(
            &self.engine.streams,
            &self.container,
            stdout,
            stderr,
            move |progress| {
                sink(ExecEvent::Progress {
                    task,
                    attempt,
                    progress,
                })
            },
        );
        let exit = async { tokio::join!(self.wait(), output) };
        tokio::pin!(exit);
        let (code, pumped) = loop {
            tokio::select! {
                biased;
                ended = &mut exit => break ended,
                Some(order) = control.recv() => {
                    killed |= self.order(order, &mut paused).await;
                }
            }
        };
        sampler.abort();
        *sampled = *samples.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = pumped {
            // The attempt may still have done its work: say so where its
            // errors go, not in its result.
            let note = format!(
                "tessera: could not read the container's output: {}\n",
                reason(&e)
            );
            drop((&self.stderr_log).write_all(note.as_bytes()));
        }
        if killed {
            return Err(killed_message());
        }
        match code {
            Ok(0) => Ok(()),
            Ok(code) => Err(self.failure(code).await),
            Err(e) => Err(DockerError::engine(
                format!("wait for container {}", self.container),
                &e,
            )
            .to_string()),
        }
    }

    async fn create(&self) -> Result<(), DockerError> {
        let options = || {
            CreateContainerOptionsBuilder::new()
                .name(&self.container)
                .build()
        };
        let docker = &self.engine.calls;
        let first = docker
            .create_container(Some(options()), self.body.clone())
            .await;
        let e = match first {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let outcome = match &e {
            // Left over from an earlier run of this very attempt (same
            // scheduler instance): it was never reported, so it goes.
            EngineError::DockerResponseServerError {
                status_code: 409, ..
            } => {
                self.remove().await;
                docker
                    .create_container(Some(options()), self.body.clone())
                    .await
            }
            _ => Err(e),
        };
        match outcome {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(DockerError::NoImage {
                image: self.body.image.clone().unwrap_or_default(),
                host: self.engine.host.clone(),
            }),
            Err(e) if !is_refusal(&e) => Err(DockerError::Unreachable {
                host: self.engine.host.clone(),
                reason: reason(&e),
            }),
            Err(e) => Err(DockerError::engine(
                format!("create container {}", self.container),
                &e,
            )),
        }
    }

    /// Why the container did not start: for a missing program, the same
    /// words as a local process that could not be spawned.
    fn start_error(&self, e: &EngineError) -> String {
        if !is_refusal(e) {
            return DockerError::Unreachable {
                host: self.engine.host.clone(),
                reason: reason(e),
            }
            .to_string();
        }
        let program = self
            .body
            .entrypoint
            .as_ref()
            .and_then(|p| p.first())
            .cloned()
            .unwrap_or_default();
        let image = self.body.image.as_deref().unwrap_or_default();
        ExecError::Spawn {
            program,
            reason: format!("{} (in image {image})", start_reason(&reason(e))),
        }
        .to_string()
    }

    /// Carries out an order; true for a kill the engine delivered (a
    /// container that had already stopped was not killed). Other failures
    /// mean the container is gone or already in that state: the exit that
    /// follows tells what happened.
    async fn order(&self, order: Control, paused: &mut bool) -> bool {
        let docker = &self.engine.calls;
        match order {
            Control::Kill => {
                let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
                let killed = docker
                    .kill_container(&self.container, Some(options))
                    .await
                    .is_ok();
                if *paused {
                    drop(docker.unpause_container(&self.container).await);
                }
                return killed;
            }
            Control::Pause => {
                *paused = docker.pause_container(&self.container).await.is_ok() || *paused;
            }
            Control::Unpause => {
                if docker.unpause_container(&self.container).await.is_ok() {
                    *paused = false;
                }
            }
        }
        false
    }

    /// The container's exit status, once it has stopped.
    async fn wait(&self) -> Result<i64, EngineError> {
        let mut stream = self.engine.streams.wait_container(&self.container, None);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(e),
            None => {
                let info = self
                    .engine
                    .calls
                    .inspect_container(&self.container, None)
                    .await?;
                Ok(info.state.and_then(|s| s.exit_code).unwrap_or(-1))
            }
        }
    }

    /// The message for a non-zero exit: the kernel's out-of-memory kill, or
    /// the status and the last line of standard error.
    async fn failure(&self, code: i64) -> String {
        if code == 128 + i64::from(libc::SIGKILL) && self.memory_mb > 0 && self.oom_killed().await {
            return DockerError::OutOfMemory {
                limit_mb: self.memory_mb,
            }
            .to_string();
        }
        ExecError::Status {
            code: i32::try_from(code).unwrap_or(-1),
            stderr: last_line(&self.stderr_path),
        }
        .to_string()
    }

    /// Whether the kernel killed the container for want of memory. The
    /// engine may learn of the kill just after the exit, so it is asked a
    /// few times.
    async fn oom_killed(&self) -> bool {
        for _ in 0..OOM_TRIES {
            let state = self
                .engine
                .calls
                .inspect_container(&self.container, None)
                .await
                .ok()
                .and_then(|info| info.state);
            if state.and_then(|s| s.oom_killed).unwrap_or(false) {
                return true;
            }
            tokio::time::sleep(OOM_PAUSE).await;
        }
        false
    }

    /// Removes the container, running or not; one already gone is fine.
    async fn remove(&self) {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        drop(
            self.engine
                .calls
                .remove_container(&self.container, Some(options))
                .await,
        );
    }
}

fn killed_message() -> String {
    ExecError::Signal {
        signal: libc::SIGKILL,
    }
    .to_string()
}

fn clone_file(file: &File) -> Result<File, String> {
    file.try_clone()
        .map_err(|e| format!("could not open a log file again: {e}"))
}
