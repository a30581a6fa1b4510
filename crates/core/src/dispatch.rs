//! Dispatch: ready queues per project, and which ready task takes a free slot.
//!
//! Each project's queue orders its ready tasks by priority (the task's own
//! plus its job's offset), then job age. A suspended job's entries are dropped
//! when they reach the head.
//! When slots are free, the head of each project's queue is a candidate
//! unless starting it would break its project's quota (that project waits;
//! the others do not). Among candidates, the project with the least usage
//! per weight goes first (recent decayed cpu time plus what its running
//! attempts have used so far; ties: fewer cpu running, then the project seen
//! first). If that head needs more slots than are free, nothing else starts
//! until enough free up, so wide tasks are not starved by narrow ones.
//! Cost per start: one heap pop plus a look at each project's head.

use crate::fair::{Policy, Project, Queued};
use crate::sched::Scheduler;
use crate::step::{Command, Step};
use std::cmp::Reverse;
use tessera_types::{Change, JobState, Millis, NodeId, TaskRef, TaskState};

impl Scheduler {
    pub(crate) fn requeue(&mut self, task: TaskRef) {
        let nb = self.task(task).map_or(0, |t| t.not_before);
        if nb > 0 {
            self.delayed.insert((nb, task));
        } else {
            self.enqueue(task);
        }
    }

    pub(crate) fn enqueue(&mut self, task: TaskRef) {
        self.seq += 1;
        let seq = self.seq;
        let Some(job) = self.jobs.get_mut(&task.job) else {
            return;
        };
        let p = job.project;
        let Some(t) = job.tasks.get_mut(task.index as usize) else {
            return;
        };
        if t.state != TaskState::Ready {
            return; // a stale timer for a task that moved on
        }
        t.queued = seq;
        let priority = t.spec.priority.saturating_add(job.priority);
        self.projects[p].queue.push(Queued {
            priority,
            job: Reverse(task.job),
            seq: Reverse(seq),
            task,
        });
    }

    /// Takes the slot and quota a running attempt holds.
    pub(crate) fn occupy(&mut self, task: TaskRef, now: Millis) {
        let job = self.jobs.get_mut(&task.job).expect("job");
        let t = &mut job.tasks[task.index as usize];
        t.started = now;
        let (cpu, memory_mb) = (t.spec.resources.cpu, t.spec.resources.memory_mb);
        self.used = self.used.saturating_add(cpu);
        self.projects[job.project].occupy(cpu, memory_mb, now);
    }

    /// The live head of project `p`'s queue with the cpu and memory it
    /// needs, dropping stale entries and moving tasks still backing off to
    /// the timers.
    pub(crate) fn head(&mut self, p: usize, now: Millis) -> Option<(TaskRef, u32, u64)> {
        while let Some(top) = self.projects[p].queue.peek() {
            let (task, seq) = (top.task, top.seq.0);
            // A suspended job's tasks leave the queue; resuming queues them again.
            let suspended = self.jobs.get(&task.job).is_some_and(|j| j.suspended);
            let live = self
                .task(task)
                .filter(|_| !suspended)
                .filter(|t| t.state == TaskState::Ready && t.queued == seq)
                .map(|t| {
                    (
                        t.not_before,
                        t.spec.resources.cpu,
                        t.spec.resources.memory_mb,
                    )
                });
            match live {
                Some((nb, cpu, mem)) if nb <= now => return Some((task, cpu, mem)),
                Some((nb, ..)) => {
                    self.delayed.insert((nb, task));
                }
                None => {}
            }
            self.projects[p].queue.pop();
        }
        None
    }

    /// The project whose head should start next: among those whose head
    /// fits their quota, the least recent usage per weight, then the fewest
    /// cpu running per weight, then the project seen first.
    fn pick(&mut self, now: Millis) -> Option<(usize, TaskRef, u32)> {
        let mut best: Option<(usize, TaskRef, u32)> = None;
        let mut best_key = (f64::INFINITY, f64::INFINITY);
        let mut candidates = 0;
        for p in 0..self.projects.len() {
            if self.projects[p].queue.is_empty() {
                continue;
            }
            let Some((task, cpu, mem)) = self.head(p, now) else {
                continue;
            };
            let proj = &mut self.projects[p];
            proj.prune(now, &self.policy);
            if proj.over_quota(cpu, mem, now, &self.policy).is_some() {
                continue;
            }
            candidates += 1;
            if candidates == 1 {
                best = Some((p, task, cpu));
                continue;
            }
            if candidates == 2 {
                let (b, ..) = best.expect("one candidate");
                best_key = fair_key(&self.projects[b], now, &self.policy);
            }
            let key = fair_key(&self.projects[p], now, &self.policy);
            if key < best_key {
                best_key = key;
                best = Some((p, task, cpu));
            }
        }
        best
    }

    pub(crate) fn dispatch(&mut self, now: Millis, step: &mut Step) {
        if self.paused {
            return;
        }
        // Slots go to the fairest project; when its head does not fit the
        // free slots, nothing else starts either (no starving wide tasks).
        while let Some((p, task, cpu)) = self.pick(now) {
            if self.used.saturating_add(cpu) > self.capacity {
                break;
            }
            self.projects[p].queue.pop();
            self.occupy(task, now);
            let job = self.jobs.get_mut(&task.job).expect("job");
            if job.state == JobState::Pending {
                job.state = JobState::Running;
                step.changes.push(Change::JobState {
                    job: task.job,
                    state: JobState::Running,
                });
            }
            let t = &mut job.tasks[task.index as usize];
            t.attempt += 1;
            t.not_before = 0;
            let attempt = t.attempt;
            let spec = t.spec.clone();
            if let Some(limit) = spec.time_limit_ms {
                t.deadline = now.saturating_add(limit);
                self.deadlines.insert((t.deadline, task, attempt));
            }
            if !self.set(task, TaskState::Running, None, step) {
                // Refused (a fault stops its job): it never started.
                self.release(task, attempt);
                continue;
            }
            step.changes.push(Change::AttemptStarted {
                task,
                attempt,
                node: NodeId::LOCAL,
                at: now,
            });
            step.commands.push(Command::Start {
                task,
                attempt,
                spec,
                node: NodeId::LOCAL,
            });
        }
    }
}

fn fair_key(p: &Project, now: Millis, policy: &Policy) -> (f64, f64) {
    (
        p.share_usage(now, policy) / p.weight,
        f64::from(p.running_cpu) / p.weight,
    )
}
