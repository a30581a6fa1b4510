//! What each attempt is started with: its folders, its environment, the
//! user it runs as (its project's) and its reach (its job's folder, its
//! job's grants, its mounted volumes).

use super::Driver;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_exec::{Executor, RunAs, StartRequest};
use tessera_store::Store;
use tessera_types::{
    folder_name, AttemptNo, Grant, JobId, JobSpec, ProjectId, Reach, TaskRef, TaskSpec,
};

/// Who a job's attempts run as and what they may touch beyond its folder:
/// its project and the grants of its spec.
pub(super) struct Access {
    pub(super) project: Option<ProjectId>,
    pub(super) grants: Vec<Grant>,
}

impl<S: Store, E: Executor> Driver<S, E> {
    pub(super) fn hold_access(&mut self, job: JobId, project: Option<ProjectId>, spec: &JobSpec) {
        let access = Access {
            project,
            grants: spec.grants.clone(),
        };
        self.access.insert(job, Arc::new(access));
    }

    /// Shares a job's directory with the user its tasks run as, if they
    /// switch users, and makes its `logs` (this process's alone) and
    /// `tasks` folders before any task can put something in their place.
    pub(super) fn share_job_dir(&self, job: JobId, user: Option<&RunAs>) -> Result<(), String> {
        let Some(user) = user else {
            return Ok(());
        };
        let dir = self.job_dir(job);
        user.share(&dir)
            .and_then(|()| tessera_exec::private_dir(&dir.join("logs")))
            .map_err(|e| {
                format!(
                    "could not share the job directory {} with user {}: {e}",
                    dir.display(),
                    user.name
                )
            })
    }

    /// What an attempt runs as and may touch, or why it cannot run (its
    /// project has no uid in the range).
    pub(super) fn start_request(
        &self,
        task: TaskRef,
        attempt: AttemptNo,
        spec: &TaskSpec,
    ) -> Result<StartRequest, String> {
        let job_dir = self.job_dir(task.job);
        let access = self.access.get(&task.job);
        let project = access.and_then(|a| a.project);
        let user = match self.config.task_uids {
            Some(uids) => Some(uids.user_of(project.map(|p| p.0))?),
            None => None,
        };
        let mut grants = vec![Grant::write(&job_dir).folder()];
        grants.extend(access.into_iter().flat_map(|a| a.grants.iter().cloned()));
        let (mounts, mounted) = crate::volumes::binds(&self.config.volumes, spec)?;
        grants.extend(mounted);
        let workdir = job_dir.join("tasks").join(folder_name(&spec.name));
        let mut env = spec.env.clone();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("TESSERA_JOB_ID", task.job.to_string());
        set("TESSERA_TASK_ID", task.to_string());
        set("TESSERA_TASK_NAME", spec.name.clone());
        set("TESSERA_ATTEMPT", attempt.to_string());
        set("TESSERA_JOB_DIR", job_dir.display().to_string());
        set("TESSERA_WORKDIR", workdir.display().to_string());
        if spec.expands {
            set(
                "TESSERA_EXPAND",
                workdir.join("expand.json").display().to_string(),
            );
        }
        Ok(StartRequest {
            task,
            attempt,
            name: folder_name(&spec.name),
            action: spec.action.clone(),
            env,
            workdir,
            log_dir: job_dir.join("logs"),
            image: spec.image.clone(),
            cpu: spec.resources.cpu,
            memory_mb: spec.resources.memory_mb,
            labels: spec.resources.labels.clone(),
            placement: self.placement(spec),
            reach: Reach::new(grants),
            user,
            mounts,
        })
    }
}

impl<S: Store, E: Executor> Driver<S, E> {
    /// The task's placement rules, with the nodes the store records the
    /// jobs they name on (so a rule survives a restart of the server).
    fn placement(&self, spec: &TaskSpec) -> tessera_exec::Placement {
        let mut ran_on = Vec::new();
        let jobs = spec.resources.rules.iter().flat_map(|r| match &r.near {
            tessera_types::Near::Jobs(jobs) => jobs.as_slice(),
            tessera_types::Near::Label { .. } => &[],
        });
        for &job in jobs {
            match self.store.attempts(job) {
                Ok(attempts) => ran_on.extend(
                    attempts
                        .into_iter()
                        .filter(|a| a.pid.is_some() || a.node.is_some())
                        .map(|a| (job, a.node)),
                ),
                Err(e) => eprintln!(
                    "tessera-driver: cannot read where job {job} ran ({e}); placement learns it \
                     only from attempts placed from now on"
                ),
            }
        }
        ran_on.sort();
        ran_on.dedup();
        tessera_exec::Placement {
            rules: spec.resources.rules.clone(),
            ran_on,
        }
    }
}

/// Where an attempt's `stream` ("stdout" or "stderr") log is written, under
/// the workspace root: `<workspace>/jobs/<job>/logs/<task>.<attempt>.<stream>.log`.
/// The driver owns the directories, the executor the file name.
pub fn attempt_log_path(
    workspace: &Path,
    job: JobId,
    task_name: &str,
    attempt: AttemptNo,
    stream: &str,
) -> PathBuf {
    let log_dir = workspace.join("jobs").join(job.to_string()).join("logs");
    tessera_exec::log_file(&log_dir, &folder_name(task_name), attempt, stream)
}

pub(super) fn read_expansion(path: Option<&Path>) -> Result<Option<Vec<TaskSpec>>, String> {
    let Some(path) = path else { return Ok(None) };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "its expansion file {} is not a valid task list: {e}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "could not read its expansion file {}: {e}",
            path.display()
        )),
    }
}
