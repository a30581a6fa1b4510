//! What the API sends: plain JSON views of what the service answers
//! (store rows, mostly). Times are milliseconds since the Unix epoch;
//! states are the stable strings of `tessera_types`.

use serde::Serialize;
use std::collections::BTreeMap;
use tessera_media::StreamInfo;
use tessera_service::{JobStatus, Me, NewKey, NewUser, Task, Upload, Usage};
use tessera_store::{AttemptRecord, JobRecord, KeyRecord, ProjectRecord, UserRecord};
use tessera_types::{
    AttemptUsage, Condition, JobDependency, JobSelector, Millis, Quota, Role, TaskSpec, TaskState,
};

#[derive(Serialize)]
pub(crate) struct UserView {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub created_at: Millis,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.0,
            name: u.name.clone(),
            admin: u.admin,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ProjectView {
    pub id: i64,
    pub name: String,
    pub created_at: Millis,
    /// The caller's role in it (`null` for an admin who is not a member).
    pub role: Option<Role>,
}

impl ProjectView {
    pub fn new(p: &ProjectRecord, role: Option<Role>) -> Self {
        Self {
            id: p.id.0,
            name: p.name.clone(),
            created_at: p.created_at,
            role,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct MeView {
    pub user: UserView,
    pub admin: bool,
    pub projects: Vec<ProjectView>,
}

impl From<Me> for MeView {
    fn from(me: Me) -> Self {
        Self {
            admin: me.user.admin,
            user: UserView::from(&me.user),
            projects: me
                .projects
                .iter()
                .map(|(p, r)| ProjectView::new(p, Some(*r)))
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct MemberView {
    pub user: UserView,
    pub role: Role,
}

impl From<&(UserRecord, Role)> for MemberView {
    fn from((user, role): &(UserRecord, Role)) -> Self {
        Self {
            user: UserView::from(user),
            role: *role,
        }
    }
}

/// A key without its hash.
#[derive(Serialize)]
pub(crate) struct KeyView {
    pub id: i64,
    pub user: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl From<&KeyRecord> for KeyView {
    fn from(k: &KeyRecord) -> Self {
        Self {
            id: k.id.0,
            user: k.user.0,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just created: the only time `secret` (the full key) is shown.
#[derive(Serialize)]
pub(crate) struct NewKeyView {
    pub key: KeyView,
    pub secret: String,
}

impl From<NewKey> for NewKeyView {
    fn from(k: NewKey) -> Self {
        Self {
            key: KeyView::from(&k.key),
            secret: k.secret,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct NewUserView {
    pub user: UserView,
    pub key: NewKeyView,
}

impl From<NewUser> for NewUserView {
    fn from(u: NewUser) -> Self {
        Self {
            user: UserView::from(&u.user),
            key: u.key.into(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct JobView {
    pub id: i64,
    pub project: Option<i64>,
    pub name: String,
    pub state: &'static str,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
    /// Suspended: nothing of it starts and its running attempts are stopped
    /// (a flag beside `state`).
    pub suspended: bool,
    /// Its priority offset, added to its tasks' own priorities.
    pub priority: i32,
    /// Task counts by state (only states with tasks); present on single-job reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<BTreeMap<&'static str, u64>>,
    /// The jobs it waits on (`after` as written, with the ids each matched
    /// at submission); present on single-job reads of a job that has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<AfterView>>,
    /// What it waits for while its job dependencies hold it back ("waiting
    /// for job 12 (split) to succeed"); single-job reads only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// One job dependency: what was written and what it matched.
#[derive(Serialize)]
pub(crate) struct AfterView {
    /// A job id (a number) or a name selector (a string), as written.
    pub job: JobSelector,
    pub condition: Condition,
    /// The jobs it matched when the job was submitted, ascending.
    pub jobs: Vec<i64>,
}

impl From<&JobDependency> for AfterView {
    fn from(d: &JobDependency) -> Self {
        Self {
            job: d.job.clone(),
            condition: d.condition,
            jobs: d.resolved.iter().map(|j| j.0).collect(),
        }
    }
}

impl JobView {
    /// `tasks`: the job's task counts by state, as [`Store::task_counts`]
    /// gives them (`None` leaves them out).
    ///
    /// [`Store::task_counts`]: tessera_store::Store::task_counts
    pub fn new(j: &JobRecord, tasks: Option<&[(TaskState, u64)]>) -> Self {
        let tasks = tasks.map(|counts| {
            counts
                .iter()
                .filter(|&&(_, n)| n > 0)
                .map(|&(state, n)| (state.as_str(), n))
                .collect()
        });
        Self {
            id: j.id.0,
            project: j.project.map(|p| p.0),
            name: j.name.clone(),
            state: j.state.as_str(),
            created_at: j.created_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
            suspended: j.suspended,
            priority: j.priority,
            tasks,
            after: None,
            waiting: None,
        }
    }

    /// The job with its task counts, the jobs it waits on and, while they
    /// hold it back, what for.
    pub fn status(s: &JobStatus) -> Self {
        let mut view = Self::new(&s.job, Some(&s.counts));
        if !s.after.is_empty() {
            view.after = Some(s.after.iter().map(AfterView::from).collect());
            view.waiting = s.waiting.clone();
        }
        view
    }
}

#[derive(Serialize)]
pub(crate) struct TaskView {
    pub index: u32,
    pub name: String,
    pub state: TaskState,
    pub attempt: u32,
    pub failures: u32,
    pub reason: Option<String>,
    pub not_before: Millis,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub spec: TaskSpec,
    /// Why a waiting or ready task has not started (dependencies, backoff,
    /// its project's quota, no free slot); `null` otherwise.
    pub waiting: Option<String>,
}

impl From<&Task> for TaskView {
    fn from(task: &Task) -> Self {
        let t = &task.record;
        Self {
            index: t.task.index,
            name: t.name.clone(),
            state: t.state,
            attempt: t.attempt,
            failures: t.failures,
            reason: t.reason.clone(),
            not_before: t.not_before,
            created_at: t.created_at,
            updated_at: t.updated_at,
            spec: t.spec.clone(),
            waiting: task.waiting.clone(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct AttemptView {
    pub task: u32,
    pub attempt: u32,
    /// The node that ran it, by the name the nodes list gives it (the
    /// server's own slots included); `null` only before a worker reported
    /// its start.
    pub node: Option<String>,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    /// `succeeded`, `failed`, `timed_out`, `cancelled`, `lost`; `null` while running.
    pub outcome: Option<&'static str>,
    /// The outcome for people (`failed: exit status 1: ...`).
    pub message: Option<String>,
    /// `transfer_ms` and `transfer_bytes` appear only when non-zero (a
    /// worker without the shared filesystem moved the attempt's files).
    pub usage: Option<AttemptUsage>,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            task: a.task.index,
            attempt: a.number,
            node: a.node.clone(),
            started_at: a.started_at,
            ended_at: a.ended_at,
            outcome: a.outcome.as_ref().map(|o| o.kind()),
            message: a.outcome.as_ref().map(|o| o.describe()),
            usage: a.usage,
        }
    }
}

/// A project's limits; `null` is unlimited.
#[derive(Serialize)]
pub(crate) struct QuotaView {
    pub max_cpu: Option<u32>,
    pub max_memory_mb: Option<u64>,
    pub cpu_ms_per_window: Option<u64>,
}

impl From<Quota> for QuotaView {
    fn from(q: Quota) -> Self {
        Self {
            max_cpu: q.max_cpu,
            max_memory_mb: q.max_memory_mb,
            cpu_ms_per_window: q.cpu_ms_per_window,
        }
    }
}

/// What a project uses now, as the running scheduler counts it.
#[derive(Serialize)]
pub(crate) struct UsageView {
    /// Cpu slots and memory (MiB) its running attempts hold.
    pub running_cpu: u32,
    pub running_memory_mb: u64,
    /// Recent cpu time, halving every half-life: what fair share compares.
    pub decayed_cpu_seconds: f64,
    /// Cpu time charged within the quota window: what `cpu_ms_per_window` limits.
    pub window_cpu_seconds: f64,
    pub quota: QuotaView,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            running_cpu: u.now.running_cpu,
            running_memory_mb: u.now.running_memory_mb,
            decayed_cpu_seconds: u.now.decayed_cpu_ms / 1000.0,
            window_cpu_seconds: u.now.window_cpu_ms as f64 / 1000.0,
            quota: u.quota.into(),
        }
    }
}

/// An accepted upload.
#[derive(Serialize)]
pub(crate) struct UploadView {
    pub upload: String,
    pub name: String,
    pub bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
    pub streams: Vec<StreamInfo>,
}

impl From<Upload> for UploadView {
    fn from(u: Upload) -> Self {
        Self {
            upload: u.item.upload,
            name: u.item.name,
            bytes: u.item.bytes,
            created: u.item.created,
            duration: u.item.duration,
            streams: u.streams,
        }
    }
}
