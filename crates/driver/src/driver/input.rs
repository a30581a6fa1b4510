//! One input of a turn (an executor's event, a submission, a control
//! request, a cancel, a quota, capacity, an interrupt) turned into what the
//! core decides.

use super::start::read_expansion;
use super::{Driver, DriverError, Observer};
use crate::feed::FeedItem;
use crate::handle::Input;
use tessera_core::{Event, Step};
use tessera_exec::{ExecEvent, Executor};
use tessera_store::{StartedAttempt, Store};
use tessera_types::Millis;

impl<S: Store, E: Executor> Driver<S, E> {
    pub(super) fn input(
        &mut self,
        input: Input,
        now: Millis,
        observer: &mut dyn Observer,
    ) -> Result<Step, DriverError> {
        Ok(match input {
            Input::Exec(ExecEvent::Started {
                task,
                attempt,
                pid,
                node,
            }) => {
                self.started.push(StartedAttempt {
                    task,
                    attempt,
                    pid,
                    node,
                });
                Step::default()
            }
            Input::Exec(ExecEvent::Progress {
                task,
                attempt,
                progress,
            }) => {
                observer.progress(task, attempt, progress);
                if self.feed.listened() {
                    self.feed.publish(FeedItem::Progress {
                        task,
                        attempt,
                        progress,
                    });
                }
                Step::default()
            }
            Input::Exec(ExecEvent::Lost {
                task,
                attempt,
                reason,
            }) => {
                if self.running.remove(&(task, attempt)).is_none() {
                    return Ok(Step::default());
                }
                self.sched.handle(
                    Event::Lost {
                        task,
                        attempt,
                        reason,
                    },
                    now,
                )
            }
            Input::Exec(ExecEvent::Exited {
                task,
                attempt,
                result,
                usage,
            }) => {
                let Some(run) = self.running.remove(&(task, attempt)) else {
                    return Ok(Step::default());
                };
                if self.interrupted && result.is_err() {
                    // Killed by the interrupt (or failed as it landed): not
                    // the task's fault, so it goes back to the queue. One
                    // that succeeded just before counts as done.
                    let reason = "interrupted; run the command again to resume".to_string();
                    return Ok(self.sched.handle(
                        Event::Lost {
                            task,
                            attempt,
                            reason,
                        },
                        now,
                    ));
                }
                let (result, expansion) = match (result, run.spec.expands) {
                    (Ok(()), true) => match read_expansion(run.expand.as_deref()) {
                        Ok(e) => (Ok(()), e),
                        Err(e) => (Err(e), None),
                    },
                    (r, _) => (r, None),
                };
                self.sched.handle(
                    Event::Exited {
                        task,
                        attempt,
                        result,
                        usage,
                        expansion,
                    },
                    now,
                )
            }
            Input::Submit {
                project,
                spec,
                key,
                reply,
            } => {
                let result = if self.interrupted {
                    Err(DriverError::Stopped)
                } else {
                    self.submit_in(project, &spec, key.as_deref())
                };
                let _ = reply.send(result);
                Step::default()
            }
            Input::Cancel(job) => self.sched.handle(Event::CancelJob { job }, now),
            Input::Control { event, reply } => {
                match self.control(event, now, observer) {
                    // The store failed: the loop stops, as on any store error.
                    Err(e @ DriverError::Store(_)) => {
                        let _ = reply.send(Err(DriverError::Stopped));
                        return Err(e);
                    }
                    result => drop(reply.send(result)),
                }
                Step::default()
            }
            Input::SetQuota {
                project,
                quota,
                reply,
            } => {
                // The loop ticks after this turn's inputs: that starts what
                // a raised quota allows.
                self.sched.set_quota(project, quota);
                let _ = reply.send(());
                Step::default()
            }
            Input::SetCapacity(slots) => {
                // The loop ticks after this turn's inputs: that starts what
                // new slots allow.
                self.sched.set_capacity(slots);
                Step::default()
            }
            Input::WhyWaiting { job, reply } => {
                let _ = reply.send(self.why_waiting(job, now));
                Step::default()
            }
            Input::JobWaiting { job, reply } => {
                let _ = reply.send(self.job_waiting(job));
                Step::default()
            }
            Input::Usage { project, reply } => {
                let _ = reply.send(self.sched.project_usage(project, now));
                Step::default()
            }
            Input::Interrupt => {
                self.interrupted = true;
                self.sched.set_paused(true);
                self.exec.kill_all();
                Step::default()
            }
        })
    }
}
